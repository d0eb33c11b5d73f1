/** onnxruntime-node as the forward oracle: runs a model with any of its tensors exposed as outputs. */
import * as ort from 'onnxruntime-node';
import type { OnnxModel } from '../../src/onnx/model.ts';
import { encodeOnnx } from '../../src/onnx/write.ts';

/** A copy of the model whose graph outputs also list `names` (so ONNX Runtime can return them). */
export function withOutputs(model: OnnxModel, names: string[]): OnnxModel {
  const outputs = [...model.outputs];
  for (const n of names) if (!outputs.some((o) => o.name === n)) outputs.push({ name: n, elemType: 'float32', shape: [] });
  return { ...model, outputs };
}

export class OrtOracle {
  private constructor(private session: ort.InferenceSession, readonly inputName: string) {}

  static async create(model: OnnxModel, expose: string[] = []): Promise<OrtOracle> {
    const session = await ort.InferenceSession.create(encodeOnnx(withOutputs(model, expose)));
    return new OrtOracle(session, session.inputNames[0]);
  }

  async run(x: Float32Array, shape: number[], names: string[]): Promise<Record<string, Float32Array>> {
    const res = await this.session.run({ [this.inputName]: new ort.Tensor('float32', x, shape) }, names);
    return Object.fromEntries(names.map((n) => [n, res[n].data as Float32Array]));
  }
}
