/**
 * The multi-pass methods' speed (issue 20, item 4), as ratios measured in one run on one device:
 *
 *   scorecam / forwards     Score-CAM's passes at a layer of C channels in batches of B, against
 *                           ⌈C/B⌉ forwards of B images on an engine compiled for B, each submitted
 *                           and waited for (the same work without the masks, the scores and the
 *                           weights): the target is ≤ 1.1.
 *   scorecam / classify     the same against net.classify of B pictures ⌈C/B⌉ times (each batch
 *                           written from the CPU and its logits read back, as a Python loop over
 *                           batches does); left out with `classify: false`.
 *   ablationcam / scorecam  Ablation-CAM's passes (only the ops from the layer to the scores run
 *                           again) against Score-CAM's: the target is < 1/3.
 *
 * Times are the API's timings.passesMs (the passes, from the first batch to the weights; CPU clock)
 * and the CPU clock around the baselines; after one warm-up each, `runs` rounds of all legs in turn
 * (a changing load weighs on each alike), the median of each.
 *
 * The warm-up (`warmup`): 'run', each leg once whole; or 'batch', each leg's first batch only (the
 * methods cancelled through their AbortSignal after it: the pass engine made, the pipelines
 * compiled). Either way the warm-up gives each leg's time per batch (with 'batch' an upper bound:
 * the first batch includes the first uses), wall and process CPU time, and so an estimate of the
 * timed rounds (`estimate`: logged before they start; with `estimateOnly` nothing more runs), which
 * a 1024-channel layer on a CPU adapter needs (GoogLeNet at inception_5b: 64 batches of 16 per leg).
 * The CPU time (all the process's threads: SwiftShader's too) does not grow with other processes'
 * load as the wall time does: on a loaded machine it is the better guide to a quiet run.
 * `npm run bench -- --multipass [--model generated:NAME] [--size N] [--multipass-layer L]
 * [--multipass-batch B] [--no-classify] [--warmup-batch] [--estimate] [--runs N]`.
 */
import { AbortError } from '../src/errors.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import { Network } from '../src/gradcam/network.ts';
import type { GradcamOptions, GradcamResult, TensorInput } from '../src/gradcam/types.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { Engine } from '../src/runtime/engine.ts';

export interface MultipassBench {
  model: string;
  /** The input the model ran at ([1, C, H, W]). */
  inputShape: number[];
  layer: string;
  channels: number;
  batch: number;
  /** The batches timed per leg: all ⌈C/B⌉, or the first of them (MultipassOptions.batches). */
  batches: number;
  runs: number;
  warmup: Warmup;
  /** Medians, ms. */
  scorecamMs: number;
  ablationcamMs: number;
  /** ⌈C/B⌉ forwards of B images, each waited for. */
  forwardsMs: number;
  /** ⌈C/B⌉ net.classify calls of B inputs; null when left out. */
  classifyMs: number | null;
  ratios: { scorecamOverForwards: number; scorecamOverClassify: number | null; ablationOverScorecam: number };
  /** What the warm-up predicted. */
  estimate: Estimate;
}

/** 'run': each leg once whole; 'batch': each leg's first batch only. */
export type Warmup = 'run' | 'batch';

/** A leg's time per batch from its warm-up, and the timed rounds' predicted time. */
export interface Estimate {
  /** Per leg, ms per batch: wall time, and the process's CPU time (user + system, all threads). */
  legs: { leg: string; batches: number; batchMs: number; batchCpuMs: number }[];
  runs: number;
  /** runs × Σ batches × batchMs. */
  roundsMs: number;
  /** runs × Σ batches × batchCpuMs. */
  roundsCpuMs: number;
}

/** One measurement: `batches` batches per run. */
export interface Leg {
  batches: number;
  /** The whole leg, ms (the API's passesMs, or the CPU clock around the baseline). */
  run(): Promise<number>;
  /** The warm-up of mode 'batch': the first batch alone (a method's call cancelled after it). */
  oneBatch(): Promise<void>;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A deterministic input of the model's shape. */
export function syntheticTensor(shape: number[]): TensorInput {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 1.5;
  return { shape: [1, ...shape.slice(1)], data };
}

/**
 * A multi-pass method's call with its first `n` batches of passes only: cancelled through its
 * AbortSignal once the n-th is done. Returns the ms from the call's start to that batch's report
 * (the call's first pass included: more than those batches' passes alone).
 */
export async function firstBatches(net: Network, x: TensorInput, options: GradcamOptions, n: number): Promise<number> {
  const stop = new AbortController();
  const t0 = performance.now();
  let ms = NaN;
  let seen = 0;
  try {
    await net.gradCAM(x, {
      ...options, signal: stop.signal,
      onProgress: () => {
        if (++seen < n) return;
        ms = performance.now() - t0;
        stop.abort();
      },
    });
  } catch (e) {
    if (!(e instanceof AbortError)) throw e;
  }
  return ms;
}

/**
 * A method's leg of `batches` batches: its passesMs whole; or, when `of` (the call's batches) is
 * more, its first `batches` (firstBatches: an upper bound, with the call's first pass). The warm-up:
 * its first batch.
 */
export function methodLeg(net: Network, x: TensorInput, options: GradcamOptions, batches: number, of = batches,
  /** Given each whole call's result. */
  seen?: (r: GradcamResult) => void): Leg {
  return {
    batches,
    run: async () => {
      if (batches < of) return firstBatches(net, x, options, batches);
      const r = await net.gradCAM(x, options);
      seen?.(r);
      return r.timings.passesMs!;
    },
    oneBatch: async () => void await firstBatches(net, x, options, 1),
  };
}

/** A baseline's leg from `count` → ms of that many batches. */
export function baselineLeg(batches: number, time: (count: number) => Promise<number>): Leg {
  return { batches, run: () => time(batches), oneBatch: async () => void await time(1) };
}

/**
 * A baseline's leg of `batches` batches, batch b recorded by `encode` (which may also write its
 * inputs), each submitted alone and waited for: the CPU clock around them.
 */
export function submittedLeg(device: GPUDevice, batches: number, encode: (encoder: GPUCommandEncoder, b: number) => void): Leg {
  return baselineLeg(batches, async (count) => {
    const t0 = performance.now();
    for (let b = 0; b < count; b++) {
      const encoder = device.createCommandEncoder();
      encode(encoder, b);
      device.queue.submit([encoder.finish()]);
      await device.queue.onSubmittedWorkDone();
    }
    return performance.now() - t0;
  });
}

/**
 * Warms every leg up (see the module comment) and returns the estimate of `runs` rounds; logs each
 * leg's time per batch and the prediction.
 */
export async function warmUp(legs: Record<string, Leg>, warmup: Warmup, runs: number, log: (line: string) => void, what: string): Promise<Estimate> {
  const out: Estimate['legs'] = [];
  for (const [leg, l] of Object.entries(legs)) {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    if (warmup === 'run') await l.run();
    else await l.oneBatch();
    const cpu = process.cpuUsage(cpu0);
    const per = warmup === 'run' ? l.batches : 1;
    const batchMs = (performance.now() - t0) / per, batchCpuMs = (cpu.user + cpu.system) / 1000 / per;
    out.push({ leg, batches: l.batches, batchMs, batchCpuMs });
    log(`${what}: warm-up of ${leg} (${warmup === 'run' ? 'whole' : 'one batch'}): ${batchMs.toFixed(1)} ms per batch (CPU ${batchCpuMs.toFixed(1)} ms) × ${l.batches} batches`);
  }
  const roundsMs = runs * out.reduce((a, l) => a + l.batches * l.batchMs, 0);
  const roundsCpuMs = runs * out.reduce((a, l) => a + l.batches * l.batchCpuMs, 0);
  log(`${what}: ${runs} round${runs === 1 ? '' : 's'} of ${Object.keys(legs).join(', ')}: about ${(roundsMs / 60_000).toFixed(1)} min by the warm-up (CPU ${(roundsCpuMs / 60_000).toFixed(1)} min)`);
  return { legs: out, runs, roundsMs, roundsCpuMs };
}

/** `runs` rounds of every leg in turn (a machine's changing load weighs on each alike); the median of each. */
export async function rounds(legs: Record<string, Leg>, runs: number): Promise<Record<string, number>> {
  const samples: Record<string, number[]> = {};
  for (let r = 0; r < runs; r++) {
    for (const [what, l] of Object.entries(legs)) (samples[what] ??= []).push(await l.run());
  }
  return Object.fromEntries(Object.entries(samples).map(([k, xs]) => [k, median(xs)]));
}

/** The options of a bench made of legs (this file's and integrated-gradients.ts). */
export interface LegBenchOptions {
  /** Timed rounds (the median is kept). */
  runs?: number;
  warmup?: Warmup;
  /** Stop after the warm-up and its estimate. */
  estimateOnly?: boolean;
  log?: (line: string) => void;
  /** A network of `model` to use (not destroyed here); default: one loaded for the run. */
  net?: Network;
}

export interface MultipassOptions extends LegBenchOptions {
  layer?: string;
  batch?: number;
  /** The classify leg (default true). */
  classify?: boolean;
  /**
   * Time each leg's first `batches` batches only (default: all ⌈C/B⌉): the methods' calls cancelled
   * after them, each timed from its start (its first pass included, so an upper bound for them).
   */
  batches?: number;
}

/** Measures (see the module comment); with `estimateOnly`, the estimate alone. */
export async function benchMultipass(gpu: GpuContext, model: OnnxModel, name: string, o: MultipassOptions & { estimateOnly: true }): Promise<Estimate>;
export async function benchMultipass(gpu: GpuContext, model: OnnxModel, name: string, o?: MultipassOptions): Promise<MultipassBench>;
export async function benchMultipass(gpu: GpuContext, model: OnnxModel, name: string, o: MultipassOptions = {}): Promise<MultipassBench | Estimate> {
  const log = o.log ?? (() => undefined);
  const runs = o.runs ?? 1;
  const warmup = o.warmup ?? 'run';
  const net = o.net ?? await Network.load(gpu, model);
  try {
    const x = syntheticTensor(net.engine.inputShape);
    const B = o.batch ?? net.defaultBatchSize();
    const request = (method: 'scorecam' | 'ablationcam'): GradcamOptions => ({
      methods: [method], featureLayers: [o.layer ?? 'auto'], upsample: false, methodOptions: { [method]: { batchSize: B } },
    });
    const first = await net.gradCAM(x, { featureLayers: [o.layer ?? 'auto'], upsample: false });
    const layer = first.maps[0].layer;
    const channels = net.graph.tensors.get(layer)!.shape[1];
    const all = Math.ceil(channels / B);
    const batches = Math.min(all, o.batches ?? all);
    log(`multipass: ${name} at ${net.engine.inputShape.join('×')}, ${layer} (${channels} channels), batches of ${B}: ${batches}${batches < all ? ` (the first, of ${all})` : ''} batches per leg`);

    // An engine for B images, as the passes use (sharing the pipelines): ⌈C/B⌉ forwards, each waited for.
    const engine = await Engine.create(gpu, model, { batch: B, pipelines: net.engine.env.pipelines, recipe: net.engine.recipe });
    // B pictures in its input, as the passes have (its buffers start as zeros, and SwiftShader's
    // arithmetic need not cost the same on zeros as on values).
    for (let i = 0; i < B; i++) engine.writeImageTensor(x.data, x.shape, i);
    try {
      const inputs = Array.from({ length: B }, () => x);
      const legs: Record<string, Leg> = {
        scorecam: methodLeg(net, x, request('scorecam'), batches, all),
        ablationcam: methodLeg(net, x, request('ablationcam'), batches, all),
        forwards: submittedLeg(gpu.device, batches, (encoder) => engine.encodeForward(encoder)),
      };
      if (o.classify !== false) {
        legs.classify = baselineLeg(batches, async (count) => {
          const t0 = performance.now();
          for (let b = 0; b < count; b++) await net.classify(inputs, { batchSize: B });
          return performance.now() - t0;
        });
      }
      const estimate = await warmUp(legs, warmup, runs, log, 'multipass');
      if (o.estimateOnly) return estimate;
      const m = await rounds(legs, runs);
      const classifyMs = m.classify ?? null;
      log(`multipass: scorecam ${m.scorecam.toFixed(1)} ms, ablationcam ${m.ablationcam.toFixed(1)} ms, forwards ${m.forwards.toFixed(1)} ms${classifyMs === null ? '' : `, classify ${classifyMs.toFixed(1)} ms`}`);
      return {
        model: name, inputShape: net.engine.inputShape, layer, channels, batch: B, batches, runs, warmup,
        scorecamMs: m.scorecam, ablationcamMs: m.ablationcam, forwardsMs: m.forwards, classifyMs,
        ratios: { scorecamOverForwards: m.scorecam / m.forwards, scorecamOverClassify: classifyMs === null ? null : m.scorecam / classifyMs, ablationOverScorecam: m.ablationcam / m.scorecam },
        estimate,
      };
    } finally {
      engine.destroy();
    }
  } finally {
    if (!o.net) await net.destroy();
  }
}

export function formatMultipass(r: MultipassBench): string {
  return [
    `multi-pass methods: ${r.model} at ${r.inputShape.join('×')}, ${r.layer} (${r.channels} channels), batches of ${r.batch}, median of ${r.runs} (warm-up: ${r.warmup === 'run' ? 'one whole run' : 'one batch'} per leg)`,
    ...(r.batches < Math.ceil(r.channels / r.batch) ? [`  each leg's first ${r.batches} of ${Math.ceil(r.channels / r.batch)} batches (the methods timed from their call's start, first pass included)`] : []),
    `  scorecam     ${r.scorecamMs.toFixed(1)} ms  (${(r.ratios.scorecamOverForwards).toFixed(3)} × ${r.batches} forwards of ${r.batch} images, ${r.forwardsMs.toFixed(1)} ms; target ≤ 1.1)`,
    ...(r.classifyMs === null ? [] : [`               (${(r.ratios.scorecamOverClassify!).toFixed(3)} × as many classify calls of ${r.batch} inputs, ${r.classifyMs.toFixed(1)} ms)`]),
    `  ablationcam  ${r.ablationcamMs.toFixed(1)} ms  (${(r.ratios.ablationOverScorecam).toFixed(3)} × scorecam; target < 1/3)`,
  ].join('\n');
}

/** An estimate as lines (--estimate). */
export function formatEstimate(what: string, e: Estimate): string {
  return [
    `${what}: the timed rounds would take about ${(e.roundsMs / 60_000).toFixed(1)} min, CPU ${(e.roundsCpuMs / 60_000).toFixed(1)} min (${e.runs} round${e.runs === 1 ? '' : 's'}; per leg, from its warm-up):`,
    ...e.legs.map((l) => `  ${l.leg.padEnd(22)} ${l.batches} batches × ${l.batchMs.toFixed(1)} ms = ${(l.batches * l.batchMs / 1000).toFixed(1)} s (CPU ${(l.batches * l.batchCpuMs / 1000).toFixed(1)} s)`),
  ].join('\n');
}
