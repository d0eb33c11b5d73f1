/**
 * OnnxModel → ONNX bytes, for the models the project generates itself (test models, the
 * known-answer model). Tensors are written as raw_data, little-endian, as the ONNX exporters do.
 * Unlike `decode`, every initializer is written once, and graph inputs list only real inputs.
 */
import onnxProto from 'onnx-proto';
import type { OnnxAttribute, OnnxModel, OnnxTensor, OnnxValueInfo } from './model.ts';

const { onnx } = onnxProto;

function encodeTensor(t: OnnxTensor): onnxProto.onnx.ITensorProto {
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return {
    name: t.name,
    dims: t.dims,
    dataType: t.dataType === 'float32' ? onnx.TensorProto.DataType.FLOAT : onnx.TensorProto.DataType.INT64,
    rawData: bytes.slice(),
  };
}

function encodeAttribute(name: string, a: OnnxAttribute): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case 'int': return { name, type: T.INT, i: a.value };
    case 'float': return { name, type: T.FLOAT, f: a.value };
    case 'ints': return { name, type: T.INTS, ints: a.value };
    case 'floats': return { name, type: T.FLOATS, floats: a.value };
    case 'string': return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
    case 'tensor': return { name, type: T.TENSOR, t: encodeTensor(a.value) };
  }
}

function encodeValueInfo(v: OnnxValueInfo): onnxProto.onnx.IValueInfoProto {
  const elemType = v.elemType === 'int64' ? onnx.TensorProto.DataType.INT64 : onnx.TensorProto.DataType.FLOAT;
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType,
        // An empty shape is written as "unknown" (no shape), not as a scalar.
        shape: v.shape.length === 0 ? undefined : { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : d === null ? {} : { dimParam: d })) },
      },
    },
  };
}

/** Encodes a model. `irVersion` defaults to 7 (readable by every ONNX Runtime since 1.6). */
export function encodeOnnx(model: OnnxModel): Uint8Array {
  const proto = onnx.ModelProto.create({
    irVersion: model.irVersion || 7,
    producerName: model.producerName || 'gradcam-webgpu',
    opsetImport: [{ domain: '', version: model.opset }],
    metadataProps: Object.entries(model.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: model.graphName || 'graph',
      node: model.nodes.map((n) => ({
        name: n.name,
        opType: n.opType,
        domain: n.domain || undefined,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attributes).map(([k, a]) => encodeAttribute(k, a)),
      })),
      initializer: [...model.initializers.values()].map(encodeTensor),
      input: model.inputs.map(encodeValueInfo),
      output: model.outputs.map(encodeValueInfo),
    },
  });
  return onnx.ModelProto.encode(proto).finish();
}
