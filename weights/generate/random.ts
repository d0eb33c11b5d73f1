/**
 * A small seeded PRNG for the generated test models: the same seed gives the same weights, hence
 * byte-identical .onnx files, on every machine.
 *
 * The generator is mulberry32 (32-bit state, integer-only arithmetic through Math.imul, so exact
 * everywhere). Normals come from Box-Muller; Math.log/cos/sqrt are the only floating-point
 * functions involved, and V8 implements log/cos with its own fdlibm port (sqrt is correctly
 * rounded by IEEE 754), so Node and Chromium agree bit for bit across platforms. The results are
 * rounded to float32 when stored, which leaves even more room.
 */
export class Rng {
  private state: number;
  private spare: number | undefined;

  constructor(seed: number) {
    // Mix the seed once (splitmix32 finaliser) so that seeds 1, 2, 3 start far apart.
    let z = (seed + 0x9e3779b9) | 0;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    this.state = (z ^ (z >>> 16)) >>> 0;
  }

  /** The next 32 random bits, as an unsigned integer (mulberry32). */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [lo, hi) (default [0, 1)), with 32 random bits. */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * (this.nextU32() / 4294967296);
  }

  /** Normal with the given mean and standard deviation (Box-Muller, the second value kept). */
  normal(mean = 0, std = 1): number {
    let z = this.spare;
    if (z === undefined) {
      const u1 = (this.nextU32() + 1) / 4294967296; // (0, 1]: log(u1) is finite
      const u2 = this.nextU32() / 4294967296;
      const r = Math.sqrt(-2 * Math.log(u1));
      z = r * Math.cos(2 * Math.PI * u2);
      this.spare = r * Math.sin(2 * Math.PI * u2);
    } else {
      this.spare = undefined;
    }
    return mean + std * z;
  }

  /** `n` normals as float32. */
  normals(n: number, mean = 0, std = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal(mean, std);
    return out;
  }

  /** `n` uniforms in [lo, hi) as float32. */
  uniforms(n: number, lo = 0, hi = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform(lo, hi);
    return out;
  }
}
