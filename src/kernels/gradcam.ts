/**
 * The Grad-CAM kernels (shaders/gradcam.wgsl): top-K class choice, the one-hot seed of the backward
 * pass, α per channel and the raw map per layer. Used by src/gradcam/program.ts.
 */
import code from '../../shaders/gradcam.wgsl';
import { declareKernel, read, readWrite } from '../gpu/kernel.ts';

export const GRADCAM = declareKernel({
  name: 'gradcam',
  body: code,
  uniforms: {
    classCount: 'u32', // values per item of the score tensor
    channels: 'u32', // C of the feature layer
    hw: 'u32', // H·W of the feature layer
    items: 'u32', // N·K
    classesPerImage: 'u32', // K
    scoresOffset: 'u32', scoresStride: 'u32', // views: item i at i · stride + offset
    scoreGradOffset: 'u32', scoreGradStride: 'u32',
    featureGradOffset: 'u32', featureGradStride: 'u32',
    featuresOffset: 'u32', featuresStride: 'u32',
  },
  bindings: {
    scores: read(), // topk: the score tensor (logits)
    classesOut: readWrite('u32'), // topk: the class of each item
    classes: read('u32'), // seed: the class of each item (topk's, or the host's)
    scoreGrad: readWrite(), // seed: the gradient of the score tensor
    featureGrad: read(), // alpha: ∂y/∂A
    alphasOut: readWrite(), // alpha: α per (item, channel)
    alphas: read(), // map: α
    features: read(), // map: A
    maps: readWrite(), // map: the raw maps, items × H × W
  },
  entries: {
    topk: ['scores', 'classesOut'],
    seed: ['classes', 'scoreGrad'],
    alpha: ['featureGrad', 'alphasOut'],
    map: ['features', 'alphas', 'maps'],
  },
  workgroupSize: [64, 1, 1],
});
