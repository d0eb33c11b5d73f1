/**
 * The peak probe of the kernel lab (`npm run bench -- --kernels`), run first: the device's memory
 * bandwidth (bench/shaders/peaks.wgsl `copyPeak`: a read/write copy of a large buffer) and its FMA
 * throughput (`fmaPeak`: independent vec4 FMA chains), each timed alone (bench/timing.ts:
 * timestamps where the adapter has them, else wall time to a fence), median of `runs`.
 * The roofline's roof is these two numbers: min(peak GFLOP/s, intensity × peak GB/s).
 */
import peaksCode from './shaders/peaks.wgsl';
import type { KernelEnv } from '../src/gpu/dispatch.ts';
import { declareKernel, read, readWrite } from '../src/gpu/kernel.ts';
import { median, round, sig } from './stats.ts';
import type { DispatchTimer, TimingMethod } from './timing.ts';

export const PEAKS = declareKernel({
  name: 'peaks',
  body: peaksCode,
  uniforms: { count: 'u32', steps: 'u32', stride: 'u32', a: 'f32', b: 'f32' },
  bindings: { src: read('vec4<f32>'), dst: readWrite('vec4<f32>'), result: readWrite() },
  entries: { copyPeak: ['src', 'dst'], fmaPeak: ['result'] },
  constants: { UNROLL: 4 },
  workgroupSize: [256, 1, 1],
});

/** FMA chains per invocation in fmaPeak (x0 … x7), and FLOPs per vec4 FMA (4 lanes × 2). */
export const FMA_CHAINS = 8;
const FLOPS_PER_VEC4_FMA = 8;

/** What a probe moves and computes, from its sizes alone (what the GB/s and GFLOP/s divide). */
export const copyBytes = (vec4s: number) => 2 * 16 * vec4s; // read once, written once
export const fmaFlops = (invocations: number, steps: number) => invocations * steps * FMA_CHAINS * FLOPS_PER_VEC4_FMA;

export interface PeakSizes {
  /** vec4<f32> elements copied (16 bytes each), and how many each invocation copies. */
  copyVec4s: number;
  copySteps: number;
  /** FMA invocations and steps per chain (a multiple of UNROLL). */
  fmaInvocations: number;
  fmaSteps: number;
}

/**
 * Sizes that take milliseconds: on a GPU a 256 MiB copy (well past any cache; 16 vec4 per
 * invocation, 2^20 invocations) and 2^20 FMA invocations (a few per lane of the largest GPUs) × 4096
 * steps, 275 GFLOP; on a software adapter 32 MiB (64 vec4 per invocation) and 2^14 × 1024 (1 GFLOP).
 * Capped by the device's buffer limits.
 */
export function peakSizes(isSoftware: boolean, maxBufferBytes: number): PeakSizes {
  const bytes = Math.min(isSoftware ? 32 * 2 ** 20 : 256 * 2 ** 20, Math.floor(maxBufferBytes / 16) * 16);
  return isSoftware
    ? { copyVec4s: bytes / 16, copySteps: 64, fmaInvocations: 2 ** 14, fmaSteps: 1024 }
    : { copyVec4s: bytes / 16, copySteps: 16, fmaInvocations: 2 ** 20, fmaSteps: 4096 };
}

/** A probe that takes a moment on any adapter (--peak-sizes tiny): smoke runs and tests; its rates understate a GPU's peaks. */
export const TINY_PEAKS: PeakSizes = { copyVec4s: 2 ** 16, copySteps: 16, fmaInvocations: 2 ** 12, fmaSteps: 64 };

export interface PeakResult {
  /** Bytes moved (bandwidth) or FLOPs (fma) per run. */
  bytes: number;
  flops: number;
  runs: number;
  medianMs: number;
  minMs: number;
  /** From the median time. */
  gbPerS: number;
  gflopPerS: number;
  what: string;
}

export interface Peaks {
  timing: TimingMethod;
  bandwidth: PeakResult;
  fma: PeakResult;
}

/** The two probes' dispatches, with the buffers they use (made in `env`, freed with it). */
export async function peakDispatches(env: KernelEnv, sizes: PeakSizes, fmaValues = { a: 1, b: 1 }) {
  if (sizes.fmaSteps % PEAKS.constants.UNROLL !== 0) throw new Error(`peaks: fmaSteps ${sizes.fmaSteps} is not a multiple of ${PEAKS.constants.UNROLL}`);
  const limit = env.limits.maxComputeWorkgroupsPerDimension;
  const src = env.scratch(4 * sizes.copyVec4s, 'peak copy source');
  const dst = env.scratch(4 * sizes.copyVec4s, 'peak copy destination');
  const result = env.scratch(sizes.fmaInvocations, 'peak fma result');
  const stride = Math.ceil(sizes.copyVec4s / sizes.copySteps);
  const copy = await PEAKS.dispatch(env, 'copyPeak', {
    uniforms: { count: sizes.copyVec4s, steps: sizes.copySteps, stride }, buffers: { src, dst },
    workgroups: PEAKS.grid1d('copyPeak', stride, limit),
    label: 'peak bandwidth', opType: 'copy', shapes: `${sizes.copyVec4s} vec4`, flops: 0,
  });
  const fma = await PEAKS.dispatch(env, 'fmaPeak', {
    uniforms: { count: sizes.fmaInvocations, steps: sizes.fmaSteps, a: fmaValues.a, b: fmaValues.b }, buffers: { result },
    workgroups: PEAKS.grid1d('fmaPeak', sizes.fmaInvocations, limit),
    label: 'peak fma', opType: 'fma', shapes: `${sizes.fmaInvocations} × ${sizes.fmaSteps} steps`, flops: fmaFlops(sizes.fmaInvocations, sizes.fmaSteps),
  });
  return { copy, fma, buffers: { src, dst, result } };
}

/** The value fmaPeak writes for invocation `id` with a = b = 1: each of the 32 lanes' start, plus steps. */
export function expectedFmaResult(id: number, steps: number): number {
  let sum = 0;
  for (let j = 0; j < FMA_CHAINS; j++) for (let lane = 0; lane < 4; lane++) sum += (id % 16) + 4 * j + lane + steps;
  return sum;
}

function result(xs: number[], bytes: number, flops: number, what: string): PeakResult {
  const ms = median(xs);
  return {
    bytes, flops, runs: xs.length, medianMs: round(ms), minMs: round(Math.min(...xs)),
    gbPerS: sig(bytes / (ms * 1e6)), gflopPerS: sig(flops / (ms * 1e6)), what,
  };
}

/** Runs both probes: `warmup` untimed runs, then the median of `runs`. */
export async function measurePeaks(env: KernelEnv, timer: DispatchTimer, sizes: PeakSizes, runs: number, warmup: number): Promise<Peaks> {
  const child = env.child();
  try {
    const d = await peakDispatches(child, sizes);
    const bytes = copyBytes(sizes.copyVec4s);
    const flops = fmaFlops(sizes.fmaInvocations, sizes.fmaSteps);
    const bw = (await timer.times([d.copy], runs, warmup)).samples;
    const fl = (await timer.times([d.fma], runs, warmup)).samples;
    return {
      timing: timer.method,
      bandwidth: result(bw, bytes, 0, `copy of ${(sizes.copyVec4s * 16 / 2 ** 20).toFixed(0)} MiB (read + write)`),
      fma: result(fl, 0, flops, `${sizes.fmaInvocations} invocations × ${FMA_CHAINS} vec4 FMA chains × ${sizes.fmaSteps} steps`),
    };
  } finally {
    child.destroy();
  }
}
