/**
 * Tiny hand-built ONNX models for the reference's own tests: plain OnnxModel objects that
 * `encodeOnnx` turns into bytes for onnxruntime, and that the reference runs directly.
 */
import type { OnnxAttribute, OnnxModel, OnnxNode, OnnxTensor } from '../../src/onnx/model.ts';
import { runReference } from './graph.ts';
import { zeros, type Tensor } from './tensor.ts';

export const int = (value: number): OnnxAttribute => ({ type: 'int', value });
export const float = (value: number): OnnxAttribute => ({ type: 'float', value });
export const ints = (value: number[]): OnnxAttribute => ({ type: 'ints', value });

/** A float32 initializer from a float64 tensor (whose values the caller made float32-exact). */
export function weight(name: string, t: Tensor): OnnxTensor {
  return { name, dims: t.shape, dataType: 'float32', data: Float32Array.from(t.data) };
}

export function int64(name: string, values: number[]): OnnxTensor {
  return { name, dims: [values.length], dataType: 'int64', data: BigInt64Array.from(values.map(BigInt)) };
}

export function node(opType: string, inputs: string[], outputs: string[], attributes: Record<string, OnnxAttribute> = {}): OnnxNode {
  return { name: `${opType}_${outputs[0]}`, opType, domain: '', inputs, outputs, attributes };
}

export interface ModelSpec {
  opset?: number;
  inputs: Record<string, number[]>;
  weights?: OnnxTensor[];
  nodes: OnnxNode[];
  outputs: string[];
}

/**
 * An OnnxModel; the outputs' declared shapes are taken from a reference run on zeros (shapes do not
 * depend on values), and onnxruntime checks them against its own shape inference.
 */
export function buildModel(spec: ModelSpec): OnnxModel {
  const model: OnnxModel = {
    irVersion: 7,
    opset: spec.opset ?? 13,
    producerName: 'reference-test',
    graphName: 'test',
    inputs: Object.entries(spec.inputs).map(([name, shape]) => ({ name, elemType: 'float32', shape })),
    outputs: [],
    initializers: new Map((spec.weights ?? []).map((w) => [w.name, w])),
    nodes: spec.nodes,
  };
  const zeroInputs = Object.fromEntries(Object.entries(spec.inputs).map(([name, shape]) => [name, zeros(shape)]));
  const values = runReference(model, zeroInputs, { keep: spec.outputs });
  model.outputs = spec.outputs.map((name) => ({ name, elemType: 'float32', shape: values[name].shape }));
  return model;
}
