/**
 * The input-attribution kernels (shaders/attribution.wgsl): saliency, x ⊙ gradient (input-x-gradient,
 * and the last step of integrated gradients and smoothgrad), the input's range, the perturbed inputs of
 * the many-pass methods (noise, the integration path, occluding windows), the sum of a batch's input
 * gradients, each pass's score, occlusion's map. Used by src/gradcam/attributions.ts.
 */
import code from '../../shaders/attribution.wgsl';
import { declareKernel, read, readWrite } from '../gpu/kernel.ts';
import { INPUT_LAYOUT, rowProbability } from '../gpu/wgsl-library.ts';

/** The input's range: one workgroup reduces the whole image. */
const RANGE_WG = 256;

/** PERTURB: how a pass's input is made from x. */
export const PERTURB = { smoothgrad: 0, path: 1, occlusion: 2 } as const;

export const ATTRIBUTION = declareKernel({
  name: 'attribution',
  body: code,
  uniforms: {
    channels: 'u32', // C of the input
    hw: 'u32', // H·W of the input
    width: 'u32', // W of the input
    nhwc: 'u32', // 1: the input (x, its gradients, the baseline, a pass's input) is NHWC, else NCHW
    items: 'u32', // saliency, attributeInput: the items (N·K)
    classesPerImage: 'u32', // K
    classOffset: 'u32', // accumulate, passScores: the first item of the image the passes are for (n·K)
    inputGradOffset: 'u32', inputGradStride: 'u32', // views: item i at i · stride + offset
    xOffset: 'u32', xStride: 'u32',
    inputOffset: 'u32', inputStride: 'u32',
    scoresOffset: 'u32', scoresStride: 'u32',
    scale: 'f32', // attributeInput: the factor (1, 1/m, 1/n); occlusionMap: 1, or −1 for the counterfactual
    slots: 'u32', // perturb: the pass engine's batch
    first: 'u32', // perturb, accumulate, passScores: the pass of slot 0
    passes: 'u32', // the method's passes per image
    valid: 'u32', // accumulate, passScores: the slots holding a pass (the last batch may have fewer)
    sigma: 'f32', // perturb (smoothgrad): the noise's standard deviation, as a fraction of the input's range
    seed: 'u32', // perturb (smoothgrad): the noise's seed
    fill: 'f32', // perturb (occlusion): the value inside a window
    patchSize: 'u32', step: 'u32', windowsX: 'u32', // occlusion: window size, stride, windows per row
    classCount: 'u32', // passScores, occlusionMap: values per scores row
  },
  bindings: {
    inputGrad: read(), // saliency, attributeInput, accumulate: ∂y/∂x (attributeInput: the accumulated sum)
    x: read(), // attributeInput, range, perturb: the input
    baseline: read(), // attributeInput, perturb: integrated gradients' baseline x', one image
    out: readWrite(), // attributeInput: the attribution, items × C × H × W
    maps: readWrite(), // saliency, attributeInput, occlusionMap: a plane per item, items × H × W
    rangeOut: readWrite(), // range: max − min of x
    rangeIn: read(), // perturb: range's result
    input: readWrite(), // perturb: the pass engine's input
    acc: readWrite(), // accumulate: Σ of the gradients, K × C × H × W
    scores: read(), // passScores: the pass engine's logits; occlusionMap: the first pass's
    classes: read('u32'), // passScores, occlusionMap: the class of each item (the first pass's choice)
    scoresOut: readWrite(), // passScores: each pass's score, items × passes
    scoresIn: read(), // occlusionMap: the occluded scores
  },
  entries: {
    saliency: ['inputGrad', 'maps'],
    attributeInput: ['inputGrad', 'x', 'baseline', 'out', 'maps'],
    range: { bindings: ['x', 'rangeOut'], workgroupSize: [RANGE_WG, 1, 1] },
    perturb: ['x', 'rangeIn', 'baseline', 'input'],
    accumulate: ['inputGrad', 'acc'],
    passScores: ['scores', 'classes', 'scoresOut'],
    occlusionMap: ['scores', 'classes', 'scoresIn', 'maps'],
  },
  /** TIMES_INPUT, MINUS_BASELINE: attributeInput's factor d; PERTURB: PERTURB's values; TRAPEZOID: the path's ends weigh ½; SOFTMAX: the score is the probability. */
  overrides: { TIMES_INPUT: false, MINUS_BASELINE: false, PERTURB: 0, TRAPEZOID: false, SOFTMAX: false },
  libraries: [INPUT_LAYOUT, rowProbability('scores')],
  workgroupSize: [64, 1, 1],
});
