/**
 * Gradients from the engine's backward pass, for tests: ∂y_c/∂T for any tensors T, y_c the class-c
 * score (logit, or probability with reduction 'softmax'), all classes in one backward pass.
 */
import type { Network } from '../../src/gradcam/network.ts';
import { GradcamProgram } from '../../src/gradcam/program.ts';
import type { Reduction } from '../../src/gradcam/types.ts';
import { perImage } from '../../src/graph/ir.ts';
import { encodeStage } from '../../src/runtime/program.ts';
import { ReadbackPlan, viewRegions } from '../../src/runtime/readback.ts';

/**
 * `classes`: K class indices (batch 1), or classes[n] = image n's K classes. Returns, per tensor in
 * `wrt`, one array per gradient item b = n·K + k: that item's gradient of the tensor (image n's slice).
 */
export async function gpuGradients(net: Network, input: { shape: number[]; data: Float32Array }, wrt: string[], classes: number[] | number[][],
  reduction: Reduction = 'logit', kernels?: string[]): Promise<Record<string, Float32Array[]>> {
  const byImage = (typeof classes[0] === 'number' ? [classes] : classes) as number[][];
  const engine = net.engine;
  const program = await GradcamProgram.create(engine, { layers: wrt, classesPerImage: byImage[0].length, reduction });
  kernels?.push(...program.backwardStage.map((d) => d.kernel));
  program.writeClasses(byImage.flat());
  engine.writeInput(input.data, input.shape);
  const plan = new ReadbackPlan(engine.gpu.device);
  for (const name of wrt) {
    const v = program.backward.featureGrads.get(name)!;
    plan.add(`grad:${name}`, viewRegions(v.buffer, v.offset, v.stride, perImage(engine.graph.tensors.get(name)!), program.items));
  }
  const encoder = engine.gpu.device.createCommandEncoder();
  engine.encodeForward(encoder);
  encodeStage(encoder, 'backward', program.backwardStage);
  plan.encode(encoder);
  engine.gpu.device.queue.submit([encoder.finish()]);
  const read = await plan.read();
  plan.destroy();
  const out: Record<string, Float32Array[]> = {};
  for (const name of wrt) {
    const per = perImage(engine.graph.tensors.get(name)!);
    const all = read.f32(`grad:${name}`);
    out[name] = Array.from({ length: program.items }, (_, b) => all.slice(b * per, (b + 1) * per));
  }
  return out;
}
