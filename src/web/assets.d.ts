/** Pictures imported by the page become URLs (Vite's asset handling). */
declare module '*.png' {
  const url: string;
  export default url;
}
