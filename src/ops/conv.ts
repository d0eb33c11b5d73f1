/**
 * conv: Conv (any group, dilations, pads and auto_pad), and every Gemm and MatMul with a constant right operand as a 1×1 convolution over
 * [N, K, 1, 1] (alpha and beta folded into the weights). A Relu or a ReLU6 fuses into it; an affine right after
 * it (an unfolded BatchNormalization) is folded into its weights by graph/fuse.ts.
 *
 * Forward and data gradient (convKernel, below) run the variant chosen per layer and direction
 * (src/kernels/variants.ts: a plan, `variant`, else the fixed rules): the GEMM (gemm-blocked, or
 * gemm-tiled with split-K; one per group), Winograd F(2×2, 3×3), im2col, the direct grouped
 * kernel for depthwise and narrow groups, or (data gradient) the gather by stride phase; their machinery is
 * src/kernels/conv.ts, winograd.ts, depthwise.ts and conv-gather.ts, the WGSL shaders/conv.wgsl, conv_tiled.wgsl,
 * winograd.wgsl, im2col.wgsl, depthwise.wgsl, conv_gather.wgsl.
 */
import type { OpBase } from '../graph/ir.ts';
import { tensorElements } from '../graph/ir.ts';
import { windowCount } from '../graph/shapes.ts';
import type { Dispatch } from '../gpu/dispatch.ts';
import { chosenVariant, CONV, CONV_TILED, gemm, gemmRegisterBlocked, groupPadded, IM2COL, layoutWeights, pad16, POINTWISE, winograd } from '../kernels/conv.ts';
import { CONV_GATHER, convGather, gatherWeights } from '../kernels/conv-gather.ts';
import { convDirect, DEPTHWISE, directWeights } from '../kernels/depthwise.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from '../kernels/types.ts';
import { chwOf, fmtShape } from '../kernels/types.ts';
import { gradientPads, WINOGRAD, winogradWeights } from '../kernels/winograd.ts';
import { attrFloat, attrInt, attrInts } from '../onnx/model.ts';
import { flag, list, need4d, nodeInput, spatialAttrs } from './attributes.ts';
import { lowerMatMulLastAxis } from './matmul.ts';
import { defineOp, type LowerContext } from './spec.ts';

export interface ConvOp extends OpBase {
  kind: 'conv';
  /** Weights [C_out, C_in, KH, KW], with BatchNormalization and Gemm's alpha already folded in. */
  weight: Float32Array;
  /** Bias [C_out] (zeros when the model has none). */
  bias: Float32Array;
  cIn: number; cOut: number;
  kh: number; kw: number;
  strideH: number; strideW: number;
  /** [top, left, bottom, right]. */
  pads: [number, number, number, number];
  /** [along H, along W]: tap (ky, kx) reads row oy·strideH − top + ky·dilations[0]. */
  dilations: [number, number];
  /** ONNX group: input and output channels split into `group` groups, group g's outputs read group g's inputs only; weight is [C_out, C_in/group, KH, KW]. */
  group: number;
  relu: boolean;
  /** With relu: the fused activation is ReLU6 (a Clip(0, 6) after the conv, graph/fuse.ts), the output capped at 6 too. */
  relu6?: boolean;
}

function lowerConv(ctx: LowerContext): void {
  const { node } = ctx;
  const xName = nodeInput(ctx, 0, 'X');
  const x = need4d(ctx, xName);
  const wName = nodeInput(ctx, 1, 'W');
  // An activation as weights is refused; a name nobody defines is a missing initializer (weight() says so).
  if (!ctx.isConstant(wName) && ctx.hasActivation(wName)) ctx.fail(`weights '${wName}' must be an initializer, not an activation`);
  const w = ctx.weight(wName);
  if (w.dims.length !== 4) ctx.fail(`weights '${wName}' have shape ${list(w.dims)}; expected [C_out, C_in, KH, KW]`);
  const [cOut, cInW, kh, kw] = w.dims;
  const kernel = attrInts(node, 'kernel_shape', undefined);
  if (kernel && (kernel.length !== 2 || kernel[0] !== kh || kernel[1] !== kw)) {
    ctx.fail(`kernel_shape ${list(kernel)} does not match the ${kh}×${kw} kernel of weights '${wName}' ${list(w.dims)}`);
  }
  const group = attrInt(node, 'group', 1);
  if (group < 1) ctx.fail(`group = ${group}; expected ≥ 1`);
  if (cInW * group !== x[1]) {
    ctx.fail(group === 1 ? `weights '${wName}' expect ${cInW} input channels, but '${xName}' has ${x[1]}`
      : `weights '${wName}' expect ${cInW} input channels per group, ${cInW * group} for group = ${group}, but '${xName}' has ${x[1]}`);
  }
  if (cOut % group !== 0) ctx.fail(`weights '${wName}' have ${cOut} output channels, not a multiple of group = ${group}`);
  const { strides, pads, dilations } = spatialAttrs(ctx, x, [kh, kw], false);
  const bName = node.inputs[2];
  let bias = new Float32Array(cOut);
  if (bName) {
    const b = ctx.weight(bName, cOut);
    if (b.dims.length !== 1) ctx.fail(`bias '${bName}' has shape ${list(b.dims)}; expected [${cOut}]`);
    bias = b.data.slice();
  }
  const ho = windowCount(x[2], (kh - 1) * dilations[0] + 1, strides[0], pads[0], pads[2]);
  const wo = windowCount(x[3], (kw - 1) * dilations[1] + 1, strides[1], pads[1], pads[3]);
  const dilated = dilations.some((d) => d > 1) ? ` dilated by [${dilations}]` : '';
  if (ho <= 0 || wo <= 0) ctx.fail(`the ${kh}×${kw} kernel${dilated} does not fit the ${x[2]}×${x[3]} input (pads [${pads}])`);
  ctx.emit({
    kind: 'conv', name: node.name, onnxTypes: ['Conv'], inputs: [xName], output: node.outputs[0],
    weight: w.data.slice(), bias, cIn: x[1], cOut, kh, kw, strideH: strides[0], strideW: strides[1], pads, dilations, group, relu: false,
  }, [x[0], cOut, ho, wo]);
}

/** Gemm and MatMul with a constant right operand: a 1×1 convolution over [N, K, 1, 1]. */
function lowerDense(ctx: LowerContext, transA: boolean, transB: boolean, alpha: number, beta: number, biasName: string | undefined) {
  const { node } = ctx;
  const aName = nodeInput(ctx, 0, 'A');
  const a = ctx.shape(aName);
  if (a.length !== 2) ctx.fail(`input '${aName}' has shape [${a}]; expected a 2-D matrix (Flatten or Reshape it first)`);
  const bName = nodeInput(ctx, 1, 'B');
  if (!ctx.isConstant(bName) && ctx.hasActivation(bName)) ctx.fail(`the second operand '${bName}' must be an initializer (a weight matrix); products of two activations are not supported`);
  const b = ctx.weight(bName);
  if (b.dims.length !== 2) ctx.fail(`weights '${bName}' have shape ${list(b.dims)}; expected a matrix`);
  // The batch is axis 0 of every activation; A stored [K, N] (transA) would put it on axis 1.
  if (transA) ctx.fail(`transA = 1 on an activation is not supported (the batch must be the first axis of A)`);
  const [n, k] = a;
  const [bk, m] = transB ? [b.dims[1], b.dims[0]] : [b.dims[0], b.dims[1]];
  if (bk !== k) ctx.fail(`weights '${bName}' ${list(b.dims)}${transB ? ' (transB)' : ''} need ${bk} input features, but '${node.inputs[0]}' has ${k}`);
  // Weight as [C_out = M, C_in = K, 1, 1], alpha folded in.
  const weight = new Float32Array(m * k);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) weight[i * k + j] = alpha * (transB ? b.data[i * k + j] : b.data[j * m + i]);
  const bias = new Float32Array(m);
  if (biasName) {
    const c = ctx.weight(biasName);
    const cn = tensorElements(c.dims);
    const r = c.dims.length;
    // C broadcasts to [N, M] (ONNX: unidirectionally); the engine takes one bias per output: a scalar,
    // [M], [1, M] (or [1], [1, 1]).
    const ok = r <= 2 && (cn === m || cn === 1) && (r === 0 || c.dims[r - 1] === m || c.dims[r - 1] === 1) && (r < 2 || c.dims[0] === 1);
    if (!ok) ctx.fail(`bias '${biasName}' has shape ${list(c.dims)}; expected [${m}], [1, ${m}] or a scalar`);
    if (cn === m) for (let i = 0; i < m; i++) bias[i] = beta * c.data[i];
    else bias.fill(beta * c.data[0]);
  }
  ctx.emit({
    kind: 'conv', name: node.name, onnxTypes: [node.opType], inputs: [aName], output: node.outputs[0],
    weight, bias, cIn: k, cOut: m, kh: 1, kw: 1, strideH: 1, strideW: 1, pads: [0, 0, 0, 0], dilations: [1, 1], group: 1, relu: false,
  }, [n, m]);
}

/**
 * Forward and data gradient by the variant chosen per layer and direction (chosenVariant: Winograd,
 * im2col, the direct grouped kernel, or the GEMM, register-blocked or tiled, one GEMM per group).
 * The data gradient is the same machinery transposed (TRANSPOSED); the fused ReLU
 * masks the incoming gradient (and GUIDED, for guided backprop). Weights are laid out once per direction.
 */
function convKernel(op: ConvOp, shapes: OpShapes): OpKernel {
  const [, inH, inW] = chwOf(shapes.inputs[0]);
  const [, outH, outW] = chwOf(shapes.output);
  const g = op.group;
  const macsPerItem = (op.cOut * outH * outW * op.cIn * op.kh * op.kw) / g;
  // Made once per kernel, shared by every backward program compiled on the engine.
  let bwd: { weights: GPUBuffer; zeros: GPUBuffer } | undefined;

  /** im2col, then a pointwise GEMM over rows (ci, ky, kx): for few input channels on the CPU variant. */
  async function im2colGemm({ env, inputs, output, batch }: ForwardArgs): Promise<Dispatch[]> {
    const rows = op.cIn * op.kh * op.kw;
    const col = env.scratch(batch * rows * outH * outW, `${op.name} im2col`);
    const shape = fmtShape([batch, rows, outH * outW]);
    return [
      await IM2COL.dispatch(env, 'unfold', {
        overrides: { KH: op.kh, KW: op.kw, SH: op.strideH, SW: op.strideW, DH: op.dilations[0], DW: op.dilations[1] },
        uniforms: {
          channels: op.cIn, inH, inW, outH, outW, items: batch, padT: op.pads[0], padL: op.pads[1],
          xOffset: inputs[0].offset, xStride: inputs[0].stride,
        },
        buffers: { x: inputs[0].buffer, columns: col },
        workgroups: IM2COL.grid1d('unfold', batch * rows * outH * outW, env.limits.maxComputeWorkgroupsPerDimension),
        label: op.name, opType: op.onnxTypes.join('+'), flops: 0,
        shapes: `${fmtShape([batch, op.cIn, inH, inW])} → ${shape} k${op.kh}×${op.kw}/${op.strideH}`,
      }),
      ...await gemmRegisterBlocked(env, op, {
        window: POINTWISE, shapes: `${shape} → ${fmtShape([batch, op.cOut, outH, outW])}`,
        rows, inH: outH, inW: outW, cols: op.cOut, outH, outW, items: batch,
        input: { buffer: col, offset: 0, stride: rows * outH * outW }, output, mask: null, maskDiv: 1,
        relu: op.relu, accumulate: false, transposed: false, weights: env.storage(layoutWeights(op, false)), bias: env.storage(groupPadded(op.bias, 1)),
      }, 'im2col', 2 * macsPerItem * batch),
    ];
  }

  return {
    async forward(args: ForwardArgs) {
      const { env, inputs, output, batch } = args;
      const lowering = chosenVariant(env, op, 'forward');
      if (lowering === 'winograd') {
        return winograd(env, op, {
          rows: op.cIn, cols: op.cOut, inH, inW, outH, outW, items: batch, pads: op.pads, input: inputs[0], output, mask: null, maskDiv: 1,
          weights: env.storage(winogradWeights(op, pad16(op.cOut), false)), bias: env.storage(groupPadded(op.bias, 1)),
          zeros: env.storage(new Float32Array(pad16(op.cOut))), relu: op.relu, accumulate: false,
        }, 'forward');
      }
      if (lowering === 'im2col' && batch * op.cIn * op.kh * op.kw * outH * outW * 4 <= env.device.limits.maxStorageBufferBindingSize) {
        return im2colGemm(args);
      }
      if (lowering === 'direct') {
        return [await convDirect(env, op, {
          rows: op.cIn / g, cols: op.cOut / g, groups: g, inH, inW, outH, outW, items: batch, input: inputs[0], output, mask: null, maskDiv: 1,
          relu: op.relu, accumulate: false, transposed: false, weights: env.storage(directWeights(op, false)), bias: env.storage(op.bias),
        }, 'forward', 2 * macsPerItem * batch)];
      }
      return gemm(env, op, {
        window: op, groups: g, rows: op.cIn / g, inH, inW, cols: op.cOut / g, outH, outW, items: batch, input: inputs[0], output, mask: null, maskDiv: 1,
        relu: op.relu, accumulate: false, transposed: false, weights: env.storage(layoutWeights(op, false)), bias: env.storage(groupPadded(op.bias, g)),
      }, 'forward', 2 * macsPerItem * batch, lowering === 'gemm-tiled' ? 'gemm-tiled' : 'gemm-blocked');
    },
    async backward({ env, output, dy, dx, items, maskDiv, guided }: BackwardArgs) {
      const target = dx[0];
      if (!target) return [];
      const lowering = chosenVariant(env, op, 'backward');
      bwd ??= {
        weights: env.storage(lowering === 'winograd' ? winogradWeights(op, pad16(op.cIn), true)
          : lowering === 'direct' ? directWeights(op, true) : lowering === 'gather' ? gatherWeights(op) : layoutWeights(op, true)),
        zeros: env.storage(new Float32Array(g * pad16(op.cIn / g))),
      };
      const mask = op.relu ? output : null;
      if (lowering === 'winograd') {
        return winograd(env, op, {
          rows: op.cOut, cols: op.cIn, inH: outH, inW: outW, outH: inH, outW: inW, items, pads: gradientPads(op.pads),
          input: dy, output: target.view, mask, maskDiv, guided,
          weights: bwd.weights, bias: bwd.zeros, zeros: bwd.zeros, relu: false, accumulate: target.accumulate,
        }, 'backward');
      }
      if (lowering === 'gather') {
        return [await convGather(env, op, {
          dyH: outH, dyW: outW, dxH: inH, dxW: inW, items, dy, dx: target.view, mask, maskDiv, guided,
          accumulate: target.accumulate, weights: bwd.weights,
        }, 2 * macsPerItem * items)];
      }
      if (lowering === 'direct') {
        return [await convDirect(env, op, {
          rows: op.cOut / g, cols: op.cIn / g, groups: g, inH: outH, inW: outW, outH: inH, outW: inW, items, input: dy, output: target.view,
          mask, maskDiv, guided, relu: false, accumulate: target.accumulate, transposed: true, weights: bwd.weights, bias: bwd.zeros,
        }, 'backward', 2 * macsPerItem * items)];
      }
      return gemm(env, op, {
        window: op, groups: g, rows: op.cOut / g, inH: outH, inW: outW, cols: op.cIn / g, outH: inH, outW: inW, items, input: dy, output: target.view,
        mask, maskDiv, guided, relu: false, accumulate: target.accumulate, transposed: true,
        weights: bwd.weights, bias: bwd.zeros,
      }, 'backward', 2 * macsPerItem * items, lowering === 'gemm-tiled' ? 'gemm-tiled' : 'gemm-blocked');
    },
  };
}

export const conv = defineOp<ConvOp>({
  kind: 'conv',
  onnx: {
    Conv: { inputs: [2, 3], outputs: [1, 1], attributes: ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides'], lower: lowerConv },
    Gemm: {
      inputs: [2, 3], outputs: [1, 1], attributes: ['alpha', 'beta', 'broadcast', 'transA', 'transB'],
      lower: (ctx) => lowerDense(ctx, flag(ctx, 'transA'), flag(ctx, 'transB'),
        attrFloat(ctx.node, 'alpha', 1), attrFloat(ctx.node, 'beta', 1), ctx.node.inputs[2] || undefined),
    },
    // An activation of rank ≥ 3 times a matrix: over its last axis (src/ops/matmul.ts).
    MatMul: { inputs: [2, 2], outputs: [1, 1], attributes: [], lower: (ctx) => (ctx.shape(nodeInput(ctx, 0, 'A')).length > 2 ? lowerMatMulLastAxis(ctx) : lowerDense(ctx, false, false, 1, 0, undefined)) },
  },
  kernel: convKernel,
  fusesRelu: true,
  fusesRelu6: true,
  kernels: [CONV, CONV_TILED, IM2COL, WINOGRAD, DEPTHWISE, CONV_GATHER],
});
