/**
 * Integrated gradients' speed (issue 20, item 4: m = 32 costs ≤ 1.1 × 32 batched forward + backward
 * passes), as ratios measured in one run on one device:
 *
 *   ig / passes   integrated-gradients with m steps (the trapezoid rule's m + 1 points: m passes in
 *                 batches of the runner's size, ⌈m/L⌉ batches of equal size at most L, the device's
 *                 limit; the last point, x, is the first pass's)
 *                 against m forward + backward passes in batches of L on an engine compiled for L (a
 *                 forward of L images, then one backward pass from the class score to the input,
 *                 each batch submitted and waited for: the same work without the path points, the
 *                 gradient sums and the map).
 *
 * Times: the API's timings.passesMs for integrated-gradients (the passes, from the first batch to the
 * map; CPU clock) and the CPU clock around the baseline's batches; after one warm-up each (compiling the
 * pass engine and the pipelines), `runs` rounds of both in turn (a changing load weighs on both alike),
 * the median of each. The warm-up and its estimate as bench/multipass.ts's: 'run' (each leg whole) or
 * 'batch' (integrated-gradients cancelled after its first batch, the baseline one batch),
 * `estimateOnly` stopping there.
 */
import type { GpuContext } from '../src/gpu/device.ts';
import { Network } from '../src/gradcam/network.ts';
import { GradcamProgram } from '../src/gradcam/program.ts';
import type { GradcamOptions } from '../src/gradcam/types.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { Engine } from '../src/runtime/engine.ts';
import { encodeStage } from '../src/runtime/program.ts';
import { type Estimate, type Leg, type LegBenchOptions, methodLeg, rounds, submittedLeg, syntheticTensor, type Warmup, warmUp } from './multipass.ts';

export interface IntegratedGradientsBench {
  model: string;
  /** The input the model ran at ([1, C, H, W]). */
  inputShape: number[];
  steps: number;
  /** The baseline's passes per batch (the device's limit for a backward pass to the input). */
  batch: number;
  runs: number;
  /** Medians, ms. */
  igMs: number;
  passesMs: number;
  /** igMs / passesMs: the target is ≤ 1.1. */
  ratio: number;
  /** The completeness gap of the measured run, and |y(x) − y(x')|. */
  gap: number;
  delta: number;
  warmup: Warmup;
  /** What the warm-up predicted. */
  estimate: Estimate;
}

export interface IntegratedGradientsOptions extends LegBenchOptions {
  steps?: number;
}

export async function benchIntegratedGradients(gpu: GpuContext, model: OnnxModel, name: string, o: IntegratedGradientsOptions & { estimateOnly: true }): Promise<Estimate>;
export async function benchIntegratedGradients(gpu: GpuContext, model: OnnxModel, name: string, o?: IntegratedGradientsOptions): Promise<IntegratedGradientsBench>;
export async function benchIntegratedGradients(gpu: GpuContext, model: OnnxModel, name: string, o: IntegratedGradientsOptions = {}): Promise<IntegratedGradientsBench | Estimate> {
  const log = o.log ?? (() => undefined);
  const steps = o.steps ?? 32;
  const runs = o.runs ?? 3;
  const warmup = o.warmup ?? 'run';
  const net = o.net ?? await Network.load(gpu, model);
  try {
    const x = syntheticTensor(net.engine.inputShape);
    const first = await net.gradCAM(x, { upsample: false, methods: ['saliency'] });
    const cls = first.maps[0].class;
    // The limit the runner sizes its batches from: a forward and a backward pass to the input per image.
    const L = net.defaultBatchSize({ layers: [net.graph.input.name], k: 1, reduction: 'logit' });
    const batches = Math.ceil(steps / L);
    log(`integrated gradients: ${name} at ${net.engine.inputShape.join('×')}, m = ${steps} (${steps} passes), against ${steps} forward + backward passes in ${batches} batches of ${L}`);

    // The baseline: an engine for L images, forward + a plain backward pass to the input (the saliency program's), classes given.
    const engine = await Engine.create(gpu, model, { batch: L, pipelines: net.engine.env.pipelines, recipe: net.engine.recipe });
    const program = await GradcamProgram.create(engine, { layers: [], classesPerImage: 1, reduction: 'logit', methods: ['saliency'] });
    // Each baseline batch runs on the path points its integrated-gradients batch runs on, x' + α(x − x')
    // with x' = 0 and α = k/m, k = 0 … m − 1 (the engine's buffers start as zeros, and SwiftShader's
    // arithmetic does not cost the same on every value): the same passes, without the method's own work.
    const pathBatches = Array.from({ length: batches }, (_, b) => Array.from({ length: L }, (_, i) => {
      const alpha = Math.min(b * L + i, steps - 1) / steps;
      return x.data.map((v) => v * alpha);
    }));
    program.writeClasses(new Array(L).fill(cls));
    let last = first.maps[0];
    const igOptions: GradcamOptions = { classes: [cls], upsample: false, methods: ['integrated-gradients'], methodOptions: { 'integrated-gradients': { steps } } };
    // integrated-gradients' own batches: ⌈m/L⌉ as the baseline's (of equal sizes); its warm-up as multipass.ts's methods'.
    const legs: Record<string, Leg> = {
      ig: methodLeg(net, x, igOptions, batches, batches, (r) => {
        last = r.maps[0];
      }),
      passes: submittedLeg(gpu.device, batches, (encoder, b) => {
        pathBatches[b % batches].forEach((data, i) => engine.writeImageTensor(data, x.shape, i));
        encodeStage(encoder, 'forward', engine.forwardDispatches);
        encodeStage(encoder, 'backward', program.backwardStage);
      }),
    };
    let m: Record<string, number>;
    let estimate: Estimate;
    try {
      estimate = await warmUp(legs, warmup, runs, log, 'integrated gradients');
      if (o.estimateOnly) return estimate;
      m = await rounds(legs, runs);
    } finally {
      engine.destroy();
    }
    const igMs = m.ig, passesMs = m.passes;
    const c = last.completeness!;
    log(`integrated gradients: ${igMs.toFixed(1)} ms, ${steps} passes ${passesMs.toFixed(1)} ms: ratio ${(igMs / passesMs).toFixed(3)}`);
    // `last`: the last whole run's map (a warm-up of one batch is cancelled, the rounds run whole).
    return { model: name, inputShape: net.engine.inputShape, steps, batch: L, runs, igMs, passesMs, ratio: igMs / passesMs, gap: c.gap, delta: c.score - c.baselineScore, warmup, estimate };
  } finally {
    if (!o.net) await net.destroy();
  }
}

export function formatIntegratedGradients(r: IntegratedGradientsBench): string {
  return [
    `integrated gradients: ${r.model} at ${r.inputShape.join('×')}, m = ${r.steps} (trapezoid rule: ${r.steps} passes, x the first pass's), median of ${r.runs} (warm-up: ${r.warmup === 'run' ? 'one whole run' : 'one batch'} per leg)`,
    `  integrated-gradients  ${r.igMs.toFixed(1)} ms  (${r.ratio.toFixed(3)} × ${r.steps} forward + backward passes in batches of ${r.batch}, ${r.passesMs.toFixed(1)} ms; target ≤ 1.1)`,
    `  completeness gap ${r.gap.toExponential(2)} of |y(x) − y(x')| = ${Math.abs(r.delta).toPrecision(4)}`,
  ].join('\n');
}
