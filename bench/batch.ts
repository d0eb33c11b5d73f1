/**
 * Throughput by batch size (issue 13): images per second for the forward pass
 * (`net.classify(images, { batchSize: B })`) and for Grad-CAM at inception_4e, K = 1, raw maps
 * (`gradCAM(net, images, { batchSize: B, featureLayers: 'inception_4e', upsample: false })`), each
 * call exactly B images (one run: one submission, one read-back), B = 1, 2, 4, 8, 16 by default.
 * The inputs are B different synthetic pictures (already preprocessed tensors, as the rest of the
 * bench uses). Measurement names: batch.forward.b<B>, batch.gradcam.inception_4e.b<B> (milliseconds
 * per call, median of the runs); images/s = B / median.
 *
 * The ratio to B = 1 is paired: each timed call of B images is followed by a call of one image,
 * and the ratio is the median over the runs of B · t(1) / t(B). Two calls made back to back see
 * the same load on the machine, so a load that drifts between measurements (SwiftShader on a
 * shared CPU) cancels out; the B = 1 calls are recorded as batch.<what>.b1.paired-with-b<B>.
 */
import { gradCAM, type Network } from '../src/gradcam/network.ts';
import type { ModelInput } from '../src/gradcam/types.ts';
import type { Recipe } from '../src/image/recipes.ts';
import { median, sample } from './stats.ts';

/** The bench's synthetic input for a shape (harness.ts: syntheticInput). */
export type SyntheticInput = (shape: readonly number[], recipe: Recipe) => Float32Array;

export const DEFAULT_BATCH_SIZES = [1, 2, 4, 8, 16];

export interface BatchThroughput {
  /** 'forward' or 'gradcam.inception_4e'. */
  what: string;
  batchSize: number;
  /** Median milliseconds per call of batchSize images. */
  medianMs: number;
  imagesPerSecond: number;
  /** Images/s at B over images/s at B = 1: the median, over the runs, of B · t(1) / t(B) from calls made back to back. */
  ratioToB1: number;
}

/** B distinct images of the model's input shape: image b of one synthetic batch. */
function images(net: Network, count: number, synthetic: SyntheticInput): ModelInput[] {
  const [, c, h, w] = net.engine.inputShape;
  const all = synthetic([count, c, h, w], net.engine.recipe);
  const per = c * h * w;
  return Array.from({ length: count }, (_, b) => ({ shape: [1, c, h, w], data: all.slice(b * per, (b + 1) * per) }));
}

/**
 * Measures each batch size; `record(name, samples)` stores the runs as the other measurements do.
 * A first untimed call per size compiles that batch's engine and program.
 */
export async function benchBatches(net: Network, sizes: readonly number[], runs: number, warmup: number, synthetic: SyntheticInput,
  record: (name: string, samples: number[]) => Promise<void>, log: (line: string) => void): Promise<BatchThroughput[]> {
  const out: BatchThroughput[] = [];
  const cases = [
    { what: 'forward', run: (xs: ModelInput[], b: number) => net.classify(xs, { batchSize: b }) },
    { what: 'gradcam.inception_4e', run: (xs: ModelInput[], b: number) => gradCAM(net, xs, { batchSize: b, featureLayers: 'inception_4e', upsample: false }) },
  ];
  for (const c of cases) {
    const one = images(net, 1, synthetic);
    await c.run(one, 1); // compiles the single-image program
    for (const b of sizes) {
      const xs = images(net, b, synthetic);
      const t = performance.now();
      await c.run(xs, b); // compiles the engine (and program) for this batch size
      log(`batch.${c.what}.b${b}: first call (compiles) ${((performance.now() - t) / 1000).toFixed(2)} s`);
      for (let i = 0; i < Math.max(0, warmup - 1); i++) await c.run(xs, b);
      const times: number[] = [];
      const singles: number[] = [];
      for (let i = 0; i < runs; i++) {
        times.push(...await sample(1, 0, async () => { await c.run(xs, b); }));
        if (b !== 1) singles.push(...await sample(1, 0, async () => { await c.run(one, 1); }));
      }
      await record(`batch.${c.what}.b${b}`, times);
      if (b !== 1) await record(`batch.${c.what}.b1.paired-with-b${b}`, singles);
      const medianMs = median(times);
      const ratioToB1 = b === 1 ? 1 : median(times.map((t, i) => (b * singles[i]) / t));
      out.push({ what: c.what, batchSize: b, medianMs, imagesPerSecond: (1000 * b) / medianMs, ratioToB1 });
    }
  }
  return out;
}

/** The throughput table, one row per batch size. */
export function formatBatches(rows: readonly BatchThroughput[]): string {
  const sizes = [...new Set(rows.map((r) => r.batchSize))];
  const cell = (what: string, b: number) => {
    const r = rows.find((x) => x.what === what && x.batchSize === b);
    return r ? `${r.imagesPerSecond.toFixed(2)} img/s (${r.ratioToB1.toFixed(2)} ×)` : '—';
  };
  const lines = ['| B | forward | Grad-CAM at inception_4e, K = 1 |', '| ---: | ---: | ---: |'];
  for (const b of sizes) lines.push(`| ${b} | ${cell('forward', b)} | ${cell('gradcam.inception_4e', b)} |`);
  return lines.join('\n');
}
