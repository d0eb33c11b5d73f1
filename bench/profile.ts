/**
 * The per-kernel profile: every dispatch of the forward pass, and of a Grad-CAM run's backward and
 * map stage, timed by timestamp queries (src/gpu/profiler.ts: one compute pass per dispatch), the
 * median over a few runs per dispatch, with its FLOPs and GFLOP/s; then a summary by op type.
 *
 * One pass per dispatch costs a little more than the normal single-pass run, so the profile's total
 * is a bit above the `forward.gpu` measurement; both are reported.
 */
import type { Dispatch } from '../src/gpu/dispatch.ts';
import { Profiler } from '../src/gpu/profiler.ts';
import { median, round } from './stats.ts';

export interface ProfileRow {
  index: number;
  label: string;
  kernel: string;
  opType: string;
  shapes: string;
  flops: number;
  workgroups: [number, number, number];
  ms: number;
  gflopPerS: number;
}

export interface OpTypeRow {
  stage: 'forward' | 'gradcam';
  opType: string;
  dispatches: number;
  ms: number;
  /** Of the stage's total time. */
  share: number;
  gflop: number;
  gflopPerS: number;
}

export interface Profile {
  runs: number;
  /** What the gradcam rows are: which layer, how many classes. */
  gradcamRequest: string;
  totals: { forwardMs: number; gradcamMs: number };
  forward: ProfileRow[];
  gradcam: ProfileRow[];
  byOpType: OpTypeRow[];
}

const gflopPerS = (flops: number, ms: number) => (ms > 0 ? round(flops / (ms * 1e6), 3) : 0);

/**
 * Profiles `stages` (run in order, each its own submission, `before` first on every run: it writes
 * the input) `runs` times; returns per-dispatch medians per stage.
 */
export async function profileStages(device: GPUDevice, stages: readonly (readonly Dispatch[])[], runs: number,
  before: () => void): Promise<ProfileRow[][]> {
  const profiler = new Profiler(device, Math.max(...stages.map((s) => s.length)));
  const times = stages.map((s) => s.map(() => [] as number[]));
  try {
    for (let r = 0; r < runs; r++) {
      before();
      for (let s = 0; s < stages.length; s++) {
        const t = await profiler.run(stages[s]);
        t.forEach((x, i) => times[s][i].push(x.ms));
      }
    }
  } finally {
    profiler.destroy();
  }
  return stages.map((dispatches, s) => dispatches.map((d, i) => {
    const ms = round(median(times[s][i]));
    return { index: i, label: d.label, kernel: d.kernel, opType: d.opType, shapes: d.shapes, flops: d.flops, workgroups: d.workgroups, ms, gflopPerS: gflopPerS(d.flops, ms) };
  }));
}

export function byOpType(stage: OpTypeRow['stage'], rows: ProfileRow[]): OpTypeRow[] {
  const total = rows.reduce((a, r) => a + r.ms, 0);
  const groups = new Map<string, ProfileRow[]>();
  for (const r of rows) groups.set(r.opType, [...(groups.get(r.opType) ?? []), r]);
  return [...groups].map(([opType, rs]) => {
    const ms = rs.reduce((a, r) => a + r.ms, 0);
    const flops = rs.reduce((a, r) => a + r.flops, 0);
    return { stage, opType, dispatches: rs.length, ms: round(ms), share: round(total ? ms / total : 0, 4), gflop: round(flops / 1e9, 4), gflopPerS: gflopPerS(flops, ms) };
  }).sort((a, b) => b.ms - a.ms);
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

export function formatProfileRows(title: string, rows: ProfileRow[]): string {
  const total = rows.reduce((a, r) => a + r.ms, 0);
  const lines = [`${title}: ${rows.length} dispatches, ${total.toFixed(2)} ms (sum of per-dispatch medians)`,
    `  ${pad('#', 4)}${pad('op (label)', 34)}${pad('kernel', 26)}${pad('op type', 16)}${lpad('ms', 10)}${lpad('GFLOP', 9)}${lpad('GFLOP/s', 9)}  shapes`];
  for (const r of rows) {
    lines.push(`  ${pad(String(r.index), 4)}${pad(r.label.slice(0, 33), 34)}${pad(r.kernel.slice(0, 25), 26)}${pad(r.opType.slice(0, 15), 16)}`
      + `${lpad(r.ms.toFixed(3), 10)}${lpad((r.flops / 1e9).toFixed(3), 9)}${lpad(r.gflopPerS.toFixed(1), 9)}  ${r.shapes}`);
  }
  return lines.join('\n');
}

export function formatOpTypes(rows: OpTypeRow[]): string {
  const lines = [`By op type:`, `  ${pad('stage', 9)}${pad('op type', 18)}${lpad('n', 4)}${lpad('ms', 11)}${lpad('share', 8)}${lpad('GFLOP', 9)}${lpad('GFLOP/s', 9)}`];
  for (const r of rows) {
    lines.push(`  ${pad(r.stage, 9)}${pad(r.opType.slice(0, 17), 18)}${lpad(String(r.dispatches), 4)}${lpad(r.ms.toFixed(2), 11)}`
      + `${lpad(`${(r.share * 100).toFixed(1)}%`, 8)}${lpad(r.gflop.toFixed(3), 9)}${lpad(r.gflopPerS.toFixed(1), 9)}`);
  }
  return lines.join('\n');
}
