/** The preprocessing kernels (shaders/preprocess.wgsl): resize rows, then columns and normalise. Used by src/image/preprocess.ts. */
import code from '../../shaders/preprocess.wgsl';
import { declareKernel, read, readWrite } from '../gpu/kernel.ts';

export const PREPROCESS = declareKernel({
  name: 'preprocess',
  body: code,
  uniforms: {
    srcW: 'u32', srcH: 'u32', // the picture
    dstW: 'u32', dstH: 'u32', // the model's input
    scaleX: 'f32', scaleY: 'f32', // source span / dstW, / dstH (the whole picture, or its centre crop)
    originX: 'f32', originY: 'f32', // where the span starts in the picture (0 when stretched)
    valueScale: 'f32',
    bgr: 'u32', // 1: the model takes BGR
    mean: 'vec4<f32>', invStd: 'vec4<f32>', // per channel (rgb), the 4th unused
    outOffset: 'u32', // the input tensor's offset in its buffer
    nhwc: 'u32', // 1: the model's input is NHWC, else NCHW
  },
  bindings: {
    pixels: read('u32'), // RGBA8
    resizedRowsOut: readWrite(), // rows: 3 × srcH × dstW
    resizedRows: read(),
    modelInput: readWrite(),
  },
  entries: { rows: ['pixels', 'resizedRowsOut'], cols: ['resizedRows', 'modelInput'] },
  workgroupSize: [8, 8, 1],
});
