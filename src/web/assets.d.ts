/** Pictures imported by the page become URLs (Vite's asset handling). */
declare module '*.png' {
  const url: string;
  export default url;
}

/** Vite's import.meta.glob (the page only; the kernel view reads every shader file's text with it). */
interface ImportMeta {
  glob<T>(pattern: string, options: { eager: true; import: 'default' }): Record<string, T>;
}
