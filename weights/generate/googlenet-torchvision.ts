/**
 * torchvision's GoogLeNet (`torchvision.models.googlenet(aux_logits=False, transform_input=False)`)
 * in the layout `torch.onnx.export(model, x, opset_version=13, input_names=['x'],
 * output_names=['logits'])` writes when it keeps BatchNormalization as a node (its default
 * eval-mode export folds BN into the Conv weights instead; keeping it here makes the engine's own
 * BN folding do the work, and be tested): each BasicConv2d is Conv (no bias) → BatchNormalization
 * (eps 1e-3) → Relu, max-pools carry `ceil_mode=1`, the "5x5" branch is a 3×3 convolution,
 * maxpool4 is 2×2, no LRN, then GlobalAveragePool → Flatten → Gemm (eval-mode Dropout is not
 * exported). Tensor and weight names follow the exporter (`/inception3a/branch2/branch2.0/conv/Conv_output_0`,
 * `inception3a.branch2.0.bn.running_var`). Weights are seeded and random.
 *
 * BatchNormalization statistics are deliberately far from identity (conv outputs of rms 4, so
 * running_var ≈ 16·[0.5, 2], running means of a few units, scales and shifts spread around 1 and
 * 0): a lowering that dropped or misapplied any of the four BN tensors changes the output a lot.
 * As in googlenet-zoo.ts, the generator tracks each tensor's expected E[x²] for an input of rms
 * TORCHVISION_INPUT_RMS and scales every convolution to output rms CONV_RMS, so activations stay healthy.
 */
import type { OnnxModel } from '../../src/onnx/model.ts';
import { GraphBuilder, float, int, ints } from './builder.ts';
import { Rng } from './random.ts';

/** The input scale the weights are designed for (the tests feed 0–255-minus-means images and 50·N(0,1)). */
export const TORCHVISION_INPUT_RMS = 60;
/** Every convolution's output rms before BatchNormalization (so running_var ≈ CONV_RMS², far from 1). */
const CONV_RMS = 4;
/** The logits' standard deviation across the 1000 classes. */
const LOGIT_STD = 3;
/** E[x²] gains of the ops that are not analytic, measured with ONNX Runtime on the test inputs. */
const MAXPOOL3_GAIN = 1.6; // a 3×3 max over ReLU outputs
const MAXPOOL2_GAIN = 1.3; // a 2×2 max
const AVGPOOL_GAIN = 0.85; // the global mean of deep ReLU outputs: their energy is mostly in the channel means
/** BatchNormalization's ε, as torchvision's BasicConv2d has it. */
const BN_EPS = 1e-3;
/** The net per-channel shift γ·(−μ)/√var + β that BN adds, relative to its unit-scale output. */
const BN_OFFSET_STD = 0.2;

/** Channels of one inception block: branch1 1x1, branch2 1x1 → 3x3, branch3 1x1 → "5x5" (3x3), branch4 pool → 1x1. */
type Inception = [c1: number, c3r: number, c3: number, c5r: number, c5: number, cp: number];
const INCEPTION: Record<string, Inception> = {
  '3a': [64, 96, 128, 16, 32, 32],
  '3b': [128, 128, 192, 32, 96, 64],
  '4a': [192, 96, 208, 16, 48, 64],
  '4b': [160, 112, 224, 24, 64, 64],
  '4c': [128, 128, 256, 24, 64, 64],
  '4d': [112, 144, 288, 32, 64, 64],
  '4e': [256, 160, 320, 32, 128, 128],
  '5a': [256, 160, 320, 32, 128, 128],
  '5b': [384, 192, 384, 48, 128, 128],
};

export function googlenetTorchvision(seed = 2): OnnxModel {
  const rng = new Rng(seed);
  const g = new GraphBuilder();
  const m2 = new Map<string, number>(); // expected E[x²] of each tensor
  const sq = (x: string): number => m2.get(x)!;

  /** BasicConv2d at module path `path` ('inception3a/branch2/branch2.0'): Conv → BatchNormalization → Relu. */
  function basicConv(path: string, x: string, cin: number, cout: number, k: number, stride = 1, pad = 0): string {
    const p = `/${path}`;
    // The exporter's scope repeats a Sequential's name ('branch2/branch2.0'); the module path does not.
    const w = path.replaceAll('/', '.').replace(/\.(branch\d)\.\1\./, '.$1.'); // 'inception3a.branch2.0'
    const n = cout;
    const std = CONV_RMS / Math.sqrt(cin * k * k * sq(x));
    const weight = g.weight(`${w}.conv.weight`, [cout, cin, k, k], rng.normals(cout * cin * k * k, 0, std));
    const y = g.node('Conv', `${p}/conv/Conv`, [x, weight], `${p}/conv/Conv_output_0`, {
      dilations: ints(1, 1), group: int(1), kernel_shape: ints(k, k), pads: ints(pad, pad, pad, pad), strides: ints(stride, stride),
    });
    // BN(x) = γ·(x − μ)/√(var + ε) + β = γ/√(var + ε)·x + offset. μ, var, γ and β are each far
    // from identity, but β is drawn as offset + γμ/√(var + ε) with a small offset: random offsets
    // of order 1 swamp the signal after a few layers and make deep features the same for every
    // input (measured: with offsets of std 0.5, inception5b outputs for white noise and for a
    // smooth pattern differ by 1–7% rms; with 0.2, by 27–35%).
    const gamma = rng.uniforms(n, 0.5, 1.5);
    const mean = rng.normals(n, 0, 0.5 * CONV_RMS);
    const variance = new Float32Array(n).map(() => CONV_RMS ** 2 * 2 ** rng.uniform(-1, 1)); // log-uniform in [0.5, 2]·CONV_RMS²
    const offset = rng.normals(n, 0, BN_OFFSET_STD);
    const beta = offset.map((o, c) => o + (gamma[c]! * mean[c]!) / Math.sqrt(variance[c]! + BN_EPS));
    const bn = g.node('BatchNormalization', `${p}/bn/BatchNormalization`, [
      y, g.weight(`${w}.bn.weight`, [n], gamma), g.weight(`${w}.bn.bias`, [n], beta),
      g.weight(`${w}.bn.running_mean`, [n], mean), g.weight(`${w}.bn.running_var`, [n], variance),
    ], `${p}/bn/BatchNormalization_output_0`, { epsilon: float(BN_EPS), momentum: float(0.9) });
    // E[BN(x)²] per channel ≈ γ²·E[x²]/var + offset² (x's own channel mean is random, so left out); ReLU halves it.
    let e = 0;
    for (let c = 0; c < n; c++) e += (gamma[c]! ** 2 * CONV_RMS ** 2) / variance[c]! + offset[c]! ** 2;
    const r = g.node('Relu', `${p}/Relu`, [bn], `${p}/Relu_output_0`);
    m2.set(r, e / n / 2);
    return r;
  }

  /** nn.MaxPool2d(k, stride, pad, ceil_mode=True) at module path `path`. */
  function maxPool(path: string, x: string, k: number, stride: number, pad = 0): string {
    const y = g.node('MaxPool', `/${path}/MaxPool`, [x], `/${path}/MaxPool_output_0`, {
      ceil_mode: int(1), kernel_shape: ints(k, k), pads: ints(pad, pad, pad, pad), strides: ints(stride, stride),
    });
    m2.set(y, sq(x) * (k === 2 ? MAXPOOL2_GAIN : MAXPOOL3_GAIN));
    return y;
  }

  function inception(block: string, x: string, cin: number): [string, number] {
    const [c1, c3r, c3, c5r, c5, cp] = INCEPTION[block]!;
    const p = `inception${block}`;
    const b1 = basicConv(`${p}/branch1`, x, cin, c1, 1);
    const b2 = basicConv(`${p}/branch2/branch2.1`, basicConv(`${p}/branch2/branch2.0`, x, cin, c3r, 1), c3r, c3, 3, 1, 1);
    const b3 = basicConv(`${p}/branch3/branch3.1`, basicConv(`${p}/branch3/branch3.0`, x, cin, c5r, 1), c5r, c5, 3, 1, 1);
    const b4 = basicConv(`${p}/branch4/branch4.1`, maxPool(`${p}/branch4/branch4.0`, x, 3, 1, 1), cin, cp, 1);
    const branches: [string, number][] = [[b1, c1], [b2, c3], [b3, c5], [b4, cp]];
    const y = g.node('Concat', `/${p}/Concat`, branches.map(([t]) => t), `/${p}/Concat_output_0`, { axis: int(1) });
    const c = c1 + c3 + c5 + cp;
    m2.set(y, branches.reduce((s, [t, ch]) => s + sq(t) * ch, 0) / c); // channel-weighted mean
    return [y, c];
  }

  let x = g.input('x', [1, 3, 224, 224]);
  m2.set(x, TORCHVISION_INPUT_RMS ** 2);
  x = basicConv('conv1', x, 3, 64, 7, 2, 3); // 112×112
  x = maxPool('maxpool1', x, 3, 2); // 56×56 (ceil)
  x = basicConv('conv2', x, 64, 64, 1);
  x = basicConv('conv3', x, 64, 192, 3, 1, 1);
  x = maxPool('maxpool2', x, 3, 2); // 28×28
  let c = 192;
  for (const block of ['3a', '3b', '4a', '4b', '4c', '4d', '4e', '5a', '5b']) {
    [x, c] = inception(block, x, c);
    if (block === '3b') x = maxPool('maxpool3', x, 3, 2); // 14×14
    if (block === '4e') x = maxPool('maxpool4', x, 2, 2); // 7×7
  }
  const pooled = sq(x) * AVGPOOL_GAIN;
  x = g.node('GlobalAveragePool', '/avgpool/GlobalAveragePool', [x], '/avgpool/GlobalAveragePool_output_0');
  x = g.node('Flatten', '/Flatten', [x], '/Flatten_output_0', { axis: int(1) });
  const fcStd = LOGIT_STD / Math.sqrt(c * pooled);
  const w = g.weight('fc.weight', [1000, c], rng.normals(1000 * c, 0, fcStd));
  const b = g.weight('fc.bias', [1000], rng.normals(1000, 0, 0.1 * LOGIT_STD));
  x = g.node('Gemm', '/fc/Gemm', [x, w, b], 'logits', { alpha: float(1), beta: float(1), transB: int(1) });
  g.output(x, [1, 1000]);
  return g.build({ opset: 13, irVersion: 7, producerName: 'gradcam-webgpu (googlenet-torchvision-seeded)', graphName: 'main_graph' });
}
