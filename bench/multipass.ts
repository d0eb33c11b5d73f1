/**
 * The multi-pass methods' speed (issue 20, item 4), as ratios measured in one run on one device:
 *
 *   scorecam / forwards     Score-CAM's passes at a layer of C channels in batches of B, against
 *                           ⌈C/B⌉ forwards of B images on an engine compiled for B, each submitted
 *                           and waited for (the same work without the masks, the scores and the
 *                           weights): the target is ≤ 1.1.
 *   scorecam / classify     the same against net.classify of B pictures ⌈C/B⌉ times (each batch
 *                           written from the CPU and its logits read back, as a Python loop over
 *                           batches does).
 *   ablationcam / scorecam  Ablation-CAM's passes (only the ops from the layer to the scores run
 *                           again) against Score-CAM's: the target is < 1/3.
 *
 * Times are the API's timings.passesMs (the passes, from the first batch to the weights; CPU clock)
 * and the CPU clock around the baselines; after one warm-up each, `runs` rounds of all four in turn
 * (a changing load weighs on each alike), the median of each.
 * `npm run bench -- --multipass [--model generated:NAME] [--multipass-layer L] [--multipass-batch B]`.
 */
import type { GpuContext } from '../src/gpu/device.ts';
import { Network } from '../src/gradcam/network.ts';
import type { TensorInput } from '../src/gradcam/types.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { Engine } from '../src/runtime/engine.ts';

export interface MultipassBench {
  model: string;
  layer: string;
  channels: number;
  batch: number;
  runs: number;
  /** Medians, ms. */
  scorecamMs: number;
  ablationcamMs: number;
  /** ⌈C/B⌉ forwards of B images, each waited for. */
  forwardsMs: number;
  /** ⌈C/B⌉ net.classify calls of B inputs. */
  classifyMs: number;
  ratios: { scorecamOverForwards: number; scorecamOverClassify: number; ablationOverScorecam: number };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A deterministic input of the model's shape. */
function syntheticTensor(shape: number[]): TensorInput {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 1.5;
  return { shape: [1, ...shape.slice(1)], data };
}

export async function benchMultipass(gpu: GpuContext, model: OnnxModel, name: string,
  o: { layer?: string; batch?: number; runs?: number; log?: (line: string) => void } = {}): Promise<MultipassBench> {
  const log = o.log ?? (() => undefined);
  const runs = o.runs ?? 1;
  const net = await Network.load(gpu, model);
  try {
    const x = syntheticTensor(net.engine.inputShape);
    const B = o.batch ?? net.defaultBatchSize();
    const request = (method: 'scorecam' | 'ablationcam') => ({
      methods: [method], featureLayers: [o.layer ?? 'auto'], upsample: false, methodOptions: { [method]: { batchSize: B } },
    });
    const first = await net.gradCAM(x, { featureLayers: [o.layer ?? 'auto'], upsample: false });
    const layer = first.maps[0].layer;
    const channels = net.graph.tensors.get(layer)!.shape[1];
    const batches = Math.ceil(channels / B);
    log(`multipass: ${name} at ${layer} (${channels} channels), batches of ${B}: ${batches} batches per method`);

    // An engine for B images, as the passes use (sharing the pipelines): ⌈C/B⌉ forwards, each waited for.
    const engine = await Engine.create(gpu, model, { batch: B, pipelines: net.engine.env.pipelines, recipe: net.engine.recipe });
    const { device } = gpu;
    const inputs = Array.from({ length: B }, () => x);
    const measures: Record<'scorecam' | 'ablationcam' | 'forwards' | 'classify', () => Promise<number>> = {
      scorecam: async () => (await net.gradCAM(x, request('scorecam'))).timings.passesMs!,
      ablationcam: async () => (await net.gradCAM(x, request('ablationcam'))).timings.passesMs!,
      forwards: async () => {
        const t0 = performance.now();
        for (let b = 0; b < batches; b++) {
          const encoder = device.createCommandEncoder();
          engine.encodeForward(encoder);
          device.queue.submit([encoder.finish()]);
          await device.queue.onSubmittedWorkDone();
        }
        return performance.now() - t0;
      },
      classify: async () => {
        const t0 = performance.now();
        for (let b = 0; b < batches; b++) await net.classify(inputs, { batchSize: B });
        return performance.now() - t0;
      },
    };
    const samples: Record<string, number[]> = {};
    try {
      for (const fn of Object.values(measures)) await fn(); // warm-up: compiles the pass engine, the pipelines
      // Round robin, so that a machine's changing load weighs on every measurement alike.
      for (let r = 0; r < runs; r++) {
        for (const [what, fn] of Object.entries(measures)) (samples[what] ??= []).push(await fn());
      }
    } finally {
      engine.destroy();
    }
    const [scorecamMs, ablationcamMs, forwardsMs, classifyMs] = ['scorecam', 'ablationcam', 'forwards', 'classify'].map((k) => median(samples[k]));
    log(`multipass: scorecam ${scorecamMs.toFixed(1)} ms, ablationcam ${ablationcamMs.toFixed(1)} ms, forwards ${forwardsMs.toFixed(1)} ms, classify ${classifyMs.toFixed(1)} ms`);
    return {
      model: name, layer, channels, batch: B, runs, scorecamMs, ablationcamMs, forwardsMs, classifyMs,
      ratios: { scorecamOverForwards: scorecamMs / forwardsMs, scorecamOverClassify: scorecamMs / classifyMs, ablationOverScorecam: ablationcamMs / scorecamMs },
    };
  } finally {
    await net.destroy();
  }
}

export function formatMultipass(r: MultipassBench): string {
  return [
    `multi-pass methods: ${r.model} at ${r.layer} (${r.channels} channels), batches of ${r.batch}, median of ${r.runs}`,
    `  scorecam     ${r.scorecamMs.toFixed(1)} ms  (${(r.ratios.scorecamOverForwards).toFixed(3)} × ${Math.ceil(r.channels / r.batch)} forwards of ${r.batch} images, ${r.forwardsMs.toFixed(1)} ms; target ≤ 1.1)`,
    `               (${(r.ratios.scorecamOverClassify).toFixed(3)} × as many classify calls of ${r.batch} inputs, ${r.classifyMs.toFixed(1)} ms)`,
    `  ablationcam  ${r.ablationcamMs.toFixed(1)} ms  (${(r.ratios.ablationOverScorecam).toFixed(3)} × scorecam; target < 1/3)`,
  ].join('\n');
}
