/**
 * The full-size check of each exactness property on the real model: googlenet-zoo-seeded at its own
 * 224×224 (LRN, the 7×7 stride-2 conv1, the AveragePool 7×7 → Reshape head; inception_3b, 4e, 5b are
 * 28×28, 14×14, 7×7). The 96×96 twin (googlenet-torchvision-seeded: the same graph, a fifth of the
 * cost) runs the variants in the properties' own files: cam-methods-googlenet (both reductions and the
 * counterfactual of every method), guided-googlenet (both reductions, the counterfactual),
 * inspect-googlenet (the softmax reduction's CAM identity, the known-answer model).
 *
 * One network, one float64 forward and ONE GPU call serve the checks here (they were three files,
 * each with its own network, forward and call on the same model): every non-guided method at
 * inception_3b, 4e and 5b plus guided-backprop and guided-gradcam, K = 3 (top 3), the logit
 * reduction, with `inspect: true`; the float64 gradients at the three layers serve the CAM methods,
 * the guided-gradcam maps and the inspector. The checks and their bounds are those of
 * test/helpers/googlenet-checks.ts (its header states them):
 *   - every CAM method against the float64 references, and the counterfactual (G := −G) of the methods
 *     that read G and are no principal component (an eigen map's sign is fixed by its largest entry, so
 *     −G gives eigengradcam the same map; its counterfactual, and the softmax reduction, which only
 *     changes the seed, are checked on the twin);
 *   - guided-backprop and guided-gradcam at inception_5b against the float64 guided backward pass to
 *     the input;
 *   - the CAM identity at inception_5b and the inspector (gradcam, hirescam, eigencam; branches 1×1,
 *     3×3, 5×5, pool proj);
 *   - the logits against onnxruntime-node (test/forward-googlenet.test.ts's tolerance), for one input
 *     of each regime (image-like, noise) by net.classify on this network (the twin: 4 inputs, Engine).
 * The make-up of the programs (one backward pass for every method, `--layer all`) does not depend on
 * the size: test/cam-methods-googlenet.test.ts runs it on the twin.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { CAM_METHODS, checkCamMaps, checkGuided, checkInspector, COUNTERFACTUAL_METHODS, expectLogitsAgree, referenceGradients, type Values } from './helpers/googlenet-checks.ts';
import { destroyGooglenets, googlenetInput, googlenetNetwork, regimeInput } from './helpers/googlenets.ts';
import { OrtOracle } from './helpers/ort.ts';
import { forwardValues } from './reference/graph.ts';
import { tensor } from './reference/tensor.ts';

const NAME = 'googlenet-zoo-seeded';
const LAYERS = ['inception_3b/output_1', 'inception_4e/output_1', 'inception_5b/output_1'];

afterAll(destroyGooglenets);

/** The network, the input (Rng 11), the one GPU call, the float64 forward and the gradients at LAYERS: once for the file. */
let shared: ReturnType<typeof compute> | undefined;
async function compute() {
  const { c, net } = await googlenetNetwork(NAME);
  const input = { shape: c.shape, data: googlenetInput(c.shape, 11) };
  const result = await net.gradCAM(input, {
    classes: 'top3', featureLayers: LAYERS, reduction: 'logit', upsample: false, inspect: true, methods: [...CAM_METHODS, 'guided-backprop', 'guided-gradcam'],
  });
  const values = forwardValues(c.model, { [c.inputName]: tensor(c.shape, input.data) }) as unknown as Values;
  const classes = result.maps.filter((m) => m.layer === LAYERS[0] && m.method === 'gradcam').map((m) => m.class);
  const grads = referenceGradients(c.model, values, net.graph.logits, LAYERS, classes, 'logit');
  return { c, net, input, result, values, classes, grads };
}
const zoo = () => (shared ??= compute());

describe(`${NAME} 224×224: one GPU call, one float64 forward`, () => {
  test('every non-guided method, three layers, K = 3, logit reduction and the counterfactual, match the float64 references', async () => {
    const { net, input, result, values, classes, grads } = await zoo();
    expect(result.maps.length).toBe(LAYERS.length * (CAM_METHODS.length + 1) * 3 + 3); // + guided-gradcam per layer, guided-backprop
    expect(classes).toEqual(result.predictions.slice(0, 3).map((p) => p.class));
    checkCamMaps(result, values, grads, LAYERS, classes, `${NAME} 224×224 logit`, false);
    const cf = await net.gradCAM(input, { classes: 'top3', featureLayers: LAYERS, reduction: 'logit', upsample: false, methods: COUNTERFACTUAL_METHODS, counterfactual: true });
    expect(cf.maps.length).toBe(LAYERS.length * COUNTERFACTUAL_METHODS.length * 3);
    checkCamMaps(cf, values, grads, LAYERS, classes, `${NAME} 224×224 logit counterfactual`, true, COUNTERFACTUAL_METHODS);
  });

  test('guided-backprop and guided-gradcam at inception_5b, K = 3, logit, match the float64 reference', async () => {
    const { c, net, result, values, grads } = await zoo();
    const l5b = LAYERS[2];
    checkGuided(c, NAME, net.graph.logits, values, result, [l5b], 'logit', false, { [l5b]: grads[l5b] });
  });

  test('logits and top-5 agree with onnxruntime-node for 2 seeded inputs, one per regime (image-like, noise)', async () => {
    // test/forward-googlenet.test.ts's check (4 inputs on the twin), on this file's network.
    const { c, net } = await googlenetNetwork(NAME);
    const logitsName = net.graph.logits;
    const oracle = await OrtOracle.create(c.model, [logitsName]);
    for (const seed of [1, 2]) {
      const x = regimeInput(seed, c.size);
      const want = (await oracle.run(x, c.shape, [logitsName]))[logitsName];
      expectLogitsAgree((await net.classify({ shape: c.shape, data: x })).logits, want, `seed ${seed}`);
    }
  });

  test('the CAM identity at inception_5b to float32 rounding; the inspector against the float64 references', async () => {
    const { c, result, values, grads } = await zoo();
    checkInspector(c.model, NAME, values, result, LAYERS.slice(1), grads[LAYERS[2]], ['1×1', '3×3', '5×5', 'pool proj']);
  });
});
