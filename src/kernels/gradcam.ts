/**
 * The Grad-CAM kernels (shaders/gradcam.wgsl): top-K class choice, the one-hot seed of the backward
 * pass, and the maps of the CAM methods (src/gradcam/methods.ts): channel weights, weighted maps,
 * element-wise maps, Eigen-CAM's power iteration. Used by src/gradcam/program.ts.
 */
import code from '../../shaders/gradcam.wgsl';
import { declareKernel, read, readWrite } from '../gpu/kernel.ts';
import { INPUT_LAYOUT, planeBilinear } from '../gpu/wgsl-library.ts';

/** Eigen-CAM's workgroup: one per image (a power iteration loops with barriers). */
const EIGEN_WG = 256;

/**
 * What the eigen entry decomposes (the EIGEN_OF override): A per image (eigencam), G ⊙ A per item
 * (eigengradcam), or per item a method's channel terms instead of their sum (eigen-smooth of a
 * weighted method: w_k A_k; of an element-wise one: term(G_k, A_k)).
 */
export const EIGEN_OF = { activations: 0, gradTimesActivations: 1, weighted: 2, elementwise: 3 } as const;

/** Floats of the eigen entry's scratch per unit (image or item): iterations, last change, mean[C], v[C], w[C], u[HW]. */
export const eigenScratchFloats = (channels: number, hw: number) => 2 + 3 * channels + hw;

export const GRADCAM = declareKernel({
  name: 'gradcam',
  body: code,
  uniforms: {
    classCount: 'u32', // values per item of the score tensor
    channels: 'u32', // C of the feature layer
    hw: 'u32', // H·W of the feature layer
    items: 'u32', // N·K
    classesPerImage: 'u32', // K
    topkGroup: 'u32', // topk: images n take the classes of image n − n mod topkGroup (aug-smooth: 6; 0 reads as 1)
    scoresOffset: 'u32', scoresStride: 'u32', // views: item i at i · stride + offset
    scoreGradOffset: 'u32', scoreGradStride: 'u32',
    featureGradOffset: 'u32', featureGradStride: 'u32',
    featuresOffset: 'u32', featuresStride: 'u32',
    gradSign: 'f32', // 1, or −1 for the counterfactual explanation (G := −G)
    eigenTolerance: 'f32', // eigen: stop when no entry of v changes by more
    eigenMaxIterations: 'u32', // eigen: the iteration cap
    seedValue: 'f32', // seed: 1, or −1 (the counterfactual of the guided backward pass)
    width: 'u32', // guided: W of the input (hw = H·W)
    nhwc: 'u32', // guided: 1 when the input (featureGrad) is NHWC, else NCHW
    mapH: 'u32', mapW: 'u32', // guided: the Grad-CAM map's size (GUIDED_CAM)
  },
  bindings: {
    scores: read(), // topk: the score tensor (logits)
    classesOut: readWrite('u32'), // topk: the class of each item
    classes: read('u32'), // seed: the class of each item (topk's, or the host's)
    scoreGrad: readWrite(), // seed: the gradient of the score tensor
    featureGrad: read(), // weights, elementwise, eigen (EIGEN_OF 1, 3): ∂y/∂A
    alphasOut: readWrite(), // weights: w per (item, channel)
    alphas: read(), // map, eigen (EIGEN_OF 2): w
    features: read(), // weights, map, elementwise, eigen: A
    maps: readWrite(), // map, elementwise, eigen: the raw maps (ReLU applied), items × H × W
    signedMapsOut: readWrite(), // map, elementwise, eigen: the maps before the ReLU, items × H × W
    eigenScratch: readWrite(), // eigen: per image [iterations, last change, mean[C], v[C], w[C], u[HW]]
    camMap: read(), // guided: the Grad-CAM maps at the layer (GUIDED_CAM)
    guidedOut: readWrite(), // guided: the guided maps, items × C × H × W
  },
  entries: {
    topk: ['scores', 'classesOut'],
    seed: ['classes', 'scoreGrad'],
    weights: ['featureGrad', 'features', 'alphasOut'],
    map: ['features', 'alphas', 'maps', 'signedMapsOut'],
    elementwise: ['featureGrad', 'features', 'maps', 'signedMapsOut'],
    eigen: { bindings: ['features', 'featureGrad', 'alphas', 'maps', 'signedMapsOut', 'eigenScratch'], workgroupSize: [EIGEN_WG, 1, 1] },
    guided: ['featureGrad', 'camMap', 'guidedOut', 'maps'],
  },
  /**
   * WEIGHTS: the channel weights' formula; TERM: the element-wise term (methods.ts gives each method's);
   * EIGEN_OF: what the eigen entry decomposes (eigenOf); GUIDED_CAM: guided-gradcam.
   */
  overrides: { WEIGHTS: 0, TERM: 0, EIGEN_OF: 0, GUIDED_CAM: false },
  libraries: [INPUT_LAYOUT, planeBilinear('camMap')],
  workgroupSize: [64, 1, 1],
});
