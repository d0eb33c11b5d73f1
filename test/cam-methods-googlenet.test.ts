/**
 * The CAM family on the GPU (src/gradcam/methods.ts) against the float64 references of
 * test/reference/cam-methods.ts on the 96×96 twin, googlenet-torchvision-seeded (test/helpers/googlenets.ts:
 * the zoo model's graph at a fifth of the cost; inception3b, 4e, 5b are 12×12, 6×6, 3×3): every
 * non-guided method in ONE call (one forward, one backward pass), three layers, K = 3 classes, both
 * reductions, and the counterfactual (G := −G) of every method with the logit reduction.
 * The checks and their bounds (the conditioned magnitude of each method, 1e-3 at inception_5b, 1e-2 at
 * 4e, 5e-2 at 3b; Grad-CAM on its own scale) are test/helpers/googlenet-checks.ts's checkCamMaps.
 * The full-size model (googlenet-zoo-seeded at 224) runs every method with the logit reduction, and the
 * counterfactual of the methods that are no principal component, in test/googlenet-zoo.test.ts; the softmax reduction (it only changes the seed) and eigengradcam's
 * counterfactual (an eigen map's sign is fixed by its largest entry) are checked here only.
 * The make-up of the programs (one backward pass serves every method; `--layer all` is one backward
 * pass over the cone) does not depend on the size: it runs here, on the twin (it ran on the zoo model
 * at 224).
 */
import { afterAll, describe, expect, test } from 'vitest';
import type { Method } from '../src/gradcam/methods.ts';
import type { GradcamResult, Reduction } from '../src/gradcam/types.ts';
import { CAM_METHODS, checkCamMaps, referenceGradients, type Values } from './helpers/googlenet-checks.ts';
import { destroyGooglenets, googlenetInput, googlenetNetwork, programsOf } from './helpers/googlenets.ts';
import { forwardValues } from './reference/graph.ts';
import { tensor } from './reference/tensor.ts';

const NAME = 'googlenet-torchvision-seeded';
const LAYERS = ['/inception3b/Concat_output_0', '/inception4e/Concat_output_0', '/inception5b/Concat_output_0'];

afterAll(destroyGooglenets);

/** The float64 forward values of the input (Rng 11), computed once for the file. */
let forward: Values | undefined;
async function forwardOf() {
  const { c: { model, shape, inputName }, net } = await googlenetNetwork(NAME);
  const x = googlenetInput(shape, 11);
  forward ??= forwardValues(model, { [inputName]: tensor(shape, x) }) as unknown as Values;
  return { model, shape, net, values: forward, input: { shape, data: x } };
}

describe(NAME, () => {
  // One test per reduction (the logit one with the counterfactual): each a GPU call or two and a float64 backward pass.
  for (const reduction of ['logit', 'softmax'] as Reduction[]) {
    test(`every non-guided method in one call, three layers, K = 3, ${reduction} reduction${reduction === 'logit' ? ' and the counterfactual' : ''}, match the float64 references`, async () => {
      const { model, shape, net, values, input } = await forwardOf();
      const result = await net.gradCAM(input, { classes: 'top3', featureLayers: LAYERS, reduction, upsample: false, methods: [...CAM_METHODS] });
      expect(result.maps.length).toBe(LAYERS.length * CAM_METHODS.length * 3);
      const classes = result.maps.filter((m) => m.layer === LAYERS[0] && m.method === 'gradcam').map((m) => m.class);
      expect(classes).toEqual(result.predictions.slice(0, 3).map((p) => p.class));
      const grads = referenceGradients(model, values, net.graph.logits, LAYERS, classes, reduction);
      checkCamMaps(result, values, grads, LAYERS, classes, `${NAME} ${shape[2]}×${shape[3]} ${reduction}`, false);
      if (reduction === 'logit') {
        const cf = await net.gradCAM(input, { classes: 'top3', featureLayers: LAYERS, reduction, upsample: false, methods: [...CAM_METHODS], counterfactual: true });
        expect(cf.maps.length).toBe(LAYERS.length * CAM_METHODS.length * 3);
        checkCamMaps(cf, values, grads, LAYERS, classes, `${NAME} ${shape[2]}×${shape[3]} ${reduction} counterfactual`, true);
      }
    });
  }
});

/** The programs `run` compiles on `net` (the network is shared by the file's tests). */
async function newPrograms<P>(net: Parameters<typeof programsOf>[0], run: () => Promise<unknown>): Promise<P[]> {
  const before = new Set(programsOf(net).keys());
  await run();
  return [...programsOf<P>(net)].filter(([key]) => !before.has(key)).map(([, p]) => p);
}

test('one forward and one backward pass serve every method; profileMethods times each; eigencam alone runs no backward pass', async () => {
  const { c: { shape }, net } = await googlenetNetwork(NAME);
  const input = { shape, data: googlenetInput(shape, 3) };
  type P = { layers: { method: string; layer: string }[]; backwardStage: { kernel: string }[]; backward: { dispatches: unknown[] } };
  let all!: GradcamResult, one!: GradcamResult, eigen!: GradcamResult;
  const [pAll] = await newPrograms<P>(net, async () => { all = await net.gradCAM(input, { classes: 'top2', methods: [...CAM_METHODS], upsample: false }); });
  const [pOne] = await newPrograms<P>(net, async () => { one = await net.gradCAM(input, { classes: 'top2', upsample: false }); });
  // The same backward stage (one seed, the same cone), whatever the number of methods.
  expect(pAll.backwardStage.map((d) => d.kernel)).toEqual(pOne.backwardStage.map((d) => d.kernel));
  expect(pAll.backwardStage.filter((d) => d.kernel === 'gradcam.seed').length).toBe(1);
  expect(pAll.layers.map((l) => l.method)).toEqual(CAM_METHODS);
  // Grad-CAM among all methods is bitwise Grad-CAM alone: the same kernels on the same data.
  for (const m of one.maps) expect(all.maps.find((a) => a.method === 'gradcam' && a.class === m.class)!.raw).toEqual(m.raw);
  // profileMethods: the same maps, plus each method's own time (its dispatches replayed alone).
  const timed = await net.profileMethods(input, { classes: 'top2', methods: [...CAM_METHODS], upsample: false }, 1);
  expect(Object.keys(timed.timings.methodMs!)).toEqual(CAM_METHODS);
  for (const ms of Object.values(timed.timings.methodMs!)) expect(ms).toBeGreaterThan(0);
  timed.maps.forEach((m, i) => expect(m.raw).toEqual(all.maps[i].raw));
  const [pEigen] = await newPrograms<P>(net, async () => { eigen = await net.gradCAM(input, { classes: 'top2', methods: ['eigencam'], upsample: false }); });
  expect(pEigen.backwardStage.some((d) => d.kernel.startsWith('conv') || d.kernel === 'gradcam.seed')).toBe(false);
  for (const m of eigen.maps) expect(all.maps.find((a) => a.method === 'eigencam' && a.class === m.class)!.raw).toEqual(m.raw);
});

test('--layer all with top-3 is one backward pass: each op of the cone once, one seed for all 3 classes', async () => {
  // (was in test/gradcam-googlenet.test.ts, on the zoo model at 224: the make-up does not depend on the size)
  const { c: { shape }, net } = await googlenetNetwork(NAME);
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
  // The cone goes down to the deepest requested tensor, inception3a's output, and no further.
  expect(labels.some((l) => l.startsWith('/inception3b/'))).toBe(true);
  expect(labels.some((l) => l.startsWith('/inception3a/') || l.startsWith('/conv3/') || l.startsWith('/maxpool2/'))).toBe(false);
});

test('unknown or empty methods are refused before any GPU work, naming the valid ones', async () => {
  const { c: { shape }, net } = await googlenetNetwork(NAME);
  const input = { shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) };
  await expect(net.gradCAM(input, { methods: ['gradcam', 'fullgrad' as Method] })).rejects.toThrow(/unknown method 'fullgrad'/);
  await expect(net.gradCAM(input, { methods: ['gradcam', 'fullgrad' as Method] })).rejects.toMatchObject({ hint: expect.stringContaining('hirescam') });
  await expect(net.gradCAM(input, { methods: [] })).rejects.toThrow(/^option methods is an array of 0: expected a non-empty list of method names \(gradcam, hirescam/); // src/gradcam/arguments.ts
});
