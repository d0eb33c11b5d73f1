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
 * the median of each.
 */
import type { GpuContext } from '../src/gpu/device.ts';
import { Network } from '../src/gradcam/network.ts';
import { GradcamProgram } from '../src/gradcam/program.ts';
import type { TensorInput } from '../src/gradcam/types.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { Engine } from '../src/runtime/engine.ts';
import { encodeStage } from '../src/runtime/program.ts';

export interface IntegratedGradientsBench {
  model: string;
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
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A deterministic input of the model's shape. */
function syntheticTensor(shape: number[]): TensorInput {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 1.5;
  return { shape: [1, ...shape.slice(1)], data };
}

export async function benchIntegratedGradients(gpu: GpuContext, model: OnnxModel, name: string,
  o: { steps?: number; runs?: number; log?: (line: string) => void } = {}): Promise<IntegratedGradientsBench> {
  const log = o.log ?? (() => undefined);
  const steps = o.steps ?? 32;
  const runs = o.runs ?? 3;
  const net = await Network.load(gpu, model);
  try {
    const x = syntheticTensor(net.engine.inputShape);
    const first = await net.gradCAM(x, { upsample: false, methods: ['saliency'] });
    const cls = first.maps[0].class;
    // The limit the runner sizes its batches from: a forward and a backward pass to the input per image.
    const L = net.defaultBatchSize({ layers: [net.graph.input.name], k: 1, reduction: 'logit' });
    const batches = Math.ceil(steps / L);
    log(`integrated gradients: ${name}, m = ${steps} (${steps} passes), against ${steps} forward + backward passes in ${batches} batches of ${L}`);

    // The baseline: an engine for L images, forward + a plain backward pass to the input (the saliency program's), classes given.
    const engine = await Engine.create(gpu, model, { batch: L, pipelines: net.engine.env.pipelines, recipe: net.engine.recipe });
    const program = await GradcamProgram.create(engine, { layers: [], classesPerImage: 1, reduction: 'logit', methods: ['saliency'] });
    program.writeClasses(new Array(L).fill(cls));
    const { device } = gpu;
    let last = first.maps[0];
    const measures: Record<'ig' | 'passes', () => Promise<number>> = {
      ig: async () => {
        const r = await net.gradCAM(x, { classes: [cls], upsample: false, methods: ['integrated-gradients'], methodOptions: { 'integrated-gradients': { steps } } });
        last = r.maps[0];
        return r.timings.passesMs!;
      },
      passes: async () => {
        const t0 = performance.now();
        for (let b = 0; b < batches; b++) {
          const encoder = device.createCommandEncoder();
          encodeStage(encoder, 'forward', engine.forwardDispatches);
          encodeStage(encoder, 'backward', program.backwardStage);
          device.queue.submit([encoder.finish()]);
          await device.queue.onSubmittedWorkDone();
        }
        return performance.now() - t0;
      },
    };
    const samples: Record<string, number[]> = {};
    try {
      for (const fn of Object.values(measures)) await fn(); // warm-up
      for (let r = 0; r < runs; r++) {
        for (const [what, fn] of Object.entries(measures)) (samples[what] ??= []).push(await fn());
      }
    } finally {
      engine.destroy();
    }
    const igMs = median(samples.ig), passesMs = median(samples.passes);
    const c = last.completeness!;
    log(`integrated gradients: ${igMs.toFixed(1)} ms, ${steps} passes ${passesMs.toFixed(1)} ms: ratio ${(igMs / passesMs).toFixed(3)}`);
    return { model: name, steps, batch: L, runs, igMs, passesMs, ratio: igMs / passesMs, gap: c.gap, delta: c.score - c.baselineScore };
  } finally {
    await net.destroy();
  }
}

export function formatIntegratedGradients(r: IntegratedGradientsBench): string {
  return [
    `integrated gradients: ${r.model}, m = ${r.steps} (trapezoid rule: ${r.steps} passes, x the first pass's), median of ${r.runs}`,
    `  integrated-gradients  ${r.igMs.toFixed(1)} ms  (${r.ratio.toFixed(3)} × ${r.steps} forward + backward passes in batches of ${r.batch}, ${r.passesMs.toFixed(1)} ms; target ≤ 1.1)`,
    `  completeness gap ${r.gap.toExponential(2)} of |y(x) − y(x')| = ${Math.abs(r.delta).toPrecision(4)}`,
  ].join('\n');
}
