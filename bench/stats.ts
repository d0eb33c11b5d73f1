/**
 * Timing primitives shared by every measurement: warm-up, then N timed runs, summarised as
 * median, min and max. A run either is timed by the wall clock around it, or reports its own
 * duration (GPU time from timestamp queries).
 */

/** One measurement as it appears in the JSON (these five fields, nothing else). */
export interface Measurement {
  name: string;
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function summarize(name: string, samples: readonly number[]): Measurement {
  return {
    name,
    runs: samples.length,
    medianMs: round(median(samples)),
    minMs: round(Math.min(...samples)),
    maxMs: round(Math.max(...samples)),
  };
}

/** `x` to `digits` significant digits (rates that span 1e-4 … 1e5 GFLOP/s). */
export function sig(x: number, digits = 4): number {
  return Number.isFinite(x) && x !== 0 ? Number(x.toPrecision(digits)) : x;
}

/** Milliseconds to 4 decimals (sub-microsecond digits are noise). */
export function round(ms: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(ms * f) / f;
}

/**
 * Runs `fn` `warmup` times untimed, then `runs` times. A run's sample is what `fn` returns when it
 * returns a number (a duration it measured itself), else the wall time around it.
 */
export async function sample(runs: number, warmup: number, fn: (i: number) => Promise<number | void>,
  onRun?: (i: number, ms: number) => void): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn(-1 - i);
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = await fn(i);
    const ms = typeof r === 'number' ? r : performance.now() - t0;
    out.push(ms);
    onRun?.(i, ms);
  }
  return out;
}

export function fmtMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}
