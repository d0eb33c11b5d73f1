/**
 * The whole Grad-CAM on both generated GoogLeNets against the float64 CPU reference: three layers
 * (inception_3b, 4e, 5b) and K = 3 classes in one GPU backward pass, both reductions.
 *
 * Error scale: max(map max, max |Σ_k α_k A_k| before the ReLU) — the rounding error is that of the
 * whole sum, and a map's positive part can be a small tip of a mostly negative sum. Bounds (from
 * float32 PyTorch against float64 on such models: ~5e-5 at inception_5b, up to 1e-3 at 4e, up to 1e-2
 * earlier, where float32 rounding flips ReLU and max-pool decisions): 1e-3 at inception_5b, 1e-2 at
 * inception_4e, 5e-2 earlier.
 */
import { describe, expect, test } from 'vitest';
import { Network } from '../src/gradcam/network.ts';
import type { Reduction } from '../src/gradcam/types.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import { generateModelBytes } from '../weights/generate/index.ts';
import { Rng } from '../weights/generate/random.ts';
import { testGpu } from './helpers/gpu.ts';
import { backwardReference, forwardValues } from './reference/graph.ts';
import { tensor } from './reference/tensor.ts';

const CASES = [
  { model: 'googlenet-zoo-seeded', layers: ['inception_3b/output_1', 'inception_4e/output_1', 'inception_5b/output_1'] },
  { model: 'googlenet-torchvision-seeded', layers: ['/inception3b/Concat_output_0', '/inception4e/Concat_output_0', '/inception5b/Concat_output_0'] },
];
const BOUND: Record<string, number> = { '3b': 5e-2, '4e': 1e-2, '5b': 1e-3 };
const bound = (layer: string) => BOUND[Object.keys(BOUND).find((k) => layer.replace('_', '').includes(k))!];

function softmax(z: Float64Array): Float64Array {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** Reference maps: pre-ReLU sums Σ_k α_k A_k for each layer and class (one reverse sweep per class). */
function referenceMaps(model: ReturnType<typeof decodeOnnx>, values: Map<string, { shape: number[]; data: Float64Array }>, logitsName: string,
  layers: string[], classes: number[], reduction: Reduction): Map<string, Float64Array[]> {
  const logits = values.get(logitsName)!.data;
  const p = softmax(logits);
  const seeds = classes.map((c) => {
    const s = new Float64Array(logits.length);
    if (reduction === 'logit') s[c] = 1;
    else for (let j = 0; j < s.length; j++) s[j] = p[c] * ((j === c ? 1 : 0) - p[j]);
    return s;
  });
  const grads = backwardReference(model, values as never, { score: logitsName, seeds, wrt: layers });
  return new Map(layers.map((layer) => {
    const A = values.get(layer)!;
    const [, C, h, w] = A.shape;
    return [layer, classes.map((_, k) => {
      const dA = grads[layer][k].data;
      const pre = new Float64Array(h * w);
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let i = 0; i < h * w; i++) s += dA[c * h * w + i];
        for (let i = 0; i < h * w; i++) pre[i] += (s / (h * w)) * A.data[c * h * w + i];
      }
      return pre;
    })];
  }));
}

for (const { model: name, layers } of CASES) {
  describe(name, () => {
    test('maps at three layers, K = 3 classes in one pass, both reductions, match the float64 reference', async () => {
      const model = decodeOnnx(generateModelBytes(name));
      const net = await Network.load(await testGpu(), model);
      const rng = new Rng(11);
      const x = Float32Array.from({ length: 3 * 224 * 224 }, () => rng.normal() * 50);
      const values = forwardValues(model, { [model.inputs[0].name]: tensor([1, 3, 224, 224], x) });
      for (const reduction of ['logit', 'softmax'] as Reduction[]) {
        const result = await net.gradCAM({ shape: [1, 3, 224, 224], data: x }, { classes: 'top3', featureLayers: layers, reduction, upsample: false });
        const classes = result.maps.filter((m) => m.layer === layers[0]).map((m) => m.class);
        expect(classes).toEqual(result.predictions.slice(0, 3).map((p) => p.class));
        const ref = referenceMaps(model, values as never, net.graph.logits, layers, classes, reduction);
        for (const layer of layers) {
          classes.forEach((c, k) => {
            const pre = ref.get(layer)![k];
            const got = result.maps.find((m) => m.layer === layer && m.class === c)!.raw;
            let err = 0, scale = 0;
            for (let i = 0; i < pre.length; i++) {
              err = Math.max(err, Math.abs(got[i] - Math.max(pre[i], 0)));
              scale = Math.max(scale, Math.abs(pre[i]));
            }
            const rel = err / scale;
            console.log(`${name} ${reduction} ${layer} class ${c}: max |Δ| / scale = ${rel.toExponential(2)} (bound ${bound(layer)})`);
            expect(rel).toBeLessThanOrEqual(bound(layer));
          });
        }
      }
      net.destroy();
    });
  });
}

test('--layer all with top-3 is one backward pass: each op of the cone once, one seed for all 3 classes', async () => {
  const model = decodeOnnx(generateModelBytes('googlenet-zoo-seeded'));
  const net = await Network.load(await testGpu(), model);
  const rng = new Rng(3);
  const x = Float32Array.from({ length: 3 * 224 * 224 }, () => rng.normal() * 50);
  const result = await net.gradCAM({ shape: [1, 3, 224, 224], data: x }, { classes: 'top3', featureLayers: 'all', upsample: false });
  expect(new Set(result.maps.map((m) => m.layer)).size).toBe(9);
  expect(result.maps.length).toBe(27);
  const programs = [...(net as unknown as { programs: Map<string, { pre: { kernel: string }[]; backward: { dispatches: { label: string; kernel: string }[]; cone: { name: string }[]; items: number } }> }).programs.values()];
  expect(programs.length).toBe(1);
  const p = programs[0];
  expect(p.backward.items).toBe(3);
  expect(p.pre.filter((d) => d.kernel === 'gradcam.seed').length).toBe(1);
  // Each op of the cone once: one dispatch per (op, kernel) (a max-pool has two kernels, arg-max and gather).
  const pairs = p.backward.dispatches.map((d) => `${d.label}|${d.kernel}`);
  expect(new Set(pairs).size).toBe(pairs.length);
  const labels = [...new Set(p.backward.dispatches.map((d) => d.label))];
  expect(labels.sort()).toEqual(p.backward.cone.map((o) => o.name).sort());
  // The cone goes down to the deepest requested tensor, inception_3a's output, and no further.
  expect(labels.some((l) => l.startsWith('inception_3b/'))).toBe(true);
  expect(labels.some((l) => l.startsWith('inception_3a/') || l.startsWith('conv2/') || l.startsWith('pool2/'))).toBe(false);
  net.destroy();
});
