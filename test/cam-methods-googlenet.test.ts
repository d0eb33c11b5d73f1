/**
 * The CAM family on the GPU (src/gradcam/methods.ts) against the float64 references of
 * test/reference/cam-methods.ts, on both generated GoogLeNets: every non-guided method in ONE call
 * (one forward, one backward pass), three layers (inception_3b, 4e, 5b), K = 3 classes, both
 * reductions, and the counterfactual (G := −G) with the logit reduction. googlenet-zoo-seeded runs
 * at its full 224×224, googlenet-torchvision-seeded at 96×96 (test/helpers/googlenets.ts: the same
 * graph, a fifth of the cost; 3b, 4e, 5b are 12×12, 6×6, 3×3). One network per model serves every
 * test of the file.
 * To keep the suite short, the full-size model runs every method with the logit reduction, and the
 * counterfactual of the methods that read G and are no principal component (an eigen map's sign is
 * fixed by its largest entry, so −G gives eigengradcam the same map; the two eigen methods took
 * ~60 % of the CPU time of an all-method call at 224×224). The 96×96 twin runs every method with
 * both reductions and the counterfactual (the softmax reduction and eigengradcam's counterfactual
 * ran at 224 too until the suite got too slow; the softmax reduction only changes the seed).
 *
 * Grad-CAM is also checked on its own scale (it was test/gradcam-googlenet.test.ts, on the same
 * inputs, layers, classes and reductions; now it reads this file's GPU results and float64
 * gradients): err = max_i |GPU(i) − ReLU(pre(i))| ≤ bound · max_i |pre(i)|, pre = Σ_k α_k A_k the
 * reference sum before the ReLU — the rounding error is that of the whole sum, and a map's positive
 * part can be a small tip of a mostly negative sum. Bounds, from float32 PyTorch against float64 on
 * such models (~5e-5 at inception_5b, up to 1e-3 at 4e, up to 1e-2 earlier, where float32 rounding
 * flips ReLU and max-pool decisions): 1e-3 at inception_5b, 1e-2 at 4e, 5e-2 earlier.
 *
 * Error scale. Each map is a sum over channels of products of float32 values (A from the forward
 * pass, G from the backward pass, weights made from them). A float32 sum of terms t_j, each with a
 * relative error ≤ δ, is within δ·Σ|t_j| of the exact sum, so each position is compared with the
 * "conditioned magnitude" M(i) = Σ_k |term_k(i)| of the method, where a weight that is a quotient or
 * a cancelling sum enters with the magnitude of what it is made of:
 *   gradcam              M = Σ_k mean_hw|G_k| · |A_k(i)|       (the mean of G cancels: its error is that of mean|G|)
 *   hirescam, -elementwise, layercam   M = Σ_k |G_k(i) A_k(i)|
 *   gradcam++            M = Σ_k w_k · |A_k(i)|                (w_k ≥ 0 is a sum of non-negative terms, see below)
 *   xgradcam             M = Σ_k (Σ_hw|G_k A_k| / |S_k + 1e-7|) · |A_k(i)|   (see below)
 *   eigencam, eigengradcam   M = Σ_k |X(i, k) v_k| (X: A, or G ⊙ A, centred)
 * and err = max_i |GPU(i) − ref(i)| is asked to stay ≤ bound · max_i M(i). The bound per layer is the
 * one stated above for Grad-CAM on its own scale (1e-3 at 5b, 1e-2 at 4e, 5e-2 at 3b): δ is
 * not float32's 6e-8 there but the gradients' own error, which float32 rounding in the backward pass
 * makes larger at earlier layers (it flips ReLU and max-pool decisions); every method reads the same A
 * and G, so the same δ applies.
 *
 * Conditioning of the divisions.
 *   gradcam++: a term is ReLU(g)·g²/(2g² + S g³ + 1e-6) = ReLU(g) / D with D = 2 + S g + 1e-6/g².
 *     Only g > 0 counts (ReLU(g)); GoogLeNet's block outputs are ReLU outputs, so A ≥ 0 and S ≥ 0
 *     (checked below), hence every counted D ≥ 2: D is a sum of non-negative terms, its relative
 *     error is that of its inputs, and no denominator comes near 0. The test asserts min D ≥ 2 over
 *     the counted terms (the argument's premise), so a model where it fails is reported, not hidden.
 *   xgradcam: w_k = N_k / (S_k + 1e-7), N_k = Σ G_k A_k. S_k ≥ 0 (A ≥ 0) is a sum of non-negative
 *     terms (relative error ≤ hw·δ); N_k cancels, so its error is δ·Σ|G_k A_k|. The error of w_k A_k(i)
 *     is thus ≤ δ·(Σ|G_k A_k| / (S_k + 1e-7))·A_k(i) (plus the S term, smaller): M above. A dead
 *     channel (A_k ≡ 0) has N_k = 0 exactly and w_k·A_k = 0: no 0/0.
 *   eigencam: the power iteration stops when v changes by ≤ EIGEN_TOLERANCE = 1e-6 per entry; with
 *     r = (σ2/σ1)² the remaining error is ≤ 1e-6·r/(1 − r) per entry (≈ 4e-6 at r = 0.81), far
 *     below the bounds; the test also asks that it converged (not stopped at the cap).
 */
import { afterAll, describe, expect, test } from 'vitest';
import { METHODS as ALL_METHODS, atInput, isMultiPass, type Method, methodSpec } from '../src/gradcam/methods.ts';
import type { GradcamResult, Reduction } from '../src/gradcam/types.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { destroyGooglenets, googlenetInput, googlenetNetwork, type GooglenetName, programsOf } from './helpers/googlenets.ts';
import { camReference, type CamMethod } from './reference/cam-methods.ts';
import { backwardReference, forwardValues } from './reference/graph.ts';
import { tensor } from './reference/tensor.ts';

/** The methods at a feature layer (the guided ones have their own test, test/guided-googlenet.test.ts). */
const METHODS = ALL_METHODS.filter((m) => !atInput(m) && !isMultiPass(m));
/** The methods whose counterfactual differs from their map: they read G and are not a principal component. */
const COUNTERFACTUAL_METHODS = METHODS.filter((m) => methodSpec(m).gradients && methodSpec(m).kind !== 'eigen');

const CASES: { model: GooglenetName; layers: string[]; reductions: Reduction[]; counterfactual: Method[] }[] = [
  { model: 'googlenet-zoo-seeded', layers: ['inception_3b/output_1', 'inception_4e/output_1', 'inception_5b/output_1'], reductions: ['logit'], counterfactual: COUNTERFACTUAL_METHODS },
  { model: 'googlenet-torchvision-seeded', layers: ['/inception3b/Concat_output_0', '/inception4e/Concat_output_0', '/inception5b/Concat_output_0'], reductions: ['logit', 'softmax'], counterfactual: METHODS },
];
const BOUND: Record<string, number> = { '3b': 5e-2, '4e': 1e-2, '5b': 1e-3 };
const bound = (layer: string) => BOUND[Object.keys(BOUND).find((k) => layer.replace('_', '').includes(k))!];

type Values = Map<string, { shape: number[]; data: Float64Array }>;

afterAll(destroyGooglenets);

function softmax(z: Float64Array): Float64Array {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** G = ∂score/∂A per layer and class, float64. */
function referenceGradients(model: OnnxModel, values: Values, logitsName: string, layers: string[], classes: number[], reduction: Reduction) {
  const logits = values.get(logitsName)!.data;
  const p = softmax(logits);
  const seeds = classes.map((c) => {
    const s = new Float64Array(logits.length);
    if (reduction === 'logit') s[c] = 1;
    else for (let j = 0; j < s.length; j++) s[j] = p[c] * ((j === c ? 1 : 0) - p[j]);
    return s;
  });
  return backwardReference(model, values as never, { score: logitsName, seeds, wrt: layers });
}

/** The conditioned magnitude M(i) of the header, per position. */
function conditionedMagnitude(method: Method, A: Float64Array, G: Float64Array, C: number, hw: number, weights: Float64Array | undefined,
  counterfactual: boolean): Float64Array {
  const M = new Float64Array(hw);
  const g = (k: number, i: number) => (counterfactual ? -1 : 1) * G[k * hw + i];
  for (let k = 0; k < C; k++) {
    let w = 0;
    if (method === 'gradcam') { for (let i = 0; i < hw; i++) w += Math.abs(g(k, i)); w /= hw; }
    if (method === 'gradcam++') w = weights![k];
    if (method === 'xgradcam') {
      let n = 0, s = 0;
      for (let i = 0; i < hw; i++) { n += Math.abs(g(k, i) * A[k * hw + i]); s += A[k * hw + i]; }
      w = n / Math.abs(s + 1e-7);
    }
    for (let i = 0; i < hw; i++) {
      const a = Math.abs(A[k * hw + i]);
      M[i] += method === 'hirescam' || method === 'gradcam-elementwise' || method === 'layercam' ? Math.abs(g(k, i)) * a : w * a;
    }
  }
  return M;
}

/** Grad-CAM's sum before the ReLU, pre(i) = Σ_k α_k A_k(i) with α_k = mean_hw G_k (G := −G for the counterfactual), float64. */
function gradcamPreRelu(A: Float64Array, G: Float64Array, C: number, hw: number, counterfactual: boolean): Float64Array {
  const pre = new Float64Array(hw);
  for (let k = 0; k < C; k++) {
    let s = 0;
    for (let i = 0; i < hw; i++) s += G[k * hw + i];
    const alpha = ((counterfactual ? -1 : 1) * s) / hw;
    for (let i = 0; i < hw; i++) pre[i] += alpha * A[k * hw + i];
  }
  return pre;
}

/** The smallest Grad-CAM++ denominator D = 2 + S g + 1e-6/g² over the terms that count (g > 0). */
function minPlusPlusDenominator(A: Float64Array, G: Float64Array, C: number, hw: number, counterfactual: boolean): number {
  let min = Infinity;
  for (let k = 0; k < C; k++) {
    let S = 0;
    for (let i = 0; i < hw; i++) S += A[k * hw + i];
    for (let i = 0; i < hw; i++) {
      const g = (counterfactual ? -1 : 1) * G[k * hw + i];
      if (g > 0) min = Math.min(min, 2 + S * g + 1e-6 / (g * g));
    }
  }
  return min;
}

function check(result: GradcamResult, values: Values, grads: Record<string, { data: Float64Array }[]>, layers: string[], classes: number[],
  what: string, counterfactual: boolean, methods: readonly Method[] = METHODS): void {
  for (const layer of layers) {
    const Av = values.get(layer)!;
    const [, C, h, w] = Av.shape;
    const hw = h * w;
    expect(Av.data.every((v) => v >= 0), `${layer} is a ReLU output (A ≥ 0: the division arguments' premise)`).toBe(true);
    classes.forEach((c, k) => {
      const G = grads[layer][k].data;
      for (const method of methods) {
        const got = result.maps.find((m) => m.layer === layer && m.class === c && m.method === method);
        expect(got, `${what}: a ${method} map of class ${c} at ${layer}`).toBeDefined();
        expect(got!.counterfactual).toBe(counterfactual && methodSpec(method).gradients);
        const ref = camReference(method as CamMethod, Av.data, G, C, hw, { counterfactual });
        const eigen = methodSpec(method).kind === 'eigen';
        const M = eigen ? ref.magnitude : conditionedMagnitude(method, Av.data, G, C, hw, ref.weights, counterfactual);
        if (method === 'gradcam++') {
          const d = minPlusPlusDenominator(Av.data, G, C, hw, counterfactual);
          expect(d, `${what}: Grad-CAM++'s counted denominators at ${layer}`).toBeGreaterThanOrEqual(2);
        }
        if (eigen) {
          expect(got!.eigen?.converged, `${what}: ${method} converged at ${layer} (${got!.eigen?.iterations} iterations)`).toBe(true);
        }
        let err = 0, scale = 0, refMax = 0;
        for (let i = 0; i < hw; i++) {
          err = Math.max(err, Math.abs(got!.raw[i] - ref.map[i]));
          scale = Math.max(scale, M[i]);
          refMax = Math.max(refMax, ref.map[i]);
        }
        expect(scale, `${what}: ${method} at ${layer} has terms`).toBeGreaterThan(0);
        const rel = err / scale;
        const extra = eigen ? `, ${got!.eigen!.iterations} iterations` : '';
        console.log(`${what} ${method} ${layer} class ${c}: max |Δ| / M = ${rel.toExponential(2)} (bound ${bound(layer)}; map max ${refMax.toExponential(2)}, M ${scale.toExponential(2)}${extra})`);
        expect(rel, `${what}: ${method} at ${layer}, class ${c}`).toBeLessThanOrEqual(bound(layer));
        if (method === 'gradcam') {
          // Grad-CAM on its own scale (header): max |pre| of the sum before the ReLU.
          const pre = gradcamPreRelu(Av.data, G, C, hw, counterfactual);
          let e = 0, s = 0;
          for (let i = 0; i < hw; i++) {
            e = Math.max(e, Math.abs(got!.raw[i] - Math.max(pre[i], 0)));
            s = Math.max(s, Math.abs(pre[i]));
          }
          console.log(`${what} gradcam ${layer} class ${c}: max |Δ| / max |pre| = ${(e / s).toExponential(2)} (bound ${bound(layer)})`);
          expect(e / s, `${what}: gradcam at ${layer}, class ${c}, on the scale max |Σ α A|`).toBeLessThanOrEqual(bound(layer));
        }
      }
    });
  }
}

/** The float64 forward values of a model's input (Rng 11), computed once per model for the file. */
const forwards = new Map<GooglenetName, Values>();
async function forwardOf(name: GooglenetName) {
  const { c: { model, shape, inputName }, net } = await googlenetNetwork(name);
  const x = googlenetInput(shape, 11);
  let values = forwards.get(name);
  if (!values) {
    values = forwardValues(model, { [inputName]: tensor(shape, x) }) as unknown as Values;
    forwards.set(name, values);
  }
  return { model, shape, net, values, input: { shape, data: x } };
}

for (const { model: name, layers, reductions, counterfactual } of CASES) {
  describe(name, () => {
    // One test per reduction (the logit one with the counterfactual): each a GPU call or two and a float64 backward pass.
    for (const reduction of reductions) {
      test(`every non-guided method in one call, three layers, K = 3, ${reduction} reduction${reduction === 'logit' ? ' and the counterfactual' : ''}, match the float64 references`, async () => {
        const { model, shape, net, values, input } = await forwardOf(name);
        const result = await net.gradCAM(input, { classes: 'top3', featureLayers: layers, reduction, upsample: false, methods: [...METHODS] });
        expect(result.maps.length).toBe(layers.length * METHODS.length * 3);
        const classes = result.maps.filter((m) => m.layer === layers[0] && m.method === 'gradcam').map((m) => m.class);
        expect(classes).toEqual(result.predictions.slice(0, 3).map((p) => p.class));
        const grads = referenceGradients(model, values, net.graph.logits, layers, classes, reduction);
        check(result, values, grads, layers, classes, `${name} ${shape[2]}×${shape[3]} ${reduction}`, false);
        if (reduction === 'logit') {
          const cf = await net.gradCAM(input, { classes: 'top3', featureLayers: layers, reduction, upsample: false, methods: counterfactual, counterfactual: true });
          expect(cf.maps.length).toBe(layers.length * counterfactual.length * 3);
          check(cf, values, grads, layers, classes, `${name} ${shape[2]}×${shape[3]} ${reduction} counterfactual`, true, counterfactual);
        }
      });
    }
  });
}

/** The programs `run` compiles on `net` (the network is shared by the file's tests). */
async function newPrograms<P>(net: Parameters<typeof programsOf>[0], run: () => Promise<unknown>): Promise<P[]> {
  const before = new Set(programsOf(net).keys());
  await run();
  return [...programsOf<P>(net)].filter(([key]) => !before.has(key)).map(([, p]) => p);
}

test('one forward and one backward pass serve every method; profileMethods times each; eigencam alone runs no backward pass', async () => {
  const { c: { shape }, net } = await googlenetNetwork('googlenet-zoo-seeded');
  const input = { shape, data: googlenetInput(shape, 3) };
  type P = { layers: { method: string; layer: string }[]; backwardStage: { kernel: string }[]; backward: { dispatches: unknown[] } };
  let all!: GradcamResult, one!: GradcamResult, eigen!: GradcamResult;
  const [pAll] = await newPrograms<P>(net, async () => { all = await net.gradCAM(input, { classes: 'top2', methods: [...METHODS], upsample: false }); });
  const [pOne] = await newPrograms<P>(net, async () => { one = await net.gradCAM(input, { classes: 'top2', upsample: false }); });
  // The same backward stage (one seed, the same cone), whatever the number of methods.
  expect(pAll.backwardStage.map((d) => d.kernel)).toEqual(pOne.backwardStage.map((d) => d.kernel));
  expect(pAll.backwardStage.filter((d) => d.kernel === 'gradcam.seed').length).toBe(1);
  expect(pAll.layers.map((l) => l.method)).toEqual(METHODS);
  // Grad-CAM among all methods is bitwise Grad-CAM alone: the same kernels on the same data.
  for (const m of one.maps) expect(all.maps.find((a) => a.method === 'gradcam' && a.class === m.class)!.raw).toEqual(m.raw);
  // profileMethods: the same maps, plus each method's own time (its dispatches replayed alone).
  const timed = await net.profileMethods(input, { classes: 'top2', methods: [...METHODS], upsample: false }, 1);
  expect(Object.keys(timed.timings.methodMs!)).toEqual(METHODS);
  for (const ms of Object.values(timed.timings.methodMs!)) expect(ms).toBeGreaterThan(0);
  timed.maps.forEach((m, i) => expect(m.raw).toEqual(all.maps[i].raw));
  const [pEigen] = await newPrograms<P>(net, async () => { eigen = await net.gradCAM(input, { classes: 'top2', methods: ['eigencam'], upsample: false }); });
  expect(pEigen.backwardStage.some((d) => d.kernel.startsWith('conv') || d.kernel === 'gradcam.seed')).toBe(false);
  for (const m of eigen.maps) expect(all.maps.find((a) => a.method === 'eigencam' && a.class === m.class)!.raw).toEqual(m.raw);
});

test('--layer all with top-3 is one backward pass: each op of the cone once, one seed for all 3 classes', async () => {
  // (was in test/gradcam-googlenet.test.ts)
  const { c: { shape }, net } = await googlenetNetwork('googlenet-zoo-seeded');
  let result!: GradcamResult;
  type P = { pre: { kernel: string }[]; backward: { dispatches: { label: string; kernel: string }[]; cone: { name: string }[]; items: number } };
  const programs = await newPrograms<P>(net, async () => {
    result = await net.gradCAM({ shape, data: googlenetInput(shape, 3) }, { classes: 'top3', featureLayers: 'all', upsample: false });
  });
  expect(new Set(result.maps.map((m) => m.layer)).size).toBe(9);
  expect(result.maps.length).toBe(27);
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
});

test('unknown or empty methods are refused before any GPU work, naming the valid ones', async () => {
  const { c: { shape }, net } = await googlenetNetwork('googlenet-zoo-seeded');
  const input = { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) };
  await expect(net.gradCAM(input, { methods: ['gradcam', 'fullgrad' as Method] })).rejects.toThrow(/unknown method 'fullgrad'/);
  await expect(net.gradCAM(input, { methods: ['gradcam', 'fullgrad' as Method] })).rejects.toMatchObject({ hint: expect.stringContaining('hirescam') });
  await expect(net.gradCAM(input, { methods: [] })).rejects.toThrow(/^option methods is an array of 0: expected a non-empty list of method names \(gradcam, hirescam/); // src/gradcam/arguments.ts
});
