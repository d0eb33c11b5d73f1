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
 * compiled), then one more batch timed. Either way the warm-up gives each leg's time per batch, and
 * so an estimate of the timed rounds (`estimate`: logged before they start; with `estimateOnly`
 * nothing more runs), which a 1024-channel layer on a CPU adapter needs (GoogLeNet at inception_5b:
 * 64 batches of 16 per leg).
 * `npm run bench -- --multipass [--model generated:NAME] [--size N] [--multipass-layer L]
 * [--multipass-batch B] [--no-classify] [--warmup-batch] [--estimate] [--runs N]`.
 */
import { AbortError } from '../src/errors.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import { Network } from '../src/gradcam/network.ts';
import type { GradcamOptions, TensorInput } from '../src/gradcam/types.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { Engine } from '../src/runtime/engine.ts';

export interface MultipassBench {
  model: string;
  /** The input the model ran at ([1, C, H, W]). */
  inputShape: number[];
  layer: string;
  channels: number;
  batch: number;
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

/** 'run': each leg once whole; 'batch': each leg's first batch, then one batch timed. */
export type Warmup = 'run' | 'batch';

/** A leg's time per batch from its warm-up, and the timed rounds' predicted time. */
export interface Estimate {
  legs: { leg: string; batches: number; batchMs: number }[];
  runs: number;
  /** runs × Σ batches × batchMs. */
  roundsMs: number;
}

/** One measurement: `batches` batches per run. */
export interface Leg {
  batches: number;
  /** The whole leg, ms (the API's passesMs, or the CPU clock around the baseline). */
  run(): Promise<number>;
  /** The warm-up of mode 'batch': ms of one batch after a first one. */
  twoBatches(): Promise<number>;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A deterministic input of the model's shape. */
export function syntheticTensor(shape: number[]): TensorInput {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 1.5;
  return { shape: [1, ...shape.slice(1)], data };
}

/**
 * A multi-pass method's first `n` batches of passes: the call cancelled through its AbortSignal
 * after the n-th (or run whole when it has fewer). The ms between one batch's report and the next:
 * [0] includes the call's first pass and the pass engine's making, [1] … are batches alone.
 */
export async function firstBatches(net: Network, x: TensorInput, options: GradcamOptions, n: number): Promise<number[]> {
  const stop = new AbortController();
  const ms: number[] = [];
  let t = performance.now();
  try {
    await net.gradCAM(x, {
      ...options, signal: stop.signal,
      onProgress: () => {
        const now = performance.now();
        ms.push(now - t);
        t = now;
        if (ms.length >= n) stop.abort();
      },
    });
  } catch (e) {
    if (!(e instanceof AbortError)) throw e;
  }
  return ms;
}

/** A method's leg: its passesMs whole, or two batches through firstBatches. */
export function methodLeg(net: Network, x: TensorInput, options: GradcamOptions, batches: number): Leg {
  return {
    batches,
    run: async () => (await net.gradCAM(x, options)).timings.passesMs!,
    twoBatches: async () => {
      const ms = await firstBatches(net, x, options, 2);
      return ms[1] ?? ms[0];
    },
  };
}

/** A baseline's leg from `count` → ms of that many batches. */
export function baselineLeg(batches: number, time: (count: number) => Promise<number>): Leg {
  return { batches, run: () => time(batches), twoBatches: async () => (await time(1), await time(1)) };
}

/**
 * Warms every leg up (see the module comment) and returns the estimate of `runs` rounds; logs each
 * leg's time per batch and the prediction.
 */
export async function warmUp(legs: Record<string, Leg>, warmup: Warmup, runs: number, log: (line: string) => void, what: string): Promise<Estimate> {
  const out: Estimate['legs'] = [];
  for (const [leg, l] of Object.entries(legs)) {
    const t0 = performance.now();
    const batchMs = warmup === 'run' ? (await l.run()) / l.batches : await l.twoBatches();
    out.push({ leg, batches: l.batches, batchMs });
    log(`${what}: warm-up of ${leg} (${warmup === 'run' ? 'whole' : 'two batches'}, ${((performance.now() - t0) / 1000).toFixed(1)} s): ${batchMs.toFixed(1)} ms per batch × ${l.batches} batches`);
  }
  const roundsMs = runs * out.reduce((a, l) => a + l.batches * l.batchMs, 0);
  log(`${what}: ${runs} round${runs === 1 ? '' : 's'} of ${Object.keys(legs).join(', ')}: about ${(roundsMs / 60_000).toFixed(1)} min by the warm-up`);
  return { legs: out, runs, roundsMs };
}

/** `runs` rounds of every leg in turn (a machine's changing load weighs on each alike); the median of each. */
export async function rounds(legs: Record<string, Leg>, runs: number): Promise<Record<string, number>> {
  const samples: Record<string, number[]> = {};
  for (let r = 0; r < runs; r++) {
    for (const [what, l] of Object.entries(legs)) (samples[what] ??= []).push(await l.run());
  }
  return Object.fromEntries(Object.entries(samples).map(([k, xs]) => [k, median(xs)]));
}

export interface MultipassOptions {
  layer?: string;
  batch?: number;
  runs?: number;
  /** The classify leg (default true). */
  classify?: boolean;
  warmup?: Warmup;
  /** Stop after the warm-up and its estimate. */
  estimateOnly?: boolean;
  log?: (line: string) => void;
}

/** Measures (see the module comment); with `estimateOnly`, the estimate alone. */
export async function benchMultipass(gpu: GpuContext, model: OnnxModel, name: string, o: MultipassOptions & { estimateOnly: true }): Promise<Estimate>;
export async function benchMultipass(gpu: GpuContext, model: OnnxModel, name: string, o?: MultipassOptions): Promise<MultipassBench>;
export async function benchMultipass(gpu: GpuContext, model: OnnxModel, name: string, o: MultipassOptions = {}): Promise<MultipassBench | Estimate> {
  const log = o.log ?? (() => undefined);
  const runs = o.runs ?? 1;
  const warmup = o.warmup ?? 'run';
  const net = await Network.load(gpu, model);
  try {
    const x = syntheticTensor(net.engine.inputShape);
    const B = o.batch ?? net.defaultBatchSize();
    const request = (method: 'scorecam' | 'ablationcam'): GradcamOptions => ({
      methods: [method], featureLayers: [o.layer ?? 'auto'], upsample: false, methodOptions: { [method]: { batchSize: B } },
    });
    const first = await net.gradCAM(x, { featureLayers: [o.layer ?? 'auto'], upsample: false });
    const layer = first.maps[0].layer;
    const channels = net.graph.tensors.get(layer)!.shape[1];
    const batches = Math.ceil(channels / B);
    log(`multipass: ${name} at ${net.engine.inputShape.join('×')}, ${layer} (${channels} channels), batches of ${B}: ${batches} batches per leg`);

    // An engine for B images, as the passes use (sharing the pipelines): ⌈C/B⌉ forwards, each waited for.
    const engine = await Engine.create(gpu, model, { batch: B, pipelines: net.engine.env.pipelines, recipe: net.engine.recipe });
    try {
      const { device } = gpu;
      const inputs = Array.from({ length: B }, () => x);
      const legs: Record<string, Leg> = {
        scorecam: methodLeg(net, x, request('scorecam'), batches),
        ablationcam: methodLeg(net, x, request('ablationcam'), batches),
        forwards: baselineLeg(batches, async (count) => {
          const t0 = performance.now();
          for (let b = 0; b < count; b++) {
            const encoder = device.createCommandEncoder();
            engine.encodeForward(encoder);
            device.queue.submit([encoder.finish()]);
            await device.queue.onSubmittedWorkDone();
          }
          return performance.now() - t0;
        }),
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
        model: name, inputShape: net.engine.inputShape, layer, channels, batch: B, runs, warmup,
        scorecamMs: m.scorecam, ablationcamMs: m.ablationcam, forwardsMs: m.forwards, classifyMs,
        ratios: { scorecamOverForwards: m.scorecam / m.forwards, scorecamOverClassify: classifyMs === null ? null : m.scorecam / classifyMs, ablationOverScorecam: m.ablationcam / m.scorecam },
        estimate,
      };
    } finally {
      engine.destroy();
    }
  } finally {
    await net.destroy();
  }
}

export function formatMultipass(r: MultipassBench): string {
  return [
    `multi-pass methods: ${r.model} at ${r.inputShape.join('×')}, ${r.layer} (${r.channels} channels), batches of ${r.batch}, median of ${r.runs} (warm-up: ${r.warmup === 'run' ? 'one whole run' : 'one batch'} per leg)`,
    `  scorecam     ${r.scorecamMs.toFixed(1)} ms  (${(r.ratios.scorecamOverForwards).toFixed(3)} × ${Math.ceil(r.channels / r.batch)} forwards of ${r.batch} images, ${r.forwardsMs.toFixed(1)} ms; target ≤ 1.1)`,
    ...(r.classifyMs === null ? [] : [`               (${(r.ratios.scorecamOverClassify!).toFixed(3)} × as many classify calls of ${r.batch} inputs, ${r.classifyMs.toFixed(1)} ms)`]),
    `  ablationcam  ${r.ablationcamMs.toFixed(1)} ms  (${(r.ratios.ablationOverScorecam).toFixed(3)} × scorecam; target < 1/3)`,
  ].join('\n');
}

/** An estimate as lines (--estimate). */
export function formatEstimate(what: string, e: Estimate): string {
  return [
    `${what}: the timed rounds would take about ${(e.roundsMs / 60_000).toFixed(1)} min (${e.runs} round${e.runs === 1 ? '' : 's'}; per leg, from its warm-up):`,
    ...e.legs.map((l) => `  ${l.leg.padEnd(22)} ${l.batches} batches × ${l.batchMs.toFixed(1)} ms = ${(l.batches * l.batchMs / 1000).toFixed(1)} s`),
  ].join('\n');
}
