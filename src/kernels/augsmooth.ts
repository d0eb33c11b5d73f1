/**
 * Aug-smooth's kernels (shaders/augsmooth.wgsl): the augmented copies of the input made on the GPU,
 * and the maps flipped back, normalised and averaged. Used by src/gradcam/aug-smooth.ts.
 */
import code from '../../shaders/augsmooth.wgsl';
import { declareKernel, read, readWrite } from '../gpu/kernel.ts';

export const AUGSMOOTH = declareKernel({
  name: 'augsmooth',
  body: code,
  uniforms: {
    groups: 'u32', // G: the inputs, each with its 6 augmentations
    perImage: 'u32', // augment: elements of one input image
    channels: 'u32', width: 'u32', nhwc: 'u32', // augment: the input's C, W and layout
    inputOffset: 'u32', inputStride: 'u32', // augment: image n of the input at n · stride + offset
    items: 'u32', // range: all items (6G · K)
    classesPerImage: 'u32', // mean: K
    hw: 'u32', mapW: 'u32', // range, mean: the map's positions and width
  },
  bindings: {
    input: readWrite(), // augment: the model's input, all 6G images
    raw: read(), // range: the raw maps
    rangesOut: readWrite('vec2<f32>'), // range: (min, max) per item
    ranges: read('vec2<f32>'),
    rawInOut: readWrite(), // mean: the raw maps, augmentation 0's overwritten with the mean
  },
  entries: {
    augment: ['input'],
    range: ['raw', 'rangesOut'],
    mean: ['ranges', 'rawInOut'],
  },
  workgroupSize: [64, 1, 1],
});
