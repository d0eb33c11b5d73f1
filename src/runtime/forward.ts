/**
 * Compiles a Graph into a forward program: one GPU buffer per storage, each op's kernels, their
 * pipelines (compiled in parallel) and bind groups, all made once.
 */
import type { Graph, Op } from '../graph/ir.ts';
import type { BufferView, Dispatch, KernelEnv } from '../gpu/dispatch.ts';
import { GradcamError, InternalError } from '../errors.ts';
import type { OpKernel, OpShapes } from '../kernels/types.ts';
import { kernelFor } from '../ops/index.ts';

export interface CompiledForward {
  graph: Graph;
  env: KernelEnv;
  /** One buffer per storage (index = storage id), batch × perImage float32. */
  buffers: GPUBuffer[];
  /** Each op's kernel object (its backward is built from the same object later). */
  kernels: Map<Op, OpKernel>;
  dispatches: Dispatch[];
  /** Each op's own dispatches, in forward order (a forward from a layer runs some of them: src/gradcam/multipass.ts). */
  opDispatches: Map<Op, Dispatch[]>;
  /** The view of a tensor by ONNX name. */
  view(name: string): BufferView;
}

export function opShapes(graph: Graph, op: Op): OpShapes {
  const shape = (n: string) => {
    const t = graph.tensors.get(n);
    if (!t) throw new InternalError(`tensor '${n}' has no placement`);
    return t.shape;
  };
  return { inputs: op.inputs.map(shape), output: shape(op.output) };
}

export async function compileForward(env: KernelEnv, graph: Graph): Promise<CompiledForward> {
  const maxBinding = env.device.limits.maxStorageBufferBindingSize;
  const buffers = graph.storages.map((s) => {
    const bytes = s.perImage * graph.batch * 4;
    if (bytes > maxBinding) {
      throw new GradcamError(`tensor '${s.label}' needs ${(bytes / 2 ** 20).toFixed(1)} MiB, more than this GPU binds in one buffer (${(maxBinding / 2 ** 20).toFixed(0)} MiB)`,
        'Use a smaller batch or input size.');
    }
    return env.scratch(s.perImage * graph.batch, s.label);
  });
  const view = (name: string): BufferView => {
    const t = graph.tensors.get(name);
    if (!t) throw new GradcamError(`unknown tensor '${name}'`);
    const s = graph.storages[t.storage];
    return { buffer: buffers[t.storage], offset: t.offset, stride: s.perImage };
  };
  checkAliasing(graph);
  const kernels = new Map<Op, OpKernel>();
  const parts = await Promise.all(graph.ops.map((op) => {
    const k = kernelFor(op, opShapes(graph, op));
    kernels.set(op, k);
    return k.forward({ env, inputs: op.inputs.map(view), output: view(op.output), batch: graph.batch });
  }));
  const opDispatches = new Map(graph.ops.map((op, i) => [op, parts[i]]));
  return { graph, env, buffers, kernels, dispatches: parts.flat(), opDispatches, view };
}

/** WebGPU forbids binding one buffer as read-only and writable storage in one dispatch. */
function checkAliasing(graph: Graph): void {
  for (const op of graph.ops) {
    const out = graph.tensors.get(op.output)!.storage;
    for (const i of op.inputs) {
      if (graph.tensors.get(i)!.storage === out) {
        throw new GradcamError(`node '${op.name}': its input '${i}' and output '${op.output}' are slices of one concatenation, which is not supported`);
      }
    }
  }
}
