/**
 * Views: ONNX ops that lower to no op. Their output is their input seen with another shape (same
 * storage, same offset), an alias in the graph (Graph.aliases); the backward pass reads the
 * gradient of the root. Dropout is the identity at inference. Squeeze and Unsqueeze drop or insert
 * size-1 axes (never the batch axis 0).
 */
import { tensorElements } from '../graph/ir.ts';
import { attribute, attrInts } from '../onnx/model.ts';
import { axisAttr, flag, list, nodeInput } from './attributes.ts';
import type { LowerContext, OnnxLowering } from './spec.ts';

/**
 * Squeeze's and Unsqueeze's axes: an attribute before opset 13, a constant int64 input from 13 on;
 * normalised against `rank` when given (Unsqueeze normalises against its output's rank itself).
 */
function viewAxes(ctx: LowerContext, rank: number | undefined): number[] | undefined {
  const { node } = ctx;
  let axes: number[] | undefined;
  if (ctx.opset >= 13) {
    if (attribute(node, 'axes') !== undefined) ctx.fail(`the axes are input 1 from opset 13 on, not an attribute`);
    const name = node.inputs[1];
    if (name && !ctx.isConstant(name)) ctx.fail(`the axes '${name}' must be a constant (an int64 initializer)`);
    axes = name ? ctx.ints(name) : undefined;
  } else {
    if (node.inputs[1]) ctx.fail(`the axes are an attribute before opset 13, not input 1 ('${node.inputs[1]}')`);
    axes = attrInts(node, 'axes', undefined);
  }
  if (!axes || rank === undefined) return axes;
  const norm = axes.map((a) => {
    if (a < -rank || a >= rank) ctx.fail(`axis ${a} is out of range for a rank-${rank} input (expected ${-rank} … ${rank - 1})`);
    return a < 0 ? a + rank : a;
  });
  if (new Set(norm).size !== norm.length) ctx.fail(`axes ${list(axes)} name an axis twice`);
  return norm;
}

export const VIEWS: Readonly<Record<string, OnnxLowering>> = {
  Dropout: {
    inputs: [1, 3], outputs: [1, 2], attributes: ['consumed_inputs', 'is_test', 'ratio', 'seed'],
    lower: (ctx) => {
      const xName = nodeInput(ctx, 0, 'data');
      ctx.alias(ctx.node.outputs[0], xName, ctx.shape(xName));
    },
  },
  Identity: {
    inputs: [1, 1], outputs: [1, 1], attributes: [],
    lower: (ctx) => {
      const xName = nodeInput(ctx, 0, 'input');
      ctx.alias(ctx.node.outputs[0], xName, ctx.shape(xName));
    },
  },
  Flatten: {
    inputs: [1, 1], outputs: [1, 1], attributes: ['axis'],
    lower: (ctx) => {
      const xName = nodeInput(ctx, 0, 'input');
      const x = ctx.shape(xName);
      const axis = axisAttr(ctx, 1, x.length, 1);
      const shape = [tensorElements(x.slice(0, axis)), tensorElements(x.slice(axis))];
      if (shape[0] !== x[0]) ctx.fail(`flattening at axis ${axis} mixes the batch dimension into the features (only axis 1, or axis 0 with batch 1)`);
      ctx.alias(ctx.node.outputs[0], xName, shape);
    },
  },
  Squeeze: {
    inputs: [1, 2], outputs: [1, 1], attributes: ['axes'],
    lower: (ctx) => {
      const xName = nodeInput(ctx, 0, 'data');
      const x = ctx.shape(xName);
      const axes = viewAxes(ctx, x.length);
      // No axes: every size-1 axis but the batch (which the engine keeps, at any batch size).
      const drop = axes ?? x.map((_, i) => i).filter((i) => i > 0 && x[i] === 1);
      for (const a of drop) {
        if (a === 0) ctx.fail('squeezing the batch axis 0 is not supported');
        if (x[a] !== 1) ctx.fail(`axis ${a} of [${x}] has size ${x[a]}; only axes of size 1 can be squeezed`);
      }
      ctx.alias(ctx.node.outputs[0], xName, x.filter((_, i) => !drop.includes(i)));
    },
  },
  Unsqueeze: {
    inputs: [1, 2], outputs: [1, 1], attributes: ['axes'],
    lower: (ctx) => {
      const xName = nodeInput(ctx, 0, 'data');
      const x = ctx.shape(xName);
      const given = viewAxes(ctx, undefined);
      if (!given) return ctx.fail('the axes are required');
      const rank = x.length + given.length;
      const axes = given.map((a) => {
        if (a < -rank || a >= rank) ctx.fail(`axis ${a} is out of range for the rank-${rank} output`);
        return a < 0 ? a + rank : a;
      });
      if (new Set(axes).size !== axes.length) ctx.fail(`axes ${list(given)} name an axis twice`);
      if (axes.includes(0)) ctx.fail('inserting an axis before the batch (axis 0) is not supported');
      let k = 0;
      ctx.alias(ctx.node.outputs[0], xName, Array.from({ length: rank }, (_, i) => (axes.includes(i) ? 1 : x[k++])));
    },
  },
  Reshape: {
    inputs: [1, 2], outputs: [1, 1], attributes: ['allowzero', 'consumed_inputs', 'shape'],
    lower: (ctx) => {
      if (attribute(ctx.node, 'shape') !== undefined) ctx.fail(`the 'shape' attribute (Reshape-1, opset < 5) is not supported; give the shape as input 1`);
      const xName = nodeInput(ctx, 0, 'data');
      const x = ctx.shape(xName);
      const sName = nodeInput(ctx, 1, 'shape');
      if (!ctx.isConstant(sName)) ctx.fail(`the shape '${sName}' must be a constant (an int64 initializer)`);
      const req = ctx.ints(sName);
      const allowZero = flag(ctx, 'allowzero');
      req.forEach((d, i) => {
        if (d < -1) ctx.fail(`shape ${list(req)} has ${d} at position ${i}; expected -1, 0 or a positive size`);
        if (d === 0 && allowZero) ctx.fail(`shape ${list(req)} has a 0 at position ${i} with allowzero = 1: a tensor with no values`);
        if (d === 0 && i >= x.length) ctx.fail(`shape ${list(req)} copies dimension ${i} (a 0 there), which [${x}] does not have`);
      });
      const total = tensorElements(x);
      const shape = req.map((d, i) => (d === 0 ? x[i] : i === 0 && d === ctx.rebatchedFrom ? x[0] : d));
      const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      const minus = shape.filter((d) => d === -1).length;
      if (minus > 1) ctx.fail(`shape ${list(req)} has more than one -1`);
      if (minus === 1) shape[shape.indexOf(-1)] = total / known;
      if (tensorElements(shape) !== total || shape.some((d) => !Number.isInteger(d) || d <= 0)) {
        ctx.fail(`cannot reshape [${x}] (${total} values) to ${list(req)}`);
      }
      if (shape[0] !== x[0]) ctx.fail(`reshape [${x}] → ${list(shape)} changes the batch dimension, which is not supported`);
      ctx.alias(ctx.node.outputs[0], xName, shape);
    },
  },
};
