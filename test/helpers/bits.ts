/**
 * A result with every float as its bit pattern, so that `toEqual` compares bitwise; the keys in
 * `omit` (timings, a batch's place) are left out at every depth.
 */
export function bits(x: unknown, omit: readonly string[] = ['timings']): unknown {
  if (x instanceof Float32Array) return Array.from(new Uint32Array(Float32Array.from(x).buffer));
  if (x instanceof Uint8Array || x instanceof Uint8ClampedArray) return Array.from(x);
  if (typeof x === 'number') return Array.from(new Uint32Array(Float64Array.of(x).buffer));
  if (Array.isArray(x)) return x.map((v) => bits(v, omit));
  if (x && typeof x === 'object') {
    return Object.fromEntries(Object.entries(x).filter(([k]) => !omit.includes(k)).map(([k, v]) => [k, bits(v, omit)]));
  }
  return x;
}
