/**
 * Gradients from the engine's backward pass, for tests: ∂y_c/∂T for any tensors T, y_c the class-c
 * score (logit, or probability with reduction 'softmax'), all classes in one backward pass.
 */
import type { Network } from '../../src/gradcam/network.ts';
import { GradcamProgram, type Reduction } from '../../src/gradcam/program.ts';
import { encodeStage } from '../../src/runtime/program.ts';
import { Readback, viewRegions } from '../../src/runtime/readback.ts';

export async function gpuGradients(net: Network, input: { shape: number[]; data: Float32Array }, wrt: string[], classes: number[],
  reduction: Reduction = 'logit'): Promise<Record<string, Float32Array[]>> {
  const engine = net.engine;
  const program = await GradcamProgram.create(engine, { layers: wrt, classesPerImage: classes.length, reduction });
  program.writeClasses(classes);
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
    const per = regions.find((x) => x.name === name)!.per;
    const all = new Float32Array(per * program.items);
    let at = 0;
    regions.forEach((x, i) => {
      if (x.name !== name) return;
      all.set(new Float32Array(parts[i]), at);
      at += parts[i].byteLength / 4;
    });
    out[name] = classes.map((_, k) => all.slice(k * per, (k + 1) * per));
  }
  return out;
}
