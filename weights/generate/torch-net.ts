/**
 * Writing a torchvision-style network as `torch.onnx.export(model, x, input_names=['x'],
 * output_names=['logits'])` writes it (static shapes, so the shape arithmetic is already folded
 * into constant initializers), with seeded random weights that keep activations healthy. The
 * family generators (resnet.ts, mobilenet-v2.ts, ...) read like the torchvision module code.
 *
 * Names follow the exporter:
 *   - a module's scope is its qualified path, each level named by `_unqualified_variable_name`
 *     (numeric atoms keep their parent: `layer1.0.conv1` → `/layer1/layer1.0/conv1`);
 *   - a node is `<scope>/<OpType>` (`_1`, `_2`, … for the next ones of that type in the same scope),
 *     its output `<node>_output_0`; the graph output is `logits`;
 *   - parameters keep their module path (`layer1.0.conv1.weight`, `layer1.0.bn1.running_var`); a
 *     Linear on a 4-D tensor is a MatMul whose (transposed) weight is `onnx::MatMul_<n>`.
 * BatchNormalization stays a node (as an export with training=TrainingMode.PRESERVE keeps it; the
 * default eval export folds it into the Conv): the engine's own folding is then what is tested.
 *
 * Weight scales ("data-free LSUV", as in googlenet-torchvision.ts): every tensor's expected second
 * moment E[x²] is tracked for an input of rms `inputRms`, and each convolution's weights are drawn
 * so that its output has the rms its caller asks for. The gains of the non-linear ops are rough
 * (measured once with onnxruntime-node); they only need to keep a few dozen layers in range.
 */
import type { OnnxModel } from '../../src/onnx/model.ts';
import { GraphBuilder, float, int, ints } from './builder.ts';
import { Rng } from './random.ts';

/** A tensor of the graph: its name, static shape and expected E[x²]. */
export interface T {
  name: string;
  shape: number[];
  m2: number;
}

/** The size of a generated family model: `ci` is the small one the tests run, `full` torchvision's. */
export type Scale = 'ci' | 'full';

export interface ConvOptions {
  stride?: number;
  /** Symmetric padding, or [top, left, bottom, right]. */
  pad?: number | [number, number, number, number];
  group?: number;
  dilation?: number;
  bias?: boolean;
  /** The output rms the weights are drawn for (default CONV_RMS: far from 1, so BN's statistics matter). */
  rms?: number;
}

/** Every convolution's output rms before BatchNormalization (running_var ≈ CONV_RMS²: far from identity). */
export const CONV_RMS = 4;
/** The net per-channel shift BN adds, relative to its unit-scale output (larger offsets make deep features input-independent). */
const BN_OFFSET_STD = 0.2;
/** The logits' standard deviation across the classes. */
const LOGIT_STD = 3;

const out = (node: string) => `${node}_output_0`;

/** The exporter's scope for a module path: `features.1.conv.0.0` → `/features/features.1/conv/conv.0/conv.0.0`. */
export function scopeOf(path: string): string {
  if (path === '') return '';
  const atoms = path.split('.');
  const levels: string[] = [];
  for (let i = 0; i < atoms.length; i++) {
    // _unqualified_variable_name: from the last non-numeric atom of the prefix up to atom i.
    let j = i;
    while (j > 0 && /^\d+$/.test(atoms[j]!)) j--;
    levels.push(atoms.slice(j, i + 1).join('.'));
  }
  return `/${levels.join('/')}`;
}

export class TorchNet {
  readonly g = new GraphBuilder();
  readonly rng: Rng;
  private readonly used = new Set<string>();
  private readonly calls = new Map<string, number>();
  private matmuls = 0;
  private constants = 0;

  constructor(seed: number) {
    this.rng = new Rng(seed);
  }

  /** `<scope>/<OpType>`, or `<scope>/<OpType>_k` for the (k+1)-th of that type in that scope. */
  private nodeName(path: string, opType: string): string {
    const base = `${scopeOf(path)}/${opType}`;
    let name = base;
    for (let k = 1; this.used.has(name); k++) name = `${base}_${k}`;
    this.used.add(name);
    return name;
  }

  /**
   * The scope path of a call of the module at `path`: a module called again in one forward (a
   * block's `relu`) is `relu_1`, `relu_2`, … in the exporter's scopes.
   */
  private call(path: string): string {
    const k = this.calls.get(path) ?? 0;
    this.calls.set(path, k + 1);
    return k === 0 ? path : `${path}_${k}`;
  }

  /** One node at module `path` (functional ops: the module whose forward calls them). */
  op(path: string, opType: string, inputs: string[], shape: number[], m2: number, attributes: Parameters<GraphBuilder['node']>[4] = {}, output?: string): T {
    const node = this.nodeName(path, opType);
    return { name: this.g.node(opType, node, inputs, output ?? out(node), attributes), shape, m2 };
  }

  input(shape: number[], rms: number): T {
    return { name: this.g.input('x', shape), shape, m2: rms * rms };
  }

  /** A float constant as the exporter leaves it after folding (`onnx::<Op>_<n>`). */
  constant(op: string, dims: number[], data: Float32Array | number[]): string {
    return this.g.weight(`onnx::${op}_${++this.constants}`, dims, Float32Array.from(data));
  }

  /** nn.Conv2d at `path` (weights `<path>.weight`, `<path>.bias`). */
  conv(path: string, x: T, cout: number, kernel: number | [number, number], o: ConvOptions = {}): T {
    const [kh, kw] = typeof kernel === 'number' ? [kernel, kernel] : kernel;
    const [, cin, h, w] = x.shape as [number, number, number, number];
    const stride = o.stride ?? 1, group = o.group ?? 1, dil = o.dilation ?? 1;
    const p = o.pad ?? 0;
    const pads = typeof p === 'number' ? [p, p, p, p] : p;
    if (cin % group !== 0 || cout % group !== 0) throw new Error(`generator: ${path}: ${cin} → ${cout} channels in ${group} groups`);
    const fanIn = (cin / group) * kh * kw;
    const std = (o.rms ?? CONV_RMS) / Math.sqrt(fanIn * x.m2);
    const inputs = [x.name, this.g.weight(`${path}.weight`, [cout, cin / group, kh, kw], this.rng.normals(cout * fanIn, 0, std))];
    if (o.bias) inputs.push(this.g.weight(`${path}.bias`, [cout], this.rng.normals(cout, 0, 0.05 * (o.rms ?? CONV_RMS))));
    const oh = Math.floor((h + pads[0]! + pads[2]! - dil * (kh - 1) - 1) / stride) + 1;
    const ow = Math.floor((w + pads[1]! + pads[3]! - dil * (kw - 1) - 1) / stride) + 1;
    return this.op(path, 'Conv', inputs, [x.shape[0]!, cout, oh, ow], (o.rms ?? CONV_RMS) ** 2, {
      dilations: ints(dil, dil), group: int(group), kernel_shape: ints(kh, kw), pads: ints(...pads), strides: ints(stride, stride),
    });
  }

  /**
   * nn.BatchNorm2d at `path`, statistics far from identity: running_var ≈ E[x²]·[0.5, 2], running
   * means of half the rms, γ in [0.5, 1.5]·gain, β = offset + γμ/√var (so the output is
   * gain·(a unit-scale signal) + a small shift). `gain` > 1 pushes values past a Clip's 6 or a
   * HardSigmoid's ±3.
   */
  bn(path: string, x: T, eps = 1e-5, gain = 1): T {
    const n = x.shape[1]!;
    const rms = Math.sqrt(x.m2);
    const gamma = this.rng.uniforms(n, 0.5 * gain, 1.5 * gain);
    const mean = this.rng.normals(n, 0, 0.5 * rms);
    const variance = new Float32Array(n).map(() => x.m2 * 2 ** this.rng.uniform(-1, 1));
    const offset = this.rng.normals(n, 0, BN_OFFSET_STD * gain);
    const beta = offset.map((v, c) => v + (gamma[c]! * mean[c]!) / Math.sqrt(variance[c]! + eps));
    let e = 0;
    for (let c = 0; c < n; c++) e += (gamma[c]! ** 2 * x.m2) / variance[c]! + offset[c]! ** 2;
    return this.op(path, 'BatchNormalization', [
      x.name, this.g.weight(`${path}.weight`, [n], gamma), this.g.weight(`${path}.bias`, [n], beta),
      this.g.weight(`${path}.running_mean`, [n], mean), this.g.weight(`${path}.running_var`, [n], variance),
    ], x.shape, e / n, { epsilon: float(eps), momentum: float(0.9) });
  }

  relu(path: string, x: T): T {
    return this.op(this.call(path), 'Relu', [x.name], x.shape, x.m2 / 2);
  }

  /** nn.ReLU6: Clip with min 0 and max 6 as constant inputs (opset ≥ 11). */
  relu6(path: string, x: T): T {
    return this.op(this.call(path), 'Clip', [x.name, this.constant('Clip', [], [0]), this.constant('Clip', [], [6])], x.shape, Math.min(x.m2 / 2, 12));
  }

  hardswish(path: string, x: T): T {
    return this.op(this.call(path), 'HardSwish', [x.name], x.shape, 0.4 * x.m2);
  }

  /** nn.Hardsigmoid: relu6(x + 3)/6, which the exporter writes as HardSigmoid(α = 1/6, β = 0.5). */
  hardsigmoid(path: string, x: T): T {
    return this.op(this.call(path), 'HardSigmoid', [x.name], x.shape, 0.35, { alpha: float(1 / 6), beta: float(0.5) });
  }

  sigmoid(path: string, x: T): T {
    return this.op(this.call(path), 'Sigmoid', [x.name], x.shape, 0.35);
  }

  /** nn.SiLU as the exporter writes it (opset < 20): Sigmoid, then Mul with the input. */
  silu(module: string, x: T): T {
    const path = this.call(module);
    const s = this.op(path, 'Sigmoid', [x.name], x.shape, 0.35);
    return this.op(path, 'Mul', [x.name, s.name], x.shape, 0.35 * x.m2);
  }

  /** nn.GELU (exact) as the exporter writes it before opset 20: x · (erf(x/√2) + 1) · 0.5. */
  gelu(module: string, x: T): T {
    const path = this.call(module);
    const d = this.op(path, 'Div', [x.name, this.constant('Div', [], [Math.SQRT2])], x.shape, x.m2 / 2);
    const e = this.op(path, 'Erf', [d.name], x.shape, 0.5);
    const a = this.op(path, 'Add', [e.name, this.constant('Add', [], [1])], x.shape, 1.5);
    const m = this.op(path, 'Mul', [x.name, a.name], x.shape, x.m2);
    return this.op(path, 'Mul', [m.name, this.constant('Mul', [], [0.5])], x.shape, 0.45 * x.m2);
  }

  add(path: string, a: T, b: T): T {
    return this.op(path, 'Add', [a.name, b.name], a.shape, a.m2 + b.m2);
  }

  /** A product with broadcasting (the squeeze-and-excite gate [N, C, 1, 1] × [N, C, H, W], a layer scale). */
  mul(path: string, a: T, b: T, shape = a.shape): T {
    return this.op(path, 'Mul', [a.name, b.name], shape, a.m2 * b.m2);
  }

  /** A parameter tensor (not a module's weight: ConvNeXt's layer_scale) as a graph tensor. */
  parameter(name: string, dims: number[], data: Float32Array): T {
    let m2 = 0;
    for (const v of data) m2 += v * v;
    return { name: this.g.weight(name, dims, data), shape: dims, m2: m2 / data.length };
  }

  concat(path: string, xs: T[], axis = 1): T {
    const shape = [...xs[0]!.shape];
    shape[axis] = xs.reduce((s, x) => s + x.shape[axis]!, 0);
    const m2 = xs.reduce((s, x) => s + x.m2 * x.shape[axis]!, 0) / shape[axis]!;
    return this.op(path, 'Concat', xs.map((x) => x.name), shape, m2, { axis: int(axis) });
  }

  /** torch.chunk / split on `axis` (opset 13–17: the sizes are an int64 input); one tensor per part. */
  split(path: string, x: T, sizes: number[], axis = 1): T[] {
    const node = this.nodeName(path, 'Split');
    const outputs = sizes.map((_, i) => `${node}_output_${i}`);
    this.g.multiNode('Split', node, [x.name, this.g.int64(`onnx::Split_${++this.constants}`, sizes)], outputs, { axis: int(axis) });
    return outputs.map((name, i) => ({ name, shape: x.shape.map((d, k) => (k === axis ? sizes[i]! : d)), m2: x.m2 }));
  }

  reshape(path: string, x: T, shape: number[]): T {
    return this.op(path, 'Reshape', [x.name, this.g.int64(`onnx::Reshape_${++this.constants}`, shape)], shape, x.m2);
  }

  transpose(path: string, x: T, perm: number[]): T {
    return this.op(path, 'Transpose', [x.name], perm.map((p) => x.shape[p]!), x.m2, { perm: ints(...perm) });
  }

  /** nn.MaxPool2d(k, stride, pad, ceil_mode). */
  maxPool(path: string, x: T, k: number, stride: number, pad = 0, ceil = false): T {
    const [n, c, h, w] = x.shape as [number, number, number, number];
    const size = (s: number) => (ceil ? Math.ceil : Math.floor)((s + 2 * pad - k) / stride) + 1;
    return this.op(path, 'MaxPool', [x.name], [n, c, size(h), size(w)], x.m2 * 1.6, {
      ceil_mode: int(ceil ? 1 : 0), kernel_shape: ints(k, k), pads: ints(pad, pad, pad, pad), strides: ints(stride, stride),
    });
  }

  /**
   * nn.AvgPool2d / F.avg_pool2d with PyTorch's default count_include_pad=True, as the exporter
   * writes it (opset ≥ 10): a constant Pad of the padding (all zeros when there is none), then an
   * AveragePool without pads.
   */
  avgPool(path: string, x: T, k: number, stride: number, pad = 0): T {
    const [n, c, h, w] = x.shape as [number, number, number, number];
    const pads = this.g.int64(`onnx::Pad_${++this.constants}`, [0, 0, pad, pad, 0, 0, pad, pad]);
    const padded = this.op(path, 'Pad', [x.name, pads], [n, c, h + 2 * pad, w + 2 * pad], x.m2, { mode: { type: 'string', value: 'constant' } });
    const size = (s: number) => Math.floor((s + 2 * pad - k) / stride) + 1;
    return this.op(path, 'AveragePool', [padded.name], [n, c, size(h), size(w)], x.m2 * 0.7, {
      ceil_mode: int(0), kernel_shape: ints(k, k), pads: ints(0, 0, 0, 0), strides: ints(stride, stride),
    });
  }

  /** adaptive_avg_pool2d to the size the tensor already has (VGG's avgpool at its own size): AveragePool 1×1. */
  adaptiveIdentity(path: string, x: T): T {
    return this.op(path, 'AveragePool', [x.name], x.shape, x.m2, { ceil_mode: int(0), kernel_shape: ints(1, 1), pads: ints(0, 0, 0, 0), strides: ints(1, 1) });
  }

  /** nn.AdaptiveAvgPool2d(1) / F.adaptive_avg_pool2d(x, 1). */
  gap(path: string, x: T): T {
    return this.op(path, 'GlobalAveragePool', [x.name], [x.shape[0]!, x.shape[1]!, 1, 1], x.m2 * 0.6);
  }

  /** x.mean([2, 3]) (ShuffleNetV2): ReduceMean with axes as an attribute (opset < 18). */
  reduceMean(path: string, x: T, axes: number[], keepdims: boolean): T {
    const shape = keepdims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
    return this.op(path, 'ReduceMean', [x.name], shape, x.m2 * 0.6, { axes: ints(...axes), keepdims: int(keepdims ? 1 : 0) });
  }

  flatten(path: string, x: T, output?: string): T {
    return this.op(path, 'Flatten', [x.name], [x.shape[0]!, prodOf(x.shape.slice(1))], x.m2, { axis: int(1) }, output);
  }

  /** nn.Linear on a 2-D tensor: Gemm(transB = 1) with `<path>.weight`, `<path>.bias`; output rms `rms` (default: the logits' std). */
  linear(path: string, x: T, cout: number, rms = LOGIT_STD, output?: string): T {
    const cin = x.shape[1]!;
    const w = this.g.weight(`${path}.weight`, [cout, cin], this.rng.normals(cout * cin, 0, rms / Math.sqrt(cin * x.m2)));
    const b = this.g.weight(`${path}.bias`, [cout], this.rng.normals(cout, 0, 0.1 * rms));
    return this.op(path, 'Gemm', [x.name, w, b], [x.shape[0]!, cout], rms * rms, { alpha: float(1), beta: float(1), transB: int(1) }, output);
  }

  /** nn.Linear on the last axis of a 4-D tensor: MatMul with the transposed weight, then Add of the bias. */
  linearLastAxis(path: string, x: T, cout: number, rms = 1): T {
    const cin = x.shape.at(-1)!;
    const wName = this.g.weight(`onnx::MatMul_${++this.matmuls}`, [cin, cout], this.rng.normals(cin * cout, 0, rms / Math.sqrt(cin * x.m2)));
    const shape = [...x.shape.slice(0, -1), cout];
    const y = this.op(path, 'MatMul', [x.name, wName], shape, rms * rms);
    const bias = this.g.weight(`${path}.bias`, [cout], this.rng.normals(cout, 0, 0.05 * rms));
    return this.op(path, 'Add', [bias, y.name], shape, rms * rms);
  }

  /** nn.LayerNorm over the last axis (LayerNormalization, opset ≥ 17), γ in [0.5, 1.5], β ~ N(0, 0.2). */
  layerNorm(path: string, x: T, eps = 1e-6): T {
    const n = x.shape.at(-1)!;
    const gamma = this.rng.uniforms(n, 0.5, 1.5);
    const beta = this.rng.normals(n, 0, 0.2);
    return this.op(path, 'LayerNormalization', [x.name, this.g.weight(`${path}.weight`, [n], gamma), this.g.weight(`${path}.bias`, [n], beta)],
      x.shape, 1.1, { axis: int(-1), epsilon: float(eps) });
  }

  /** The classifier's output becomes the graph output `logits`. */
  build(logits: T, opset: number, producer: string): OnnxModel {
    this.g.output(logits.name, logits.shape);
    return this.g.build({ opset, irVersion: 8, producerName: `gradcam-webgpu (${producer})`, graphName: 'main_graph' });
  }
}

function prodOf(s: number[]): number {
  return s.reduce((a, b) => a * b, 1);
}
