/** WGSL files are imported as their source text (vite plugin in vite.config.ts, esbuild loader in scripts/build.mjs). */
declare module '*.wgsl' {
  const source: string;
  export default source;
}
