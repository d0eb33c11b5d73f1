/**
 * A tiny helper to write an OnnxModel node by node, so that a generator reads like the network
 * definition. Names are checked as they are added (a repeated tensor name or an input nobody has
 * produced is a typo in the generator, caught here rather than by ONNX Runtime).
 */
import type { OnnxAttribute, OnnxModel, OnnxNode, OnnxTensor, OnnxValueInfo } from '../../src/onnx/model.ts';

// Typed attribute values: ONNX distinguishes an int 1 from a float 1.0 (LRN's bias must be a float).
export const int = (value: number): OnnxAttribute => ({ type: 'int', value });
export const float = (value: number): OnnxAttribute => ({ type: 'float', value });
export const ints = (...value: number[]): OnnxAttribute => ({ type: 'ints', value });

export class GraphBuilder {
  private readonly nodes: OnnxNode[] = [];
  private readonly initializers = new Map<string, OnnxTensor>();
  private readonly inputs: OnnxValueInfo[] = [];
  private readonly outputs: OnnxValueInfo[] = [];
  private readonly defined = new Set<string>();

  private define(name: string): string {
    if (this.defined.has(name)) throw new Error(`generator: tensor '${name}' defined twice`);
    this.defined.add(name);
    return name;
  }

  /** A float32 graph input. */
  input(name: string, shape: number[]): string {
    this.inputs.push({ name, elemType: 'float32', shape });
    return this.define(name);
  }

  /** Marks an existing tensor as a float32 graph output. */
  output(name: string, shape: number[]): void {
    if (!this.defined.has(name)) throw new Error(`generator: output '${name}' is never produced`);
    this.outputs.push({ name, elemType: 'float32', shape });
  }

  /** A float32 initializer (weight). */
  weight(name: string, dims: number[], data: Float32Array): string {
    if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`generator: '${name}' has ${data.length} values for dims [${dims}]`);
    this.initializers.set(this.define(name), { name, dims, dataType: 'float32', data });
    return name;
  }

  /** A 1-D int64 initializer (a shape). */
  int64(name: string, values: number[]): string {
    this.initializers.set(this.define(name), { name, dims: [values.length], dataType: 'int64', data: BigInt64Array.from(values.map(BigInt)) });
    return name;
  }

  /** Appends a node with one output; returns the output's name. */
  node(opType: string, name: string, inputs: string[], output: string, attributes: Record<string, OnnxAttribute> = {}): string {
    for (const i of inputs) if (!this.defined.has(i)) throw new Error(`generator: node '${name}' reads '${i}', which is not defined yet`);
    this.nodes.push({ name, opType, domain: '', inputs, outputs: [output], attributes });
    return this.define(output);
  }

  /** Appends a node with several outputs (Split); returns their names. */
  multiNode(opType: string, name: string, inputs: string[], outputs: string[], attributes: Record<string, OnnxAttribute> = {}): string[] {
    for (const i of inputs) if (!this.defined.has(i)) throw new Error(`generator: node '${name}' reads '${i}', which is not defined yet`);
    this.nodes.push({ name, opType, domain: '', inputs, outputs, attributes });
    return outputs.map((o) => this.define(o));
  }

  build(meta: { opset: number; irVersion: number; producerName: string; graphName: string }): OnnxModel {
    return { ...meta, inputs: this.inputs, outputs: this.outputs, initializers: this.initializers, nodes: this.nodes };
  }
}
