/**
 * The kernel lab (`npm run bench -- --kernels`, issue 21 item 3): every convolution variant on every
 * distinct conv layer shape of the loaded model, alone, and a GEMM sweep, each against the device's
 * measured peaks (bench/peaks.ts, run first).
 *
 *   conv rows   each distinct layer shape (input [C, H, W], output channels, window, stride, pads,
 *               dilation, groups) × direction (forward, data gradient) × every variant of the
 *               engine's table that applies (src/kernels/variants.ts), run through the engine's own
 *               conv kernel with that variant chosen for the layer (KernelEnv.choices); `fixed`
 *               marks what the engine's fixed rules run on this adapter.
 *   gemm rows   C[M × N] = W[M × K] · X[K × N] as a 1×1 convolution (N positions), by both GEMM
 *               variants: M, N, K over powers of two (the cube of `gemmSizes`), and each ungrouped
 *               conv layer's implicit GEMM (M = C_out, N = output positions, K = C_in·KH·KW).
 *
 * Counts, per run: FLOPs = 2 × multiply-adds of the direct sum (Winograd's rows therefore show its
 * effective rate, the same work counted for every variant); bytes = the compulsory traffic, each
 * input, weight, bias and output value read or written once (4 bytes each): the lower bound a
 * roofline uses, not what a kernel's caches actually move. Arithmetic intensity = FLOPs / bytes;
 * the roof at that intensity = min(peak GFLOP/s, intensity × peak GB/s).
 * Timing: bench/timing.ts (timestamps around one pass of the variant's dispatches, else wall time
 * to a fence; work under a millisecond repeated within the pass), `warmup` untimed runs then the
 * median of `runs`.
 */
import type { GpuContext } from '../src/gpu/device.ts';
import { type Dispatch, KernelEnv, kernelVariant, type KernelVariant, PipelineCache } from '../src/gpu/dispatch.ts';
import type { Graph } from '../src/graph/ir.ts';
import { applicableVariants, convLowering, type ConvVariantName, type Direction } from '../src/kernels/variants.ts';
import { chwOf } from '../src/kernels/types.ts';
import { conv as convSpec, type ConvOp } from '../src/ops/conv.ts';
import { seeded } from '../src/runtime/tune.ts';
import { measurePeaks, peakSizes, type PeakSizes, type Peaks } from './peaks.ts';
import { median, round, sig } from './stats.ts';
import { DispatchTimer, type TimingMethod } from './timing.ts';

export interface KernelLabOptions {
  runs: number;
  warmup: number;
  /** The GEMM sweep's sizes (M, N, K each over them); default by adapter (gemmSizesFor); [] for none. */
  gemmSizes?: number[];
  /** The model's implicit GEMMs in the sweep too (default true). */
  gemmModelShapes?: boolean;
  directions?: Direction[];
  /** The peak probe's sizes; default peakSizes() for the adapter. */
  peakSizes?: PeakSizes;
}

export interface KernelRow {
  kind: 'conv' | 'gemm';
  /** conv: the layer shape (layerKey); gemm: 'M×N×K'. */
  shape: string;
  /** conv: the model's layers of this shape; gemm from the model: the layers whose implicit GEMM it is. */
  layers?: string[];
  /** gemm rows: from the power-of-two sweep or a model layer. */
  source?: 'sweep' | 'model';
  direction: Direction;
  variant: string;
  /** The engine's fixed rules run this variant for this shape and direction on this adapter. */
  fixed: boolean;
  /** The kernels (entry points) its dispatches run, e.g. winograd.forward.inputTransform. */
  kernels: string[];
  /** Repetitions of the dispatches per timed run (work under bench/timing.ts's MIN_RUN_MS is repeated); times are per repetition. */
  repeats?: number;
  flops: number;
  bytes: number;
  intensity: number;
  runs: number;
  medianMs: number;
  minMs: number;
  gflopPerS: number;
  gbPerS: number;
  /** Of the roof (KernelLab.roof): GFLOP/s / its GFLOP/s, GB/s / its GB/s, GFLOP/s / the roof at this intensity. */
  ofPeakFlops: number;
  ofPeakBandwidth: number;
  ofRoof: number;
  /** A variant that could not run here (a device limit): why; the numbers are then 0. */
  error?: string;
}

export interface KernelLab {
  timing: TimingMethod;
  /** The adapter's kernel family: what the fixed rules pick by. */
  family: KernelVariant;
  runs: number;
  warmup: number;
  batch: number;
  peaks: Peaks;
  /** The roofline's roof: the peaks, raised to a kernel's rate where one measured more (see Roof). */
  roof: Roof;
  conv: KernelRow[];
  gemm: KernelRow[];
  gemmSizes: number[];
  notes: string[];
  elapsedS: number;
}

/** Default GEMM sweep sizes: up to 1024 on a software adapter (SwiftShader: 2 GFLOP at the largest), 4096 on a GPU. */
export function gemmSizesFor(isSoftware: boolean): number[] {
  return isSoftware ? [64, 256, 1024] : [256, 1024, 4096];
}

/** A conv layer's shape as a key: input C×H×W, output channels and size, window, stride, pads, dilation, groups. */
export function layerKey(op: ConvOp, shapes: { inputs: number[][]; output: number[] }): string {
  const [c, h, w] = chwOf(shapes.inputs[0]);
  const [co, oh, ow] = chwOf(shapes.output);
  const dil = op.dilations[0] > 1 || op.dilations[1] > 1 ? ` d${op.dilations.join(',')}` : '';
  const stride = op.strideH === op.strideW ? `${op.strideH}` : `${op.strideH},${op.strideW}`;
  return `${c}×${h}×${w} → ${co}×${oh}×${ow} k${op.kh}×${op.kw}/${stride} p${op.pads.join(',')}${dil}${op.group > 1 ? ` g${op.group}` : ''}`;
}

/** FLOPs (2 per multiply-add of the direct sum) and compulsory bytes of one conv layer in one direction. */
export function convCounts(op: ConvOp, shapes: { inputs: number[][]; output: number[] }, batch: number, direction: Direction): { flops: number; bytes: number } {
  const [c, h, w] = chwOf(shapes.inputs[0]);
  const [co, oh, ow] = chwOf(shapes.output);
  const flops = (2 * batch * co * oh * ow * c * op.kh * op.kw) / op.group;
  const weights = (co * c * op.kh * op.kw) / op.group;
  // Forward reads x, weights and bias and writes y; the data gradient reads dy and weights, writes dx.
  const values = batch * c * h * w + weights + batch * co * oh * ow + (direction === 'forward' ? co : 0);
  return { flops, bytes: 4 * values };
}

/** FLOPs and compulsory bytes of C[M×N] = W[M×K] · X[K×N] + bias. */
export function gemmCounts(m: number, n: number, k: number): { flops: number; bytes: number } {
  return { flops: 2 * m * n * k, bytes: 4 * (m * k + k * n + m * n + m) };
}

/**
 * The roofline's roof: the probes' peaks, or a kernel's rate where a kernel measured more than a
 * probe (a software adapter runs the FMA probe's plain arithmetic loop slower than the GEMM's
 * blocked one; repeated small kernels may run from cache faster than the copy streams memory): the
 * roof is then the best rate measured, and `flopsFrom` / `bandwidthFrom` say which kernel set it.
 */
export interface Roof {
  gflopPerS: number;
  gbPerS: number;
  flopsFrom: string;
  bandwidthFrom: string;
}

/** The roof of a lab: its own, or for a result written before it had one, the probes' peaks. */
export function roofOf(lab: Pick<KernelLab, 'peaks'> & { roof?: Roof }): Roof {
  return lab.roof ?? { gflopPerS: lab.peaks.fma.gflopPerS, gbPerS: lab.peaks.bandwidth.gbPerS, flopsFrom: 'the FMA probe', bandwidthFrom: 'the copy probe' };
}

/** Fills a row's rates and fractions from its counts, times and the roof. */
export function rates(counts: { flops: number; bytes: number }, xs: number[], peaks: Pick<Roof, 'gflopPerS' | 'gbPerS'>) {
  const ms = median(xs);
  if (!(ms > 0)) throw new Error(`a median of ${ms} ms: below the timer's resolution even repeated`);
  const gflopPerS = counts.flops / (ms * 1e6);
  const gbPerS = counts.bytes / (ms * 1e6);
  const intensity = counts.flops / counts.bytes;
  const roof = Math.min(peaks.gflopPerS, intensity * peaks.gbPerS);
  return {
    ...counts, intensity: sig(intensity), runs: xs.length, medianMs: round(ms), minMs: round(Math.min(...xs)),
    gflopPerS: sig(gflopPerS), gbPerS: sig(gbPerS),
    ofPeakFlops: sig(gflopPerS / peaks.gflopPerS), ofPeakBandwidth: sig(gbPerS / peaks.gbPerS), ofRoof: sig(gflopPerS / roof),
  };
}

/** A GEMM as the 1×1 convolution the engine runs Gemm and MatMul as: K input channels, M outputs, N positions. */
export function gemmOp(m: number, n: number, k: number): { op: ConvOp; shapes: { inputs: number[][]; output: number[] } } {
  return {
    op: {
      kind: 'conv', name: `gemm ${m}×${n}×${k}`, onnxTypes: ['Gemm'], inputs: ['x'], output: 'y', weight: seeded(m * k, 7), bias: new Float32Array(m),
      cIn: k, cOut: m, kh: 1, kw: 1, strideH: 1, strideW: 1, pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, relu: false,
    },
    shapes: { inputs: [[1, k, 1, n]], output: [1, m, 1, n] },
  };
}

interface Setup {
  device: GPUDevice;
  family: KernelVariant;
  timer: DispatchTimer;
  peaks: Peaks;
  opts: Required<Pick<KernelLabOptions, 'runs' | 'warmup'>>;
}

/**
 * Times one variant of one layer: the engine's conv kernel in an environment whose plan chooses
 * `variant` for this layer in both directions (a variant that does not apply in a direction is never
 * asked for it), on the caller's buffers x and y (dx and dy); the weights it lays out are freed after.
 */
async function timeVariant(s: Setup, op: ConvOp, shapes: { inputs: number[][]; output: number[] }, batch: number,
  direction: Direction, variant: ConvVariantName, x: GPUBuffer, y: GPUBuffer): Promise<{ xs: number[]; repeats: number; kernels: string[] }> {
  const env = new KernelEnv(s.device, s.family, {}, PipelineCache.of(s.device), new Map([[op.name, { forward: variant, backward: variant }]]));
  try {
    const [c, h, w] = chwOf(shapes.inputs[0]);
    const [co, oh, ow] = chwOf(shapes.output);
    const xv = { buffer: x, offset: 0, stride: c * h * w };
    const yv = { buffer: y, offset: 0, stride: co * oh * ow };
    const kernel = convSpec.kernel(op, shapes);
    const dispatches: Dispatch[] = direction === 'forward'
      ? await kernel.forward({ env, inputs: [xv], output: yv, batch })
      : await kernel.backward({ env, inputs: [xv], output: yv, dy: yv, dx: [{ view: xv, accumulate: false }], items: batch, maskDiv: 1 });
    const { samples, repeats } = await s.timer.times(dispatches, s.opts.runs, s.opts.warmup);
    return { xs: samples, repeats, kernels: [...new Set(dispatches.map((d) => d.kernel))] };
  } finally {
    env.destroy();
  }
}

function errorRow(base: Omit<KernelRow, keyof ReturnType<typeof rates> | 'kernels'>, counts: { flops: number; bytes: number }, e: unknown): KernelRow {
  return {
    ...base, ...counts, kernels: [], intensity: sig(counts.flops / counts.bytes), runs: 0, medianMs: 0, minMs: 0, gflopPerS: 0, gbPerS: 0,
    ofPeakFlops: 0, ofPeakBandwidth: 0, ofRoof: 0, error: (e as Error).message ?? String(e),
  };
}

/**
 * Where a kernel measured more than a probe, the roof becomes that kernel's rate (with a note) and
 * every row's fractions are taken again against it: no point above the roof.
 */
export function raiseRoof(lab: KernelLab): void {
  const rows = [...lab.conv, ...lab.gemm].filter((r) => !r.error);
  const name = (r: KernelRow) => `${r.kind} ${r.shape} ${r.direction} ${r.variant}`;
  const f = rows.reduce<KernelRow | undefined>((a, r) => (!a || r.gflopPerS > a.gflopPerS ? r : a), undefined);
  const b = rows.reduce<KernelRow | undefined>((a, r) => (!a || r.gbPerS > a.gbPerS ? r : a), undefined);
  const roof = { ...lab.roof };
  if (f && f.gflopPerS > roof.gflopPerS) {
    lab.notes.push(`The FMA probe measured ${lab.peaks.fma.gflopPerS} GFLOP/s, below ${name(f)} at ${f.gflopPerS} GFLOP/s: the roof's compute peak is that kernel's rate.`);
    Object.assign(roof, { gflopPerS: f.gflopPerS, flopsFrom: name(f) });
  }
  if (b && b.gbPerS > roof.gbPerS) {
    lab.notes.push(`The copy probe measured ${lab.peaks.bandwidth.gbPerS} GB/s, below ${name(b)} at ${b.gbPerS} GB/s (compulsory bytes; from cache when repeated): the roof's bandwidth is that kernel's rate.`);
    Object.assign(roof, { gbPerS: b.gbPerS, bandwidthFrom: name(b) });
  }
  if (roof.gflopPerS === lab.roof.gflopPerS && roof.gbPerS === lab.roof.gbPerS) return;
  lab.roof = roof;
  for (const r of rows) {
    const intensity = r.flops / r.bytes;
    Object.assign(r, {
      ofPeakFlops: sig(r.gflopPerS / roof.gflopPerS), ofPeakBandwidth: sig(r.gbPerS / roof.gbPerS),
      ofRoof: sig(r.gflopPerS / Math.min(roof.gflopPerS, intensity * roof.gbPerS)),
    });
  }
}

/** The distinct conv layer shapes of a graph, each with the names of its layers (in graph order). */
export function distinctConvs(graph: Graph): { key: string; op: ConvOp; shapes: { inputs: number[][]; output: number[] }; layers: string[] }[] {
  const byKey = new Map<string, { key: string; op: ConvOp; shapes: { inputs: number[][]; output: number[] }; layers: string[] }>();
  for (const op of graph.ops) {
    if (op.kind !== 'conv') continue;
    const shapes = { inputs: [graph.tensors.get(op.inputs[0])!.shape], output: graph.tensors.get(op.output)!.shape };
    const key = layerKey(op, shapes);
    const seen = byKey.get(key);
    if (seen) seen.layers.push(op.name);
    else byKey.set(key, { key, op, shapes, layers: [op.name] });
  }
  return [...byKey.values()];
}

/**
 * Runs the lab on `graph`'s conv layers with `gpu`: peaks, conv variants, GEMM sweep. `onRow`
 * receives each row as it is measured (the page draws its charts live).
 */
export async function runKernelLab(gpu: GpuContext, graph: Graph, o: KernelLabOptions, log: (line: string) => void,
  onRow?: (lab: KernelLab) => void): Promise<KernelLab> {
  const t0 = performance.now();
  const device = gpu.device;
  const family = kernelVariant(gpu.adapter.isSoftware);
  const timer = new DispatchTimer(device, gpu.features.timestamps);
  const base = new KernelEnv(device, family);
  const notes: string[] = [];
  try {
    const sizes = o.peakSizes ?? peakSizes(gpu.adapter.isSoftware, Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize));
    const peaks = await measurePeaks(base, timer, sizes, Math.max(o.runs, 5), Math.max(o.warmup, 1));
    log(`kernels: peaks (${timer.method}): ${peaks.bandwidth.gbPerS.toFixed(1)} GB/s (${peaks.bandwidth.what}), ${peaks.fma.gflopPerS.toFixed(1)} GFLOP/s (${peaks.fma.what})`);
    const s: Setup = { device, family, timer, peaks, opts: { runs: o.runs, warmup: o.warmup } };
    const gemmSizes = o.gemmSizes ?? gemmSizesFor(gpu.adapter.isSoftware);
    const lab: KernelLab = { timing: timer.method, family, runs: o.runs, warmup: o.warmup, batch: graph.batch, peaks, roof: roofOf({ peaks }), conv: [], gemm: [], gemmSizes, notes, elapsedS: 0 };
    const directions = o.directions ?? ['forward', 'backward'];

    // Each distinct conv layer shape, each direction, each variant that applies.
    const convs = distinctConvs(graph);
    log(`kernels: ${convs.length} distinct conv layer shapes of ${graph.ops.filter((op) => op.kind === 'conv').length} conv layers`);
    for (const [i, l] of convs.entries()) {
      const env = base.child();
      try {
        const [c, h, w] = chwOf(l.shapes.inputs[0]);
        const [co, oh, ow] = chwOf(l.shapes.output);
        const x = env.scratch(graph.batch * c * h * w, 'lab x');
        const y = env.scratch(graph.batch * co * oh * ow, 'lab y');
        device.queue.writeBuffer(x, 0, seeded(graph.batch * c * h * w, 1));
        device.queue.writeBuffer(y, 0, seeded(graph.batch * co * oh * ow, 2));
        for (const direction of directions) {
          const fixed = convLowering(l.op, family, direction);
          const counts = convCounts(l.op, l.shapes, graph.batch, direction);
          const times: string[] = [];
          for (const variant of applicableVariants(l.op, direction)) {
            const row = { kind: 'conv' as const, shape: l.key, layers: l.layers, direction, variant, fixed: variant === fixed };
            try {
              const r = await timeVariant(s, l.op, l.shapes, graph.batch, direction, variant, x, y);
              lab.conv.push({ ...row, kernels: r.kernels, repeats: r.repeats, ...rates(counts, r.xs, lab.roof) });
              times.push(`${variant} ${round(median(r.xs), 3)} ms`);
            } catch (e) {
              lab.conv.push(errorRow(row, counts, e));
              times.push(`${variant} failed`);
            }
            onRow?.(lab);
          }
          log(`kernels: [${i + 1}/${convs.length}] ${l.key} ${direction}: ${times.join(', ')}`);
        }
      } finally {
        env.destroy();
      }
    }

    // The GEMM sweep: the cube of gemmSizes, then the model's implicit GEMMs (ungrouped layers).
    const triples = new Map<string, { m: number; n: number; k: number; source: 'sweep' | 'model'; layers?: string[] }>();
    for (const m of gemmSizes) for (const n of gemmSizes) for (const k of gemmSizes) triples.set(`${m}×${n}×${k}`, { m, n, k, source: 'sweep' });
    if (o.gemmModelShapes ?? true) {
      for (const l of convs) {
        if (l.op.group !== 1) continue;
        const [, oh, ow] = chwOf(l.shapes.output);
        const t = { m: l.op.cOut, n: graph.batch * oh * ow, k: l.op.cIn * l.op.kh * l.op.kw };
        const key = `${t.m}×${t.n}×${t.k}`;
        const seen = triples.get(key);
        if (seen) seen.layers = [...(seen.layers ?? []), ...l.layers];
        else triples.set(key, { ...t, source: 'model', layers: [...l.layers] });
      }
    }
    log(`kernels: GEMM sweep, ${triples.size} shapes × 2 variants`);
    for (const [key, t] of triples) {
      const env = base.child();
      try {
        const { op, shapes } = gemmOp(t.m, t.n, t.k);
        const x = env.scratch(t.k * t.n, 'lab gemm x');
        const y = env.scratch(t.m * t.n, 'lab gemm y');
        device.queue.writeBuffer(x, 0, seeded(t.k * t.n, 3));
        const counts = gemmCounts(t.m, t.n, t.k);
        const fixed = convLowering(op, family, 'forward');
        for (const variant of ['gemm-blocked', 'gemm-tiled'] as const) {
          const row = { kind: 'gemm' as const, shape: key, layers: t.layers, source: t.source, direction: 'forward' as const, variant, fixed: variant === fixed };
          try {
            const r = await timeVariant(s, op, shapes, 1, 'forward', variant, x, y);
            lab.gemm.push({ ...row, kernels: r.kernels, repeats: r.repeats, ...rates(counts, r.xs, lab.roof) });
          } catch (e) {
            lab.gemm.push(errorRow(row, counts, e));
          }
          onRow?.(lab);
        }
      } finally {
        env.destroy();
      }
    }
    raiseRoof(lab);
    const best = (rows: KernelRow[]) => rows.filter((r) => !r.error).reduce<KernelRow | undefined>((a, r) => (!a || r.gflopPerS > a.gflopPerS ? r : a), undefined);
    const g = best(lab.gemm);
    if (g) log(`kernels: best GEMM ${g.shape} ${g.variant}: ${g.gflopPerS.toFixed(1)} GFLOP/s = ${(g.ofPeakFlops * 100).toFixed(1)} % of the FMA peak`);
    lab.elapsedS = round((performance.now() - t0) / 1000, 1);
    return lab;
  } finally {
    base.destroy();
    timer.destroy();
  }
}
