/** WGSL files are imported as their source text (vite plugin in vite.config.ts, esbuild loader in scripts/build.mjs). */
declare module '*.wgsl' {
  const source: string;
  export default source;
}

/** Text data files (the ImageNet labels) are imported as their text too. */
declare module '*.txt' {
  const text: string;
  export default text;
}
