/**
 * Gradients from the engine's backward pass, for tests: ∂y_c/∂T for any tensors T, y_c the class-c
 * score (logit, or probability with reduction 'softmax'), all classes in one backward pass.
 */
import type { Network } from '../../src/gradcam/network.ts';
import { GradcamProgram, type Reduction } from '../../src/gradcam/program.ts';
import { encodeStage } from '../../src/runtime/program.ts';
import { Readback, viewRegions } from '../../src/runtime/readback.ts';

/**
 * `classes`: K class indices (batch 1), or classes[n] = image n's K classes. Returns, per tensor in
 * `wrt`, one array per gradient item b = n·K + k: that item's gradient of the tensor (image n's slice).
 */
export async function gpuGradients(net: Network, input: { shape: number[]; data: Float32Array }, wrt: string[], classes: number[] | number[][],
  reduction: Reduction = 'logit', kernels?: string[]): Promise<Record<string, Float32Array[]>> {
  const perImage = (typeof classes[0] === 'number' ? [classes] : classes) as number[][];
  const engine = net.engine;
  const program = await GradcamProgram.create(engine, { layers: wrt, classesPerImage: perImage[0].length, reduction });
  kernels?.push(...program.backwardStage.map((d) => d.kernel));
  program.writeClasses(perImage.flat());
  engine.writeInput(input.data, input.shape);
  const regions = wrt.flatMap((name) => {
    const v = program.backward.featureGrads.get(name)!;
    const per = engine.graph.tensors.get(name)!.shape.slice(1).reduce((a, b) => a * b, 1);
    return viewRegions(v.buffer, v.offset, v.stride, per, program.items).map((r) => ({ r, name, per }));
  });
  const rb = new Readback(engine.gpu.device, regions.map((x) => x.r));
  const encoder = engine.gpu.device.createCommandEncoder();
  engine.encodeForward(encoder);
  encodeStage(encoder, 'backward', program.backwardStage);
  rb.encode(encoder);
  engine.gpu.device.queue.submit([encoder.finish()]);
  const parts = await rb.read();
  rb.destroy();
  const out: Record<string, Float32Array[]> = {};
  for (const name of wrt) {
    const mine = regions.map((x, i) => ({ x, part: parts[i] })).filter((e) => e.x.name === name);
    const per = mine[0].x.per;
    const all = new Float32Array(per * program.items);
    let at = 0;
    for (const e of mine) {
      all.set(new Float32Array(e.part), at);
      at += e.part.byteLength / 4;
    }
    out[name] = Array.from({ length: program.items }, (_, b) => all.slice(b * per, (b + 1) * per));
  }
  return out;
}
