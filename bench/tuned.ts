/**
 * The forward pass with the fixed rules and with the tuned plan, in the same run (issue 21, item 2):
 * two networks on one device, the second loaded with `tune` (measured now, or the plan stored for
 * this adapter, model and engine version), their forwards alternated run by run so that a load that
 * drifts cancels in the paired ratios. The bench's `--tune` (bench/harness.ts: forward.tuned) calls it.
 */
import type { GpuContext } from '../src/gpu/device.ts';
import { Network } from '../src/gradcam/network.ts';
import { type ConvVariantName, convLowering } from '../src/kernels/variants.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import type { PlanStore } from '../src/runtime/plan-store.ts';
import { planLayerName, type TuneProgress, type TuneReport } from '../src/runtime/tune.ts';
import { median } from './stats.ts';

export interface TunedForward {
  /** Wall times (write input → logits read back) of the fixed rules' and the tuned plan's forward, run in alternation. */
  fixedMs: number[];
  tunedMs: number[];
  /** Median of the paired ratios fixed / tuned (> 1: the tuned plan is faster). */
  ratio: number;
  tuning: TuneReport;
  /** Layers and directions where the tuned plan differs from the fixed rules, with the measured times. */
  changed: { layer: string; direction: 'forward' | 'backward'; fixed: ConvVariantName; tuned: ConvVariantName; fixedMs?: number; tunedMs?: number }[];
}

export async function tunedForward(gpu: GpuContext, model: OnnxModel, input: Float32Array, o: {
  runs: number; warmup: number; store?: PlanStore; onProgress?: (p: TuneProgress) => void;
}): Promise<TunedForward> {
  const fixed = await Network.load(gpu, model);
  const tuned = await Network.load(gpu, model, { tune: { store: o.store, onProgress: o.onProgress } });
  try {
    const tuning = tuned.tuning!;
    const shape = [...fixed.engine.inputShape];
    const run = async (net: Network) => {
      const t0 = performance.now();
      net.engine.writeInput(input, shape);
      await net.engine.classify();
      return performance.now() - t0;
    };
    for (let i = 0; i < o.warmup; i++) {
      await run(fixed);
      await run(tuned);
    }
    const fixedMs: number[] = [], tunedMs: number[] = [], ratios: number[] = [];
    for (let i = 0; i < o.runs; i++) {
      const a = await run(fixed), b = await run(tuned);
      fixedMs.push(a);
      tunedMs.push(b);
      ratios.push(a / b);
    }
    const family = fixed.engine.env.variant;
    const changed: TunedForward['changed'] = [];
    for (const op of fixed.graph.ops) {
      if (op.kind !== 'conv') continue;
      for (const direction of ['forward', 'backward'] as const) {
        const f = convLowering(op, family, direction), t = tuning.tuned.plan[planLayerName(op.name)]?.[direction];
        if (!t || t === f) continue;
        const time = (v: string) => tuning.tuned.timings.find((m) => m.layers.includes(op.name) && m.direction === direction && m.variant === v)?.ms;
        changed.push({ layer: op.name, direction, fixed: f, tuned: t, fixedMs: time(f), tunedMs: time(t) });
      }
    }
    return { fixedMs, tunedMs, ratio: median(ratios), tuning, changed };
  } finally {
    fixed.destroy();
    tuned.destroy();
  }
}
