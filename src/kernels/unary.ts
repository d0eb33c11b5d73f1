/**
 * The interface of a kernel for an op y = f(x) whose backward reads the forward input,
 * dx (+)= g(x, dy) (LRN, Sigmoid, Clip): views of x, y, dy and dx (item i at i · stride + offset; the
 * backward reads x at image item / maskDiv), entry points `forward` (x → y) and `backward`
 * (x, dy → dx). A declaration spreads these after its own uniforms.
 */
import { read, readWrite } from '../gpu/kernel.ts';

export const UNARY_VIEWS = {
  xOffset: 'u32', xStride: 'u32', // the forward input (backward: read at image item / maskDiv)
  yOffset: 'u32', yStride: 'u32',
  dyOffset: 'u32', dyStride: 'u32',
  dxOffset: 'u32', dxStride: 'u32',
  maskDiv: 'u32',
} as const;

export const UNARY_BINDINGS = { x: read(), y: readWrite(), dy: read(), dx: readWrite() };

export const UNARY_ENTRIES = { forward: ['x', 'y'], backward: ['x', 'dy', 'dx'] } as const;
