/**
 * MaxPool, AveragePool and GlobalAveragePool (an average over the whole plane), forward and
 * backward, in shaders/pool.wgsl. The max-pool backward first recomputes each window's arg-max from
 * the forward input (once per image, into an index buffer made at compile time), then gathers the
 * incoming gradient per input value.
 */
import code from '../../shaders/pool.wgsl';
import type { PoolOp } from '../graph/ir.ts';
import type { Dispatch } from '../gpu/dispatch.ts';
import { foldPlanes, Params } from '../gpu/dispatch.ts';
import type { BackwardArgs, ForwardArgs, OpKernel, OpShapes } from './types.ts';
import { chwOf, fmtShape } from './types.ts';

type View = { offset: number; stride: number };

/** A 64-invocation workgroup shape for planes of `w4` column blocks × `h` rows, and its grid. */
export function planeGrid(w4: number, h: number, planes: number, limit = 65535, what = 'pooling'): { wg: { WG_X: number; WG_Y: number; WG_Z: number; FOLD: boolean }; grid: [number, number, number] } {
  const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
  const x = Math.min(pow2(w4), 8);
  const y = Math.min(pow2(h), 64 / x);
  const z = 64 / (x * y);
  // Many planes (K classes × channels in the backward pass) may exceed the dispatch limit along z.
  const { grid, folded } = foldPlanes([Math.ceil(w4 / x), Math.ceil(h / y), Math.ceil(planes / z)], limit, what);
  return { wg: { WG_X: x, WG_Y: y, WG_Z: z, FOLD: folded }, grid };
}
const NONE: View = { offset: 0, stride: 0 };

export function poolKernel(op: PoolOp, shapes: OpShapes): OpKernel {
  const [c, inH, inW] = chwOf(shapes.inputs[0]);
  const [, outH, outW] = chwOf(shapes.output);
  const constants = (accumulate: boolean, wg: Record<string, number | boolean>) => ({
    KH: op.kh, KW: op.kw, SH: op.strideH, SW: op.strideW, MAX: op.kind === 'maxpool', COUNT_INCLUDE_PAD: op.countIncludePad, ACCUMULATE: accumulate, ...wg,
  });
  const params = (items: number, x: View, g: View, d: View, maskDiv: number) =>
    new Params().u32(c, inH, inW, outH, outW, items).i32(...op.pads).u32(x.offset, x.stride, g.offset, g.stride, d.offset, d.stride, maskDiv, 0, 0, 0);
  const meta = (kernel: string, items: number, flops: number) => ({
    kernel, label: op.name, opType: op.onnxTypes.join('+'), flops,
    shapes: `${fmtShape([items, c, inH, inW])} → ${fmtShape([items, c, outH, outW])} k${op.kh}×${op.kw}/${op.strideH}`,
  });
  const windowFlops = op.kh * op.kw;
  let indices: GPUBuffer | undefined;
  return {
    async forward({ env, inputs, output, batch }: ForwardArgs) {
      const { wg, grid } = planeGrid(Math.ceil(outW / 4), outH, batch * c, env.limits.maxComputeWorkgroupsPerDimension, `${op.name} (${op.kind}.forward)`);
      const pipeline = await env.pipeline(code, 'forward', constants(false, wg));
      const p = params(batch, inputs[0], output, NONE, 1);
      return [env.dispatch(pipeline, [env.uniform(p), inputs[0].buffer, output.buffer, null, null],
        grid, meta(`${op.kind}.forward`, batch, batch * c * outH * outW * windowFlops))];
    },
    async backward({ env, inputs, dy, dx, items, maskDiv }: BackwardArgs) {
      const t = dx[0];
      if (!t) return [];
      const out: Dispatch[] = [];
      const p = env.uniform(params(items, inputs[0], dy, t.view, maskDiv));
      const images = Math.ceil(items / maskDiv);
      if (op.kind === 'maxpool') {
        indices ??= env.scratch(images * c * outH * outW, `${op.name} arg-max`);
        const { wg, grid } = planeGrid(Math.ceil(outW / 4), outH, images * c, env.limits.maxComputeWorkgroupsPerDimension, `${op.name} (maxpool.argmax)`);
        const argmax = await env.pipeline(code, 'argmax', constants(false, wg));
        out.push(env.dispatch(argmax, [p, inputs[0].buffer, null, null, indices], grid,
          meta('maxpool.argmax', images, images * c * outH * outW * windowFlops)));
      }
      const { wg, grid } = planeGrid(Math.ceil(inW / 4), inH, items * c, env.limits.maxComputeWorkgroupsPerDimension, `${op.name} (${op.kind}.backward)`);
      const backward = await env.pipeline(code, 'backward', constants(t.accumulate, wg));
      out.push(env.dispatch(backward, [p, null, dy.buffer, t.view.buffer, indices ?? env.dummyWritable], grid,
        meta(`${op.kind}.backward`, items, items * c * inH * inW)));
      return out;
    },
  };
}
