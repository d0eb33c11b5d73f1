/**
 * Measured choice of the conv variants (`tune: true`, `gradcam … --tune`): every applicable variant
 * (src/kernels/variants.ts) timed on every distinct conv layer shape of the model, forward and data
 * gradient, on this adapter; the fastest kept per layer and direction as a plan, stored (PlanStore)
 * under the adapter, the model's SHA-256, the input shape with its batch size and the engine version
 * (package.json's version and a SHA-256 of the shader sources), so that a later load takes it with
 * no timing.
 *
 * A plan is per batch size: the batch is the GEMMs' N (positions × images), so the variant that wins
 * at batch 1 (split-K for a small layer, say) need not win at batch 8. Tuning measures at one batch
 * size B: every layer's buffers hold B images, the forward runs B images, the data gradient B items.
 * A Network tunes at its load's batch and at TuneOptions.batchSizes; an engine it makes later for
 * another batch size takes the plan tuned at the largest of those not above its own (tunedBatchFor).
 *
 * Plans name layers by their Conv node (the op's first name, before fused ops' '+…'): a re-lowering
 * that keeps a tapped tensor unfuses a ReLU, and the plan still names the same layers.
 *
 * How a variant is timed: its dispatches for the layer alone at batch B (the layer's own weights, an
 * input of seeded values), run once to warm up and to size the repetitions (enough for ~10 ms of work,
 * at most 50), then SAMPLES times that many repetitions; the least sample's mean per run counts.
 * With 'timestamp-query' the repetitions run in one compute pass between two GPU timestamps; without
 * it, one submission timed on the CPU to onSubmittedWorkDone (the read-back fence). The fixed rules'
 * variant is measured first and kept unless another is faster by more than KEEP_DEFAULT_WITHIN (the
 * noise of a sample); a variant whose warm-up run already takes CUT_OFF times the best so far is not
 * sampled further (it cannot win; on a CPU adapter the slow ones would otherwise take most of the time).
 */
import packageJson from '../../package.json';
import type { GpuContext } from '../gpu/device.ts';
import { type Dispatch, KernelEnv, type KernelVariant } from '../gpu/dispatch.ts';
import { createBuffer, destroyBuffer } from '../gpu/buffers.ts';
import { type Graph, perImage } from '../graph/ir.ts';
import { ALL_KERNELS } from '../kernels/index.ts';
import { GradcamError } from '../errors.ts';
import { applicableVariants, convLowering, type ConvVariantName, describeConv, type Direction, type Plan } from '../kernels/variants.ts';
import type { OnnxModel } from '../onnx/model.ts';
import { conv, type ConvOp } from '../ops/conv.ts';
import { MemoryPlanStore, isTunedPlanFor, type PlanKey, type PlanStore, TUNED_PLAN_FORMAT, type TunedPlan, type TuneTiming } from './plan-store.ts';

export interface TuneProgress {
  /** Measurements done, of `total` (at this batch size). */
  done: number;
  total: number;
  /** The batch size being tuned at. */
  batch: number;
  /** The first layer of the shape just measured, and the measurement. */
  layer: string;
  direction: Direction;
  variant: ConvVariantName;
  ms: number;
}

export interface TuneOptions {
  /** Where plans are kept (default: this process's memory; the CLI's: files in its cache; the page's: IndexedDB). */
  store?: PlanStore;
  /** Called after each measurement (tuning GoogLeNet on a CPU adapter takes a minute or so). */
  onProgress?: (p: TuneProgress) => void;
  /** Measure again even when a plan is stored. */
  force?: boolean;
  /**
   * Take a stored plan when there is one, never measure: with none stored, the fixed rules (the
   * page loads a model so; its Tune button measures).
   */
  storedOnly?: boolean;
  /**
   * The batch sizes to tune at (each its own plan; Network.load: default the load's batch, 1 for a
   * model with an open batch). An engine for another batch size takes the nearest one's plan.
   */
  batchSizes?: number[];
}

export interface TuneReport {
  /** 'cache': the stored plan was used, nothing was timed; 'measured': timed now and stored. */
  source: 'cache' | 'measured';
  /** Where the plan is stored (PlanStore.where). */
  where: string;
  tuned: TunedPlan;
}

/** Timing submissions made by tuning in this process (a test reads it: a cached load makes none). */
export const tuneCounters = { timedSubmissions: 0 };

/** Samples per measurement; the least counts. */
const SAMPLES = 3;
/** Work per sample the repetitions aim at, and their most. */
const SAMPLE_MS = 10;
const MAX_REPS = 50;
/** Another variant replaces the fixed rules' only when faster by more than this fraction. */
export const KEEP_DEFAULT_WITHIN = 0.03;
/** A warm-up run this many times slower than the best so far ends that variant's measurement. */
export const CUT_OFF = 3;

const defaultStore = new MemoryPlanStore();

const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');

export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  return hex(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
}

const digests = new WeakMap<OnnxModel, Promise<string>>();

/**
 * SHA-256 of a model's content: its graph (nodes, inputs, outputs) as JSON and each initializer's
 * name, type, dims and the SHA-256 of its bytes (hashed one by one: no copy of the whole model).
 */
export function modelDigest(model: OnnxModel): Promise<string> {
  let d = digests.get(model);
  if (!d) {
    d = (async () => {
      const inits: string[] = [];
      for (const [name, t] of [...model.initializers.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        const data = t.data as ArrayBufferView;
        inits.push(`${name}|${t.data.constructor.name}|${t.dims.join(',')}|${await sha256Hex(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))}`);
      }
      // (A Constant node's int64 tensor holds bigints, which JSON has no form for: written as their digits.)
      const graph = JSON.stringify({ inputs: model.inputs, outputs: model.outputs, nodes: model.nodes, opset: model.opset }, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
      return sha256Hex(`${graph}\n${inits.join('\n')}`);
    })();
    digests.set(model, d);
  }
  return d;
}

let shaderDigest: Promise<string> | undefined;

/** The engine version a plan is for: package.json's version and the SHA-256 of every kernel's WGSL. */
export async function engineVersion(): Promise<PlanKey['engine']> {
  shaderDigest ??= sha256Hex(ALL_KERNELS.map((k) => `${k.name}\n${k.code}`).join('\n'));
  return { version: packageJson.version, shaders: await shaderDigest };
}

/** What a plan for `graph` at `batch` images is stored under; `input` is the graph's input shape with that batch. */
export async function planKey(gpu: GpuContext, model: OnnxModel, graph: Graph, batch = graph.batch): Promise<PlanKey> {
  const { vendor, architecture, device, description } = gpu.adapter;
  return { adapter: { vendor, architecture, device, description }, model: await modelDigest(model), input: [batch, ...graph.input.shape.slice(1)], engine: await engineVersion() };
}

/** A conv layer's name in a plan: its Conv node's (the op's first name; fused ops follow after '+'). */
export const planLayerName = (opName: string) => opName.split('+')[0];

/** The graph's conv layers grouped by distinct shape (window, channels, input size with `batch` images, fused ReLU). */
export function distinctConvShapes(graph: Graph, batch = graph.batch): { op: ConvOp; input: number[]; output: number[]; layers: string[] }[] {
  const byKey = new Map<string, { op: ConvOp; input: number[]; output: number[]; layers: string[] }>();
  for (const op of graph.ops) {
    if (op.kind !== 'conv') continue;
    const input = [batch, ...graph.tensors.get(op.inputs[0])!.shape.slice(1)];
    const output = [batch, ...graph.tensors.get(op.output)!.shape.slice(1)];
    const { cIn, cOut, kh, kw, strideH, strideW, pads, dilations, group, relu } = op;
    const key = JSON.stringify([cIn, cOut, kh, kw, strideH, strideW, pads, dilations, group, relu, input, output]);
    const known = byKey.get(key);
    if (known) known.layers.push(op.name);
    else byKey.set(key, { op, input, output, layers: [op.name] });
  }
  return [...byKey.values()];
}

/** Seeded values in [−0.5, 0.5) (an LCG: the same input on every run; the bench's kernel lab fills its buffers with them too). */
export function seeded(n: number, seed: number): Float32Array<ArrayBuffer> {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32 - 0.5;
  return out;
}

/**
 * Milliseconds per run of `dispatches` (file comment: warm-up, repetitions, least of SAMPLES);
 * `cut`: the warm-up run alone when it exceeds `cutMs`.
 */
async function timeDispatches(gpu: GpuContext, dispatches: readonly Dispatch[], cutMs = Infinity): Promise<{ ms: number; cut: boolean }> {
  const { device } = gpu;
  const timestamps = gpu.features.timestamps;
  const querySet = timestamps ? device.createQuerySet({ type: 'timestamp', count: 2 }) : undefined;
  const resolve = timestamps ? createBuffer(device, { size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }) : undefined;
  const staging = timestamps ? createBuffer(device, { size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }) : undefined;
  const once = async (reps: number): Promise<number> => {
    tuneCounters.timedSubmissions++;
    const encoder = device.createCommandEncoder({ label: 'tune' });
    const pass = encoder.beginComputePass({ label: 'tune', timestampWrites: querySet ? { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } : undefined });
    for (let r = 0; r < reps; r++) {
      for (const d of dispatches) {
        pass.setPipeline(d.pipeline);
        pass.setBindGroup(0, d.bindGroup);
        pass.dispatchWorkgroups(...d.workgroups);
      }
    }
    pass.end();
    if (querySet) {
      encoder.resolveQuerySet(querySet, 0, 2, resolve!, 0);
      encoder.copyBufferToBuffer(resolve!, 0, staging!, 0, 16);
    }
    const t0 = performance.now();
    device.queue.submit([encoder.finish()]);
    if (!staging) {
      await device.queue.onSubmittedWorkDone();
      return (performance.now() - t0) / reps;
    }
    await staging.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    return Number(t[1] - t[0]) / 1e6 / reps;
  };
  try {
    const first = await once(1);
    if (first > cutMs) return { ms: first, cut: true };
    const reps = Math.max(1, Math.min(MAX_REPS, Math.ceil(SAMPLE_MS / Math.max(first, 1e-3))));
    let best = Infinity;
    for (let s = 0; s < SAMPLES; s++) best = Math.min(best, await once(reps));
    return { ms: best, cut: false };
  } finally {
    querySet?.destroy();
    destroyBuffer(resolve);
    destroyBuffer(staging);
  }
}

/**
 * Times `variant` on one layer shape in one direction: the layer's kernel built alone in an
 * environment that chooses `variant` for it, its buffers seeded, freed afterwards.
 */
export async function timeVariant(gpu: GpuContext, base: KernelEnv, s: { op: ConvOp; input: number[]; output: number[] },
  direction: Direction, variant: ConvVariantName, cutMs = Infinity): Promise<{ ms: number; cut: boolean }> {
  const env = new KernelEnv(gpu.device, base.variant, {}, base.pipelines, new Map([[s.op.name, { forward: variant, backward: variant }]]));
  try {
    // B images (B = s.input[0]) one after another, as the engine lays a batch out.
    const batch = s.input[0];
    const xN = perImage(s.input), yN = perImage(s.output);
    const x = { buffer: env.scratch(batch * xN, 'tune x'), offset: 0, stride: xN };
    const y = { buffer: env.scratch(batch * yN, 'tune y'), offset: 0, stride: yN };
    const dy = { buffer: env.scratch(batch * yN, 'tune dy'), offset: 0, stride: yN };
    gpu.device.queue.writeBuffer(x.buffer, 0, seeded(batch * xN, 1));
    gpu.device.queue.writeBuffer(y.buffer, 0, seeded(batch * yN, 2));
    gpu.device.queue.writeBuffer(dy.buffer, 0, seeded(batch * yN, 3));
    const kernel = conv.kernel(s.op, { inputs: [s.input], output: s.output });
    const dispatches = direction === 'forward'
      ? await kernel.forward({ env, inputs: [x], output: y, batch })
      : await kernel.backward({ env, inputs: [x], output: y, dy, dx: [{ view: x, accumulate: false }], items: batch, maskDiv: 1 });
    return await timeDispatches(gpu, dispatches, cutMs);
  } finally {
    env.destroy();
  }
}

/** The measurements tuning `graph` at `batch` makes: each distinct shape × direction × applicable variant, the fixed rules' first. */
export function tuneWork(graph: Graph, family: KernelVariant, batch = graph.batch) {
  return distinctConvShapes(graph, batch).flatMap((s) => (['forward', 'backward'] as const).flatMap((direction) => {
    const fixed = convLowering(s.op, family, direction);
    return [fixed, ...applicableVariants(s.op, direction).filter((v) => v !== fixed)].map((variant) => ({ s, direction, variant }));
  }));
}

/**
 * The tuned plan for `graph` (of `model`) at `batch` images on this adapter: the stored one when
 * there is one for the same key (no timing at all), else measured now and stored; undefined only
 * with `storedOnly` and none stored.
 */
export async function tune(gpu: GpuContext, model: OnnxModel, graph: Graph, family: KernelVariant, options: TuneOptions = {}, batch = graph.batch): Promise<TuneReport | undefined> {
  if (!Number.isSafeInteger(batch) || batch < 1) throw new GradcamError(`tune: batch size ${batch} is not an integer ≥ 1`);
  const store = options.store ?? defaultStore;
  const key = await planKey(gpu, model, graph, batch);
  const id = await sha256Hex(JSON.stringify(key));
  if (!options.force || options.storedOnly) {
    const stored = await store.get(id);
    // (A plan stored before plans named layers by their Conv node alone: its names made so.)
    if (isTunedPlanFor(stored, key)) return { source: 'cache', where: store.where(id), tuned: { ...stored, plan: Object.fromEntries(Object.entries(stored.plan).map(([k, v]) => [planLayerName(k), v])) } };
    if (options.storedOnly) return undefined;
  }
  const work = tuneWork(graph, family, batch);
  const base = new KernelEnv(gpu.device, family);
  const timings: TuneTiming[] = [];
  const plan: Plan = {};
  try {
    const best = new Map<string, { variant: ConvVariantName; ms: number }>();
    for (const [i, w] of work.entries()) {
      const k = `${w.s.layers[0]}|${w.direction}`;
      const b = best.get(k);
      const { ms, cut } = await timeVariant(gpu, base, w.s, w.direction, w.variant, b ? CUT_OFF * b.ms : Infinity);
      timings.push({ layers: w.s.layers, shape: `${describeConv(w.s.op)}, input ${w.s.input.slice(1).join('×')}${batch > 1 ? ` × ${batch} images` : ''}`, direction: w.direction, variant: w.variant, ms, ...(cut ? { cut } : {}) });
      const fixed = convLowering(w.s.op, family, w.direction);
      // The fixed rules' variant wins ties within the noise: compare against its time discounted by KEEP_DEFAULT_WITHIN.
      const score = (v: ConvVariantName, t: number) => (v === fixed ? t * (1 - KEEP_DEFAULT_WITHIN) : t);
      if (!b || score(w.variant, ms) < score(b.variant, b.ms)) best.set(k, { variant: w.variant, ms });
      options.onProgress?.({ done: i + 1, total: work.length, batch, layer: w.s.layers[0], direction: w.direction, variant: w.variant, ms });
    }
    for (const s of distinctConvShapes(graph, batch)) {
      for (const layer of s.layers) {
        plan[planLayerName(layer)] = { forward: best.get(`${s.layers[0]}|forward`)!.variant, backward: best.get(`${s.layers[0]}|backward`)!.variant };
      }
    }
  } finally {
    base.destroy();
  }
  const tuned: TunedPlan = { format: TUNED_PLAN_FORMAT, key, date: new Date().toISOString(), method: gpu.features.timestamps ? 'timestamps' : 'wall', plan, timings };
  await store.put(id, tuned);
  return { source: 'measured', where: store.where(id), tuned };
}

/**
 * The batch size whose plan an engine of `batch` images takes, of those tuned: `batch` itself, else
 * the largest below it (the nearest smaller problem the plan was measured on); none below: undefined
 * (the fixed rules: a load tunes at its own batch, 1 for most models, so this is rare).
 */
export function tunedBatchFor(tuned: Iterable<number>, batch: number): number | undefined {
  return [...tuned].filter((b) => b <= batch).sort((a, b) => a - b).at(-1);
}
