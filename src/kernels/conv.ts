/**
 * Convolution (and Gemm/MatMul as 1×1 convolutions): forward and data gradient, both in
 * shaders/conv.wgsl. The weights are laid out once per direction, at compile time:
 *   forward  Wt[(ci·KH + ky)·KW + kx][co]   backward  Wt[(co·KH + ky)·KW + kx][ci]
 * with the column count padded to a multiple of 16 (the kernel's channel block).
 */
import code from '../../shaders/conv.wgsl';
import type { ConvOp } from '../graph/ir.ts';
import type { BufferView, Dispatch, KernelEnv } from '../gpu/dispatch.ts';
import { Params } from '../gpu/dispatch.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from './types.ts';
import { chwOf, fmtShape } from './types.ts';

const TN = 8; // positions per invocation
const TM = 16; // channels per invocation

const pad16 = (n: number) => Math.ceil(n / TM) * TM;

/** Wt[(r·KH + ky)·KW + kx][c] from W[co][ci][ky][kx]; forward: r = ci, c = co; backward: r = co, c = ci. */
export function layoutWeights(op: ConvOp, backward: boolean): Float32Array {
  const { cIn, cOut, kh, kw, weight } = op;
  const [rows, cols] = backward ? [cOut, cIn] : [cIn, cOut];
  const cols16 = pad16(cols);
  const out = new Float32Array(rows * kh * kw * cols16);
  for (let co = 0; co < cOut; co++) {
    for (let ci = 0; ci < cIn; ci++) {
      for (let k = 0; k < kh * kw; k++) {
        const v = weight[(co * cIn + ci) * kh * kw + k];
        const [r, c] = backward ? [co, ci] : [ci, co];
        out[(r * kh * kw + k) * cols16 + c] = v;
      }
    }
  }
  return out;
}

interface GemmCall {
  rows: number; inH: number; inW: number; cols: number; outH: number; outW: number; items: number;
  input: BufferView; output: BufferView; mask: BufferView | null; maskDiv: number;
  relu: boolean; accumulate: boolean; transposed: boolean;
  weights: GPUBuffer; bias: GPUBuffer;
}

function workgroupShape(posBlocks: number): [number, number] {
  // Enough invocations along positions when there are many; along channels for the few-position GEMMs.
  if (posBlocks >= 16) return [16, 4];
  if (posBlocks >= 4) return [4, 16];
  return [1, 64];
}

async function gemm(env: KernelEnv, op: ConvOp, c: GemmCall, kernel: string, flops: number): Promise<Dispatch> {
  const pointwise = op.kh === 1 && op.kw === 1 && op.strideH === 1 && op.strideW === 1 && op.pads.every((p) => p === 0);
  const posBlocks = Math.ceil((c.items * c.outH * c.outW) / TN);
  const colBlocks = pad16(c.cols) / TM;
  const [wgx, wgy] = workgroupShape(posBlocks);
  const pipeline = await env.pipeline(code, 'main', {
    KH: op.kh, KW: op.kw, SH: op.strideH, SW: op.strideW, POINTWISE: pointwise, TRANSPOSED: c.transposed,
    RELU: c.relu, MASK: c.mask !== null, ACCUMULATE: c.accumulate, WG_X: wgx, WG_Y: wgy,
  });
  const mask = c.mask ?? { buffer: env.dummy, offset: 0, stride: 0 };
  const params = new Params()
    .u32(c.rows, c.inH, c.inW, c.cols, c.outH, c.outW, c.items, pad16(c.cols) / 4)
    .i32(op.pads[0], op.pads[1])
    .u32(c.input.offset, c.input.stride, c.output.offset, c.output.stride, mask.offset, mask.stride, Math.max(1, c.maskDiv), 0, 0, 0);
  return env.dispatch(pipeline, [env.uniform(params), c.input.buffer, c.weights, c.bias, mask.buffer, c.output.buffer],
    [Math.ceil(posBlocks / wgx), Math.ceil(colBlocks / wgy), 1],
    { kernel, label: op.name, opType: op.onnxTypes.join('+'), flops, shapes: `${fmtShape([c.items, c.rows, c.inH, c.inW])} → ${fmtShape([c.items, c.cols, c.outH, c.outW])} k${op.kh}×${op.kw}/${op.strideH}` });
}

export function convKernel(op: ConvOp, shapes: OpShapes): OpKernel {
  const [, inH, inW] = chwOf(shapes.inputs[0]);
  const [, outH, outW] = chwOf(shapes.output);
  const macsPerItem = op.cOut * outH * outW * op.cIn * op.kh * op.kw;
  let fwd: { weights: GPUBuffer; bias: GPUBuffer } | undefined;
  let bwd: { weights: GPUBuffer; bias: GPUBuffer } | undefined;
  return {
    forward({ env, inputs, output, batch }: ForwardArgs) {
      if (!fwd) {
        const bias = new Float32Array(pad16(op.cOut));
        bias.set(op.bias);
        fwd = { weights: env.storage(layoutWeights(op, false)), bias: env.storage(bias) };
      }
      return gemm(env, op, {
        rows: op.cIn, inH, inW, cols: op.cOut, outH, outW, items: batch, input: inputs[0], output, mask: null, maskDiv: 1,
        relu: op.relu, accumulate: false, transposed: false, ...fwd,
      }, 'conv.forward', 2 * macsPerItem * batch).then((d) => [d]);
    },
    backward({ env, output, dy, dx, items, maskDiv }: BackwardArgs) {
      const target = dx[0];
      if (!target) return Promise.resolve([]);
      if (!bwd) bwd = { weights: env.storage(layoutWeights(op, true)), bias: env.storage(new Float32Array(pad16(op.cIn))) };
      return gemm(env, op, {
        rows: op.cOut, inH: outH, inW: outW, cols: op.cIn, outH: inH, outW: inW, items, input: dy, output: target.view,
        mask: op.relu ? output : null, maskDiv, relu: false, accumulate: target.accumulate, transposed: true, ...bwd,
      }, 'conv.backward', 2 * macsPerItem * items).then((d) => [d]);
    },
  };
}
