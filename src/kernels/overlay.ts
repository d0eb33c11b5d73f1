/**
 * The display kernels (shaders/overlay.wgsl): upsampling of the raw maps, per-map min and max, jet
 * over the picture. Used by src/gradcam/overlay.ts.
 */
import code from '../../shaders/overlay.wgsl';
import { declareKernel, read, readWrite } from '../gpu/kernel.ts';
import { planeBilinear } from '../gpu/wgsl-library.ts';

export const OVERLAY = declareKernel({
  name: 'overlay',
  body: code,
  uniforms: {
    mapW: 'u32', mapH: 'u32', // upsample: the raw maps' size
    outW: 'u32', outH: 'u32', // the display size
    maps: 'u32', // upsample: bound on the map index; colorize: maps
    alpha: 'f32', // colorize: the blend's weight of the colormap
    first: 'u32', // upsample: the first output map (each layer's maps go after the previous layers')
    firstItem: 'u32', // upsample: the first raw map read (image n of a batch: n · K)
    pictureW: 'u32', pictureH: 'u32', // colorize: the picture's size (the display size unless SCALED)
    cropX: 'f32', cropY: 'f32', cropW: 'f32', cropH: 'f32', // the part of the picture the model saw, in display pixels (recipes.ts sourceRect)
  },
  bindings: {
    raw: read(),
    upsampledOut: readWrite(), // upsample's output
    upsampled: read(),
    rangesOut: readWrite('vec2<f32>'), // minmax's output: (min, max) per map
    ranges: read('vec2<f32>'),
    picture: read('u32'), // RGBA8 pixels
    overlay: readWrite('u32'), // RGBA8 overlays
  },
  entries: {
    upsample: ['raw', 'upsampledOut'],
    minmax: { bindings: ['upsampled', 'rangesOut'], workgroupSize: [64, 1, 1] },
    colorize: ['upsampled', 'ranges', 'picture', 'overlay'],
  },
  workgroupSize: [8, 8, 1],
  overrides: { SCALED: false },
  libraries: [planeBilinear('raw')],
});
