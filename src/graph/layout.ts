/**
 * Where each tensor's spatial axes are: a tensor's shape says nothing of its layout ([N, 1, 1, C]
 * after a Transpose is channels-last; [N, g, C/g, H, W] inside a channel shuffle has H, W at axes
 * 3, 4), so the layout is followed through the ONNX graph from what ONNX defines:
 *   - the graph input and the outputs of ops that ONNX defines on NCHW (Conv, pools, LRN,
 *     BatchNormalization, Resize…) have H, W at axes 2, 3;
 *   - a Transpose moves the axes with its perm;
 *   - a view (Reshape, Flatten, Squeeze, Unsqueeze) keeps them when it keeps the dims around them:
 *     the dims from H to the end (a reshape of the axes before, as a channel shuffle does), or from
 *     the start to W (a reshape of the axes after, as channels-last code does);
 *   - any other op (element-wise, Concat, Split, Slice, Pad, LayerNormalization, MatMul on the last
 *     axis, a reduction with keepdims…) keeps the axes of its first input of the same rank whose
 *     axes are known.
 * Anything else is unknown. Grad-CAM reads a layer as [C, h·w] per image, so a feature layer must
 * have H, W at axes 2, 3 (NCHW): channels-last tensors are never candidates (their [N, H, W, C]
 * would be misread), and a tensor of unknown layout neither.
 */
import { attrInts, type OnnxNode } from '../onnx/model.ts';

/** [h, w]: the axes of a tensor's height and width. */
export type SpatialAxes = readonly [number, number];

const NCHW_OPS = new Set([
  'Conv', 'ConvTranspose', 'MaxPool', 'AveragePool', 'LpPool', 'GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool', 'LRN',
  'BatchNormalization', 'InstanceNormalization', 'Resize', 'Upsample', 'DepthToSpace', 'SpaceToDepth',
]);
const VIEWS = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze']);

const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** The spatial axes of a view's output, from its input's (undefined when the view mixes them with other axes). */
function throughView(input: readonly number[], [h, w]: SpatialAxes, output: readonly number[]): SpatialAxes | undefined {
  if (w !== h + 1) return undefined;
  const tail = input.slice(h);
  if (output.length > tail.length && same(output.slice(output.length - tail.length), tail)) {
    const at = output.length - tail.length;
    return [at, at + 1];
  }
  const head = input.slice(0, w + 1);
  if (output.length >= head.length && same(output.slice(0, head.length), head)) return [h, w];
  return undefined;
}

/**
 * The spatial axes of every activation whose layout is known (by ONNX name; `shapes` holds the
 * inferred shape of each activation, the graph input included). Linear in the number of nodes.
 */
export function spatialAxes(nodes: readonly OnnxNode[], shapes: ReadonlyMap<string, number[]>, input: string): Map<string, SpatialAxes> {
  const axes = new Map<string, SpatialAxes>();
  if (shapes.get(input)?.length === 4) axes.set(input, [2, 3]);
  for (const node of nodes) {
    const out = node.outputs[0];
    const outShape = out ? shapes.get(out) : undefined;
    if (!outShape) continue; // folded, or not computed
    let result: SpatialAxes | undefined;
    if (NCHW_OPS.has(node.opType)) {
      if (outShape.length === 4) result = [2, 3];
    } else if (node.opType === 'Transpose') {
      const from = axes.get(node.inputs[0]);
      const rank = outShape.length;
      const perm = attrInts(node, 'perm', undefined) ?? Array.from({ length: rank }, (_, k) => rank - 1 - k);
      if (from) {
        const [h, w] = [perm.indexOf(from[0]), perm.indexOf(from[1])];
        if (h >= 0 && w >= 0) result = [h, w];
      }
    } else if (VIEWS.has(node.opType)) {
      const x = node.inputs[0];
      const from = axes.get(x);
      const xShape = shapes.get(x);
      if (from && xShape) result = throughView(xShape, from, outShape);
    } else {
      const from = node.inputs.find((i) => i && axes.has(i) && shapes.get(i)?.length === outShape.length);
      if (from !== undefined) result = axes.get(from);
    }
    if (result) for (const o of node.outputs) if (o && shapes.get(o)?.length === outShape.length) axes.set(o, result);
  }
  return axes;
}

/** True when the tensor is NCHW with more than one spatial position: what Grad-CAM can explain. */
export function hasSpatialExtent(shape: readonly number[], at: SpatialAxes | undefined): boolean {
  return shape.length === 4 && at !== undefined && at[0] === 2 && at[1] === 3 && shape[2] * shape[3] > 1;
}
