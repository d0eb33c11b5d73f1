/**
 * The multi-pass CAM methods' kernels (shaders/multipass.wgsl): Score-CAM's masked inputs (with the
 * per-channel range of the upsampled maps), Ablation-CAM's ablated layer, the score of each pass,
 * and the channel weights from the scores. Used by src/gradcam/multipass.ts.
 */
import code from '../../shaders/multipass.wgsl';
import { declareKernel, read, readWrite } from '../gpu/kernel.ts';
import { INPUT_LAYOUT, planeBilinear, rowProbability } from '../gpu/wgsl-library.ts';

export const MULTIPASS = declareKernel({
  name: 'multipass',
  body: code,
  uniforms: {
    imageIndex: 'u32', // n: the image of the first pass
    channels: 'u32', // C of the feature layer
    mapH: 'u32', mapW: 'u32', // the feature layer's H and W
    inC: 'u32', inH: 'u32', inW: 'u32', // the input's channels, height and width
    nhwc: 'u32', // 1: the input is NHWC
    batch: 'u32', // slots of the pass engine
    passCount: 'u32', // passes of this (image, layer)
    classesPerImage: 'u32', // K
    classCount: 'u32', // values per image of the score tensor
    featuresOffset: 'u32', featuresStride: 'u32', // views: image i at i · stride + offset
    imageOffset: 'u32', imageStride: 'u32',
    passInputOffset: 'u32', passInputStride: 'u32',
    passFeaturesOffset: 'u32', passFeaturesStride: 'u32',
    passScoresOffset: 'u32', passScoresStride: 'u32',
    baseScoresOffset: 'u32', baseScoresStride: 'u32',
  },
  bindings: {
    cursor: read('u32'), // [first pass of this batch]
    features: read(), // A of the first pass
    image: read(), // the first pass's input x
    rangesOut: readWrite(), // maskRange: [min, max] per channel
    ranges: read(), // mask: the same
    channelList: read('u32'), // the channel of each pass
    passInput: readWrite(), // mask: the pass engine's input
    passFeatures: readWrite(), // ablate: the pass engine's layer
    classes: read('u32'), // the class of each item of the first pass
    passScores: read(), // gather: the pass engine's logits
    scoresOut: readWrite(), // gather: K × passCount scores of this (image, layer)
    scores: read(), // weights: the same
    baseScores: read(), // ablationWeights: the first pass's logits
    slotOf: read('u32'), // ablationWeights: each channel's pass, or 0xffffffff (skipped)
    weightsOut: readWrite(), // weights: items × C channel weights
  },
  entries: {
    maskRange: ['features', 'rangesOut'],
    mask: ['cursor', 'features', 'ranges', 'channelList', 'image', 'passInput'],
    ablate: ['cursor', 'features', 'channelList', 'passFeatures'],
    gather: ['cursor', 'classes', 'passScores', 'scoresOut'],
    softmaxWeights: ['scores', 'weightsOut'],
    ablationWeights: ['classes', 'baseScores', 'slotOf', 'scores', 'weightsOut'],
  },
  /** SOFTMAX: the score is the class's probability (reduction 'softmax'), computed from the logits. */
  overrides: { SOFTMAX: false },
  libraries: [planeBilinear('features'), INPUT_LAYOUT, rowProbability('passScores'), rowProbability('baseScores')],
  workgroupSize: [64, 1, 1],
});
