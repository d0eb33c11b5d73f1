/**
 * The benchmark, platform-neutral: given a GPU context, the model bytes, onnxruntime-web providers
 * and a logger, it measures (names are stable; they are the JSON's keys):
 *
 *   forward                      writeInput + classify (one submission, read-back of logits and
 *                                probabilities), wall time until the read-back completes
 *   forward.gpu                  the same forward's GPU time (timestamps at the start and end of
 *                                its compute pass; no read-back inside), when 'timestamp-query' exists
 *   gradcam.<layer>.k<K>         net.gradCAM(tensor, {classes: topK, featureLayers: layer,
 *                                upsample: false}): forward + backward + map, one submission and one
 *                                read-back, wall time; layer auto (the default layer: any model, K = 1),
 *                                inception_4e / inception_5b (GoogLeNet), K = 1 / 5
 *   gradcam.<layer>.k<K>.gpu     its GPU time (forward + backward + map stages, from the result's timings)
 *   gradcam.inception_4e.all-methods.k1   the same with every CAM method at the layer in one call
 *                                (methods: gradcam … eigencam; one forward and one backward pass)
 *   guided.k1                    net.gradCAM with guided-backprop and guided-gradcam (top 1, default
 *                                layer): forward, backward to the layer, guided backward to the input
 *   load                         decode + Network.load (lower, weight upload, pipeline compilation)
 *                                on a fresh device each run (no pipeline cached by Dawn for it)
 *   load.decode, load.compile    its parts: ONNX decode; Engine.compileMs (lower + compile + upload)
 *   load.first-forward           the first forward on that fresh device (a driver that compiles
 *                                lazily pays here)
 *   load.same-device             decode + Network.load again on the device that ran everything
 *                                above (Dawn dedups identical pipelines per device: mostly a cache hit)
 *   ort-webgpu.forward           onnxruntime-web, WebGPU execution provider, session.run from input
 *                                tensor to logits + probabilities on the CPU, after warm-up
 *   ort-wasm.forward             the same on its wasm (CPU) execution provider
 *   ort-node.forward             onnxruntime-node (native CPU), Node only
 *   ort-*.session, ort-*.first-run   session creation, and the first run alone (1 run each)
 *   batch.forward.b<B>, batch.gradcam.inception_4e.b<B>   only with batchSizes (--batch-sizes):
 *                                one call of B images (net.classify, gradCAM at inception_4e, K = 1,
 *                                raw maps) on the engine compiled for B; images/s and the ratio to
 *                                B = 1 in `batches` (bench/batch.ts)
 *   kernels                      only with kernels (--kernels): the kernel lab (bench/kernels.ts): the
 *                                device's bandwidth and FMA peaks, every conv variant on every distinct
 *                                layer shape alone, a GEMM sweep; in `kernels`, not in measurements
 *
 * The bench/main.ts CLI (Node, Dawn) and bench/page.ts (browser) call `runBench`.
 */
import { requestGpu, type AdapterSummary, type GpuContext } from '../src/gpu/device.ts';
import { resolveLayers } from '../src/gradcam/layers.ts';
import { Network, type NetworkOptions } from '../src/gradcam/network.ts';
import { isMultiPass, type Method, METHODS, methodSpec } from '../src/gradcam/methods.ts';
import { GradcamProgram } from '../src/gradcam/program.ts';
import type { Recipe } from '../src/image/recipes.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import type { Engine } from '../src/runtime/engine.ts';
import pkg from '../package.json';
import { benchBatches, type BatchThroughput } from './batch.ts';
import { agreement, benchOrt, type Agreement, type OrtProvider } from './ort.ts';
import { runKernelLab, type KernelLab } from './kernels.ts';
import { type TunedForward, tunedForward } from './tuned.ts';
import type { PlanStore, TuneTiming } from '../src/runtime/plan-store.ts';
import { TINY_PEAKS } from './peaks.ts';
import { byOpType, profileStages, type Profile } from './profile.ts';
import { fmtMs, median, round, sample, summarize, type Measurement } from './stats.ts';

export type { Measurement } from './stats.ts';

export interface BenchOptions {
  /** Timed runs per measurement (ours and ORT's), after `warmup` untimed ones. */
  runs: number;
  warmup: number;
  /** Fresh-device load runs (each compiles every pipeline again). */
  loadRuns: number;
  /** Overrides `runs` / `warmup` for the ORT measurements (ORT's WebGPU run takes long on SwiftShader). */
  ortRuns?: number;
  ortWarmup?: number;
  /** Measurement names or prefixes to run ('forward', 'gradcam', 'gradcam.inception_4e', 'load', 'ort', 'ort-wasm'); null: all. */
  only: string[] | null;
  /** Per-kernel profile from timestamp queries. */
  profile: boolean;
  profileRuns: number;
  /** Batch sizes for the throughput measurements (batch.*; bench/batch.ts); none by default. */
  batchSizes?: number[];
  /** The kernel lab (bench/kernels.ts): peaks, every conv variant per layer shape, the GEMM sweep. */
  kernels?: boolean;
  /** Timed runs per kernel in the lab (after one warm-up run); default 5. */
  kernelRuns?: number;
  /** The lab's GEMM sweep sizes (M, N, K over them); default by adapter. */
  gemmSizes?: number[];
  /** 'tiny': the peak probe at tiny sizes (smoke runs, tests); default: sized for the adapter. */
  peakSizes?: 'tiny';
  /** Our network's conv variants: a variant name wherever it applies, or a family ('cpu', 'gpu'); default: by adapter (src/kernels/variants.ts). */
  variant?: string;
  /** Also forward.fixed-rules and forward.tuned in alternation: the plan tuned on this adapter against the fixed rules (bench/tuned.ts). */
  tune?: boolean;
}

export const DEFAULT_OPTIONS: BenchOptions = { runs: 20, warmup: 3, loadRuns: 3, only: null, profile: false, profileRuns: 5 };

/** What the platform says about the machine; sampled at the start and at the end. */
export interface MachineSample {
  cpuModel?: string;
  cores?: number;
  memoryGiB?: number;
  /** 1, 5 and 15 minute load averages (Node on Unix). */
  loadAverage?: number[];
  userAgent?: string;
  os?: string;
}

export interface BenchSetup {
  platform: 'node' | 'browser';
  gpu: GpuContext;
  /** A new device on the same adapter (for cold loads); default: requestGpu(gpu.owner). */
  freshGpu?: () => Promise<GpuContext>;
  model: { name: string; bytes: Uint8Array };
  /** The rivals, run in this order ('ort-wasm', 'ort-webgpu'). */
  ort: OrtProvider[];
  log: (line: string) => void;
  options: BenchOptions;
  /** node, webgpu (Dawn) package, browser: whatever the platform knows; ours and ORT's are added. */
  versions: Record<string, string>;
  machine: () => MachineSample | Promise<MachineSample>;
  notes?: string[];
  /** The kernel lab's rows so far, after each one (the page draws its charts live). */
  onKernels?: (lab: KernelLab) => void;
  /** Grad-CAM's stages so far, after each case is measured, with the measurements so far (the page draws the stacked bars live). */
  onStages?: (live: Pick<BenchResult, 'gradcamStages' | 'measurements'>) => void;
  /** Where tuned plans are kept (with tune; default: memory): the CLI's cache files, the page's IndexedDB. */
  planStore?: PlanStore;
}

export interface Ratio {
  name: string;
  value: number | null;
  /** e.g. '≤ 0.05'; met: whether value satisfies it. */
  target?: string;
  met?: boolean;
}

/** Median time of each stage of a Grad-CAM run (GPU timestamps per stage, or CPU time per submitted stage). */
export interface GradcamStages {
  name: string;
  source: 'gpu' | 'cpu';
  forwardMs: number;
  backwardMs: number;
  mapMs: number;
}

export interface BenchResult {
  schema: 'gradcam-webgpu-bench/1';
  date: string;
  /** Suggested file name: <date>-<adapterSlug>.json. */
  fileName: string;
  /** The adapter in a file name: 'swiftshader', 'nvidia-h100-80gb-hbm3', ... */
  adapterSlug: string;
  platform: 'node' | 'browser';
  adapter: AdapterSummary & { features: GpuContext['features']; kernelVariant?: string };
  versions: Record<string, string>;
  machine: Omit<MachineSample, 'loadAverage'> & {
    loadAverageStart?: number[]; loadAverageEnd?: number[];
    /** The 1-minute load average after each measurement: [measurement, load]. */
    loadAverageDuring?: [string, number][];
  };
  model: { name: string; bytes: number; sha256: string; input: { name: string; shape: number[] }; logits: string; probabilities?: string; opCounts: Record<string, number> };
  options: BenchOptions;
  measurements: Measurement[];
  /** Every timed run, by measurement name. */
  samples: Record<string, number[]>;
  ratios: Ratio[];
  gradcamStages: GradcamStages[];
  /** Our logits against each rival's on the same input. */
  sanity: Agreement[];
  ort: { name: string; build: string; executionProvider: string; threads: number; notes?: string[] }[];
  profile?: Profile;
  /** Images per second by batch size (with batchSizes). */
  batches?: BatchThroughput[];
  /** The kernel lab (with kernels: --kernels): peaks, conv variants per layer shape, GEMM sweep. */
  kernels?: KernelLab;
  /** With tune (--tune): the tuned plan against the fixed rules (forward.tuned, forward.fixed-rules). */
  tuned?: {
    source: 'cache' | 'measured'; method: 'timestamps' | 'wall'; where: string;
    /** Median of the paired ratios fixed / tuned (> 1: tuned faster). */
    pairedRatio: number;
    changed: TunedForward['changed'];
    timings: TuneTiming[];
  };
  notes: string[];
  elapsedS: number;
}

/** Every CAM method that works at the feature layer (methods.ts: all but the guided ones), for the all-methods case. */
const LAYER_METHODS = METHODS.filter((m) => methodSpec(m).kind !== 'guided' && !isMultiPass(m));

/**
 * GoogLeNet's layers, and `auto` (the default layer, any CNN: issue 18's target ≤ 1.3 × forward).
 * A case whose layer the model lacks is skipped with a note.
 */
export const GRADCAM_CASES: readonly { layer: string; k: number; methods?: readonly Method[] }[] = [
  { layer: 'auto', k: 1 },
  { layer: 'inception_4e', k: 1 }, { layer: 'inception_4e', k: 1, methods: LAYER_METHODS }, { layer: 'inception_4e', k: 5 },
  { layer: 'inception_5b', k: 1 }, { layer: 'inception_5b', k: 5 },
];

/** gradcam.<layer>.k<K>, or gradcam.<layer>.all-methods.k<K> for the case with every layer method. */
export const gradcamCaseName = (c: (typeof GRADCAM_CASES)[number]) => `gradcam.${c.layer}${c.methods ? '.all-methods' : ''}.k${c.k}`;

/** A deterministic picture (smooth colour fields plus hashed noise), preprocessed by the model's recipe. */
export function syntheticInput(shape: readonly number[], recipe: Recipe): Float32Array {
  const [n, c, h, w] = shape;
  const out = new Float32Array(n * c * h * w);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const hash = (((x * 73856093) ^ (y * 19349663) ^ (b * 83492791)) >>> 0) % 1000 / 1000;
        const rgb = [
          128 + 90 * Math.sin(x / 17 + b) * Math.cos(y / 23) + 30 * (hash - 0.5),
          128 + 90 * Math.cos((x + y) / 29) + 30 * (0.5 - hash),
          128 + 90 * Math.sin(y / 13) * Math.sin(x / 31) + 20 * hash,
        ].map((v) => Math.max(0, Math.min(255, v)));
        for (let ch = 0; ch < c; ch++) {
          const src = recipe.channelOrder === 'BGR' ? 2 - (ch % 3) : ch % 3;
          out[((b * c + ch) * h + y) * w + x] = (rgb[src] * recipe.valueScale - recipe.mean[src]) / recipe.std[src];
        }
      }
    }
  }
  return out;
}

/** Times one forward pass on the GPU: timestamps around its compute pass, resolved and mapped. */
class ForwardGpuTimer {
  private querySet: GPUQuerySet;
  private resolved: GPUBuffer;
  private staging: GPUBuffer;

  constructor(private device: GPUDevice) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 });
    this.resolved = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.staging = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  async run(engine: Engine): Promise<number> {
    const encoder = this.device.createCommandEncoder({ label: 'forward (timed)' });
    engine.encodeForward(encoder, { querySet: this.querySet, begin: 0, end: 1 });
    encoder.resolveQuerySet(this.querySet, 0, 2, this.resolved, 0);
    encoder.copyBufferToBuffer(this.resolved, 0, this.staging, 0, 16);
    this.device.queue.submit([encoder.finish()]);
    await this.staging.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(this.staging.getMappedRange().slice(0));
    this.staging.unmap();
    return Number(t[1] - t[0]) / 1e6;
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolved.destroy();
    this.staging.destroy();
  }
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function adapterSlug(a: AdapterSummary): string {
  const text = `${a.vendor} ${a.architecture} ${a.description} ${a.device}`.toLowerCase();
  if (text.includes('swiftshader')) return 'swiftshader';
  const s = (a.description || `${a.vendor}-${a.architecture}-${a.device}`).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return s.slice(0, 60) || 'unknown-adapter';
}

export function selects(only: string[] | null, name: string): boolean {
  if (!only) return true;
  return only.some((t) => name === t || name.startsWith(`${t}.`) || name.startsWith(`${t}-`));
}

export async function runBench(setup: BenchSetup): Promise<BenchResult> {
  const t0 = performance.now();
  const { gpu, log, options: o } = setup;
  const sel = (name: string) => selects(o.only, name);
  const machineStart = await setup.machine();
  const measurements: Measurement[] = [];
  const samples: Record<string, number[]> = {};
  const notes = [...(setup.notes ?? [])];
  const loadDuring: [string, number][] = [];
  const record = async (name: string, xs: number[]) => {
    if (xs.length === 0) return;
    const m = summarize(name, xs);
    measurements.push(m);
    samples[name] = xs.map((x) => round(x));
    const load1 = (await setup.machine()).loadAverage?.[0];
    if (load1 !== undefined) loadDuring.push([name, load1]);
    log(`${name}: ${m.runs} run${m.runs === 1 ? '' : 's'}, median ${fmtMs(m.medianMs)} (min ${fmtMs(m.minMs)}, max ${fmtMs(m.maxMs)})${load1 !== undefined ? `; load ${load1}` : ''}`);
  };
  if (gpu.adapter.isSoftware) notes.push('Software adapter (CPU): absolute times mean little; compare ratios against the rivals measured in the same run.');

  const bytes = setup.model.bytes;
  let t = performance.now();
  const net = await Network.load(gpu, decodeOnnx(bytes), { variant: o.variant as NetworkOptions['variant'] });
  log(`loaded ${setup.model.name} (${(bytes.length / 1e6).toFixed(1)} MB) in ${fmtMs(performance.now() - t)} (first load in this process)`);
  const graph = net.graph;
  const shape = [...net.engine.inputShape];
  const input = syntheticInput(shape, net.engine.recipe);
  const timestamps = gpu.features.timestamps;
  if (!timestamps) notes.push("The adapter has no 'timestamp-query': no GPU times (forward.gpu, gradcam.*.gpu) and no per-kernel profile.");

  // Our forward: writeInput + classify, wall time to the read-back.
  let ourLogits: Float32Array | undefined;
  const forward = async () => {
    net.engine.writeInput(input, shape);
    ourLogits = (await net.engine.classify()).logits;
  };
  let tuned: BenchResult['tuned'];
  if (o.tune && sel('forward')) {
    // The fixed rules and the tuned plan on two networks, run in alternation (bench/tuned.ts).
    let shown = 0;
    const t = await tunedForward(gpu, decodeOnnx(bytes), input, {
      runs: o.runs, warmup: o.warmup, store: setup.planStore,
      onProgress: (p) => {
        if (p.done === p.total || p.done - shown >= Math.max(1, Math.round(p.total / 20))) log(`tuning: ${(shown = p.done)}/${p.total} measurements`);
      },
    });
    await record('forward.fixed-rules', t.fixedMs);
    await record('forward.tuned', t.tunedMs);
    tuned = { source: t.tuning.source, method: t.tuning.tuned.method, where: t.tuning.where, pairedRatio: round(t.ratio, 4), changed: t.changed, timings: t.tuning.tuned.timings };
    log(`tuned plan (${t.tuning.source}): ${t.changed.length} layer directions differ from the fixed rules; forward fixed / tuned, paired: ${t.ratio.toFixed(3)}`);
  }
  if (sel('forward')) {
    await record('forward', await sample(o.runs, o.warmup, forward));
    if (timestamps && sel('forward.gpu')) {
      const timer = new ForwardGpuTimer(gpu.device);
      await record('forward.gpu', await sample(o.runs, 1, () => {
        net.engine.writeInput(input, shape);
        return timer.run(net.engine);
      }));
      timer.destroy();
    }
  }

  // Grad-CAM: forward + backward + map at one layer for the top K classes, maps not upsampled.
  const gradcamStages: GradcamStages[] = [];
  for (const c of GRADCAM_CASES) {
    const name = gradcamCaseName(c);
    if (!sel(name)) continue;
    const options = { classes: `top${c.k}` as const, featureLayers: c.layer, upsample: false, methods: c.methods ? [...c.methods] : undefined };
    try {
      await net.gradCAM({ shape, data: input }, options); // compiles the program; fails early for a model without the layer
    } catch (e) {
      notes.push(`${name}: skipped (${(e as Error).message})`);
      log(`${name}: skipped (${(e as Error).message})`);
      continue;
    }
    const gpuTimes: number[] = [];
    const stages = { forward: [] as number[], backward: [] as number[], map: [] as number[] };
    await record(name, await sample(o.runs, o.warmup, async (i) => {
      const r = await net.gradCAM({ shape, data: input }, options);
      if (i < 0) return;
      stages.forward.push(r.timings.forwardMs);
      stages.backward.push(r.timings.backwardMs);
      stages.map.push(r.timings.camMs);
      if (r.timings.source === 'gpu') gpuTimes.push(r.timings.forwardMs + r.timings.backwardMs + r.timings.camMs);
    }));
    await record(`${name}.gpu`, gpuTimes);
    gradcamStages.push({
      name, source: timestamps ? 'gpu' : 'cpu',
      forwardMs: round(median(stages.forward)), backwardMs: round(median(stages.backward)), mapMs: round(median(stages.map)),
    });
    setup.onStages?.({ gradcamStages: [...gradcamStages], measurements: [...measurements] });
    if (c.methods) {
      // Each method's own time: its dispatches replayed alone (Network.profileMethods), median of `runs`.
      const r = await net.profileMethods({ shape, data: input }, options, o.runs);
      const msg = `${name}: per method (median of ${o.runs} replays, ${r.timings.source === 'gpu' ? 'GPU timestamps' : 'CPU clock'}): ${
        Object.entries(r.timings.methodMs ?? {}).map(([m, ms]) => `${m} ${fmtMs(ms)}`).join(', ')}`;
      notes.push(msg);
      log(msg);
    }
  }

  // Throughput by batch size: one call of B images each, on the engine compiled for B.
  let batches: BatchThroughput[] | undefined;
  if (o.batchSizes?.length && sel('batch')) batches = await benchBatches(net, o.batchSizes, o.runs, o.warmup, syntheticInput, record, log);

  // The guided methods (a second, guided backward pass down to the input), K = 1, at the default layer.
  if (sel('guided.k1')) {
    const options = { classes: 'top1' as const, methods: ['guided-backprop', 'guided-gradcam'] as Method[], upsample: false };
    await net.gradCAM({ shape, data: input }, options); // compiles the program
    await record('guided.k1', await sample(o.runs, o.warmup, async () => {
      await net.gradCAM({ shape, data: input }, options);
    }));
  }

  // Per-kernel profile: the forward, and the backward + map stage of a Grad-CAM at inception_4e, K = 1.
  let profile: Profile | undefined;
  if (o.profile && !timestamps) log("profile: skipped, the adapter has no 'timestamp-query'");
  if (o.profile && timestamps) {
    let layers: string[];
    try {
      layers = resolveLayers(net.graph, ['inception_4e']);
    } catch {
      layers = resolveLayers(net.graph, ['auto']);
    }
    // A Grad-CAM through the network first: it rebuilds the engine if the layer was hidden by fusion.
    await net.gradCAM({ shape, data: input }, { classes: 'top1', featureLayers: layers, upsample: false });
    const engine = net.engine;
    const program = await GradcamProgram.create(engine, { layers, classesPerImage: 1, reduction: 'logit' });
    program.writeClasses(null);
    const gradcamDispatches = [...program.backwardStage, ...program.cam];
    log(`profile: ${o.profileRuns} runs of ${engine.forwardDispatches.length} forward and ${gradcamDispatches.length} Grad-CAM dispatches`);
    const [fwd, cam] = await profileStages(gpu.device, [engine.forwardDispatches, gradcamDispatches], o.profileRuns,
      () => engine.writeInput(input, shape));
    const sum = (rows: typeof fwd) => round(rows.reduce((a, r) => a + r.ms, 0));
    profile = {
      runs: o.profileRuns,
      gradcamRequest: `layer ${layers.join(', ')}, K = 1, reduction logit (top-1 + seed + targeted backward + alpha + map)`,
      totals: { forwardMs: sum(fwd), gradcamMs: sum(cam) },
      forward: fwd, gradcam: cam,
      byOpType: [...byOpType('forward', fwd), ...byOpType('gradcam', cam)],
    };
  }

  // The kernel lab: the device's peaks, every conv variant on every distinct layer shape alone, a GEMM sweep.
  let kernels: KernelLab | undefined;
  if (o.kernels && sel('kernels')) {
    kernels = await runKernelLab(gpu, net.graph, {
      runs: o.kernelRuns ?? 5, warmup: 1, gemmSizes: o.gemmSizes, peakSizes: o.peakSizes === 'tiny' ? TINY_PEAKS : undefined,
    }, log, setup.onKernels);
  }

  // Load: decode + Network.load on a fresh device (pipelines compiled again), then on this device.
  if (sel('load')) {
    const fresh = setup.freshGpu ?? (() => requestGpu(gpu.owner as GPU));
    const total: number[] = [], decode: number[] = [], compile: number[] = [], first: number[] = [];
    for (let i = 0; i < o.loadRuns; i++) {
      const g = await fresh();
      try {
        t = performance.now();
        const model = decodeOnnx(bytes);
        const d = performance.now() - t;
        const n = await Network.load(g, model);
        total.push(performance.now() - t);
        decode.push(d);
        compile.push(n.engine.compileMs);
        t = performance.now();
        n.engine.writeInput(input, shape);
        await n.engine.classify();
        first.push(performance.now() - t);
        n.destroy();
      } finally {
        g.device.destroy();
      }
    }
    await record('load', total);
    await record('load.decode', decode);
    await record('load.compile', compile);
    await record('load.first-forward', first);
    if (sel('load.same-device')) {
      await record('load.same-device', await sample(o.loadRuns, 0, async () => {
        (await Network.load(gpu, decodeOnnx(bytes))).destroy();
      }));
    }
  }

  // The rivals: onnxruntime-web on the same model bytes and input.
  const sanity: Agreement[] = [];
  const outs = {
    logits: graph.logits, logitsShape: graph.tensors.get(graph.logits)!.shape,
    probabilities: graph.probabilities, probabilitiesShape: graph.probabilities ? graph.tensors.get(graph.probabilities)!.shape : undefined,
  };
  const rivals = setup.ort.filter((p) => sel(`${p.name}.forward`));
  if (rivals.length && !ourLogits) await forward();
  for (const p of rivals) {
    try {
      const r = await benchOrt(p, bytes, graph.input.name, input, shape, outs, o.ortRuns ?? o.runs, o.ortWarmup ?? o.warmup, log);
      await record(`${p.name}.forward`, r.samples);
      await record(`${p.name}.session`, [r.sessionMs]);
      await record(`${p.name}.first-run`, [r.firstRunMs]);
      const a = agreement(p.name, ourLogits!, r.logits);
      sanity.push(a);
      log(`${p.name}: logits vs ours: max |Δ| ${a.maxAbsDiff.toExponential(2)} (${a.relDiff.toExponential(2)} of max |logit|), top-1 ${a.top1Agrees ? 'agrees' : 'DIFFERS'}, top-5 overlap ${a.top5Overlap}/5${a.ok ? '' : '  <-- MISMATCH'}`);
    } catch (e) {
      const msg = `${p.name}: failed: ${(e as Error).message ?? e}`;
      notes.push(msg);
      log(msg);
    }
  }

  const med = (name: string) => measurements.find((m) => m.name === name)?.medianMs;
  const ratio = (a: string, b: string, max?: number): Ratio | undefined => {
    const x = med(a), y = med(b);
    if (x === undefined || y === undefined) return undefined;
    const value = round(x / y, 4);
    return { name: `${a} / ${b}`, value, ...(max !== undefined ? { target: `≤ ${max}`, met: value <= max } : {}) };
  };
  const targets: Record<string, number> = { 'gradcam.auto.k1': 1.3, 'gradcam.inception_4e.k1': 1.3, 'gradcam.inception_4e.k5': 1.6 };
  const plain = GRADCAM_CASES.filter((c) => !c.methods);
  const ratios = [
    ratio('forward.tuned', 'forward.fixed-rules'),
    ratio('forward', 'ort-webgpu.forward', 0.05), ratio('guided.k1', 'forward'), ratio('forward', 'ort-wasm.forward'), ratio('forward', 'ort-node.forward'),
    ...plain.map((c) => ratio(`gradcam.${c.layer}.k${c.k}`, 'forward', targets[`gradcam.${c.layer}.k${c.k}`])),
    ...plain.map((c) => ratio(`gradcam.${c.layer}.k${c.k}.gpu`, 'forward.gpu', targets[`gradcam.${c.layer}.k${c.k}`])),
    // Every layer method in one call against Grad-CAM alone (issue 12: ≤ 1.3).
    ...GRADCAM_CASES.filter((c) => c.methods).flatMap((c) => [
      ratio(gradcamCaseName(c), gradcamCaseName({ layer: c.layer, k: c.k }), 1.3),
      ratio(`${gradcamCaseName(c)}.gpu`, `${gradcamCaseName({ layer: c.layer, k: c.k })}.gpu`, 1.3),
    ]),
    // Less sensitive to load drift between measurements (SwiftShader on a busy CPU): our forward's GPU
    // time plus the backward and map stages measured inside each Grad-CAM run.
    ...gradcamStages.map((g): Ratio | undefined => {
      const f = med('forward.gpu');
      if (f === undefined || g.source !== 'gpu') return undefined;
      const value = round((f + g.backwardMs + g.mapMs) / f, 4);
      const max = targets[g.name];
      return { name: `${g.name}: (forward.gpu + backward + map) / forward.gpu`, value, ...(max !== undefined ? { target: `≤ ${max}`, met: value <= max } : {}) };
    }),
  ].filter((r): r is Ratio => r !== undefined);

  const kernelVariant = (net.engine.env as { variant?: string }).variant;
  net.destroy();
  const machineEnd = await setup.machine();
  const date = new Date().toISOString();
  const { loadAverage: loadStart, ...machine } = machineStart;
  return {
    schema: 'gradcam-webgpu-bench/1',
    date,
    fileName: `${date.slice(0, 10)}-${adapterSlug(gpu.adapter)}.json`,
    adapterSlug: adapterSlug(gpu.adapter),
    platform: setup.platform,
    adapter: { ...gpu.adapter, features: gpu.features, kernelVariant },
    versions: { 'gradcam-webgpu': pkg.version, ...setup.versions, ...Object.fromEntries(setup.ort.slice(0, 1).map((p) => ['onnxruntime-web', p.module.env.versions?.web ?? 'unknown'])) },
    machine: { ...machine, loadAverageStart: loadStart, loadAverageEnd: machineEnd.loadAverage, loadAverageDuring: loadDuring.length ? loadDuring : undefined },
    model: {
      name: setup.model.name, bytes: bytes.length, sha256: await sha256(bytes), input: { name: graph.input.name, shape },
      logits: graph.logits, probabilities: graph.probabilities, opCounts: graph.onnxOpCounts,
    },
    options: o,
    measurements, samples, ratios, gradcamStages, sanity,
    ort: setup.ort.map((p) => ({ name: p.name, build: p.build, executionProvider: p.executionProvider, threads: p.threads, notes: p.notes })),
    profile,
    batches,
    kernels,
    tuned,
    notes,
    elapsedS: round((performance.now() - t0) / 1000, 1),
  };
}
