/**
 * GoogLeNet with exactly the ONNX Model Zoo googlenet-12 topology (Caffe's bvlc_googlenet converted
 * through Caffe2): the same node types, attributes, tensor names and weight names, 143 nodes, with
 * seeded random weights instead of the trained ones. Tests and the offline default run on it.
 *
 * Weights are scaled analytically so that activations keep a steady size through all nine inception
 * blocks: the generator tracks the expected second moment E[x²] of every tensor for an input of rms
 * ZOO_INPUT_RMS and draws each convolution's weights so that its pre-activation has rms PRE_RMS
 * ("data-free LSUV"). Plain He init (std √(2/fan_in)) would be close, but each 3×3 max-pool raises
 * E[x²] and the LRNs lower it, which compounds over 13 pools and 22 layers.
 */
import type { OnnxModel } from '../../src/onnx/model.ts';
import { GraphBuilder, float, int, ints } from './builder.ts';
import { Rng } from './random.ts';

/** The input scale the weights are designed for: a preprocessed image (0–255 minus the means) has an rms near 60. */
export const ZOO_INPUT_RMS = 60;
/**
 * Every convolution's pre-activation rms, for an input of ZOO_INPUT_RMS. At 100 the ReLU outputs
 * have E[x²] ≈ 5000, so the LRNs' denominators (1 + 1e-4·E[x²])^0.75 ≈ 1.35 are far from 1
 * (an LRN that did nothing would test nothing) without crushing the signal.
 */
const PRE_RMS = 100;
/** Biases: small next to PRE_RMS, but not zero, so a dropped bias shows. */
const BIAS_STD = 0.05 * PRE_RMS;
/** The logits' standard deviation across the 1000 classes: softmax max ≈ 0.05–0.3, not one-hot. */
const LOGIT_STD = 3;
/** E[x²] gains of the ops that are not analytic, measured with ONNX Runtime on the test inputs. */
const MAXPOOL_GAIN = 1.7; // a 3×3 max over ReLU outputs (1.4–2 on images; 5 for pool1 on white noise)
const LRN_GAIN = 0.8; // see lrn() below
const AVGPOOL_GAIN = 0.85; // a 7×7 mean of deep ReLU outputs: their energy is mostly in the channel means

const LRN_ALPHA = 1e-4;

/** Channels of one inception block: 1x1, 3x3 reduce → 3x3, 5x5 reduce → 5x5, pool projection. */
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

export function googlenetZoo(seed = 1): OnnxModel {
  const rng = new Rng(seed);
  const g = new GraphBuilder();
  const m2 = new Map<string, number>(); // expected E[x²] of each tensor
  const sq = (x: string): number => m2.get(x)!;

  /** Caffe convolution `layer` (+ bias) and its ReLU `relu`: outputs `<layer>_1`, `<layer>_2`. */
  function conv(layer: string, relu: string, x: string, cin: number, cout: number, k: number, stride = 1, pad = 0): string {
    const std = PRE_RMS / Math.sqrt(cin * k * k * sq(x));
    const w = g.weight(`${layer}_w_0`, [cout, cin, k, k], rng.normals(cout * cin * k * k, 0, std));
    const b = g.weight(`${layer}_b_0`, [cout], rng.normals(cout, 0, BIAS_STD));
    const y = g.node('Conv', layer, [x, w, b], `${layer}_1`, {
      kernel_shape: ints(k, k), pads: ints(pad, pad, pad, pad), strides: ints(stride, stride),
    });
    const r = g.node('Relu', relu, [y], `${layer}_2`);
    m2.set(r, PRE_RMS ** 2 / 2); // ReLU keeps half of a zero-mean pre-activation's E[x²]
    return r;
  }

  /** Max-pool `layer` → `<layer>_1`. Caffe's ceil-mode pools appear as extra padding at the end. */
  function maxPool(layer: string, x: string, stride: number, pads: number[]): string {
    const y = g.node('MaxPool', layer, [x], `${layer}_1`, { kernel_shape: ints(3, 3), pads: ints(...pads), strides: ints(stride, stride) });
    m2.set(y, sq(x) * MAXPOOL_GAIN);
    return y;
  }

  function lrn(layer: string, x: string): string {
    const y = g.node('LRN', layer, [x], `${layer}_1`, { alpha: float(LRN_ALPHA), beta: float(0.75), bias: float(1), size: int(5) });
    // With the window's mean square ≈ E[x²], E[y²] ≈ E[x²]/(1 + α·E[x²])^1.5; measured 0.8 of that
    // (the largest values, which carry most of E[x²], are divided the most).
    m2.set(y, (LRN_GAIN * sq(x)) / (1 + LRN_ALPHA * sq(x)) ** 1.5);
    return y;
  }

  function inception(block: string, x: string, cin: number): [string, number] {
    const [c1, c3r, c3, c5r, c5, cp] = INCEPTION[block]!;
    const p = `inception_${block}`;
    const b1 = conv(`${p}/1x1`, `${p}/relu_1x1`, x, cin, c1, 1);
    const r3 = conv(`${p}/3x3_reduce`, `${p}/relu_3x3_reduce`, x, cin, c3r, 1);
    const b3 = conv(`${p}/3x3`, `${p}/relu_3x3`, r3, c3r, c3, 3, 1, 1);
    const r5 = conv(`${p}/5x5_reduce`, `${p}/relu_5x5_reduce`, x, cin, c5r, 1);
    const b5 = conv(`${p}/5x5`, `${p}/relu_5x5`, r5, c5r, c5, 5, 1, 2);
    const pool = maxPool(`${p}/pool`, x, 1, [1, 1, 1, 1]);
    const bp = conv(`${p}/pool_proj`, `${p}/relu_pool_proj`, pool, cin, cp, 1);
    const y = g.node('Concat', `${p}/output`, [b1, b3, b5, bp], `${p}/output_1`, { axis: int(1) });
    m2.set(y, PRE_RMS ** 2 / 2); // every branch ends in a ReLU of the same scale
    return [y, c1 + c3 + c5 + cp];
  }

  let x = g.input('data_0', [1, 3, 224, 224]);
  m2.set(x, ZOO_INPUT_RMS ** 2);
  const ceil = [0, 0, 2, 2]; // as the Model Zoo file writes Caffe's ceil-mode 3×3/2 pools
  x = conv('conv1/7x7_s2', 'conv1/relu_7x7', x, 3, 64, 7, 2, 3); // 112×112
  x = maxPool('pool1/3x3_s2', x, 2, ceil); // 56×56
  x = lrn('pool1/norm1', x);
  x = conv('conv2/3x3_reduce', 'conv2/relu_3x3_reduce', x, 64, 64, 1);
  x = conv('conv2/3x3', 'conv2/relu_3x3', x, 64, 192, 3, 1, 1);
  x = lrn('conv2/norm2', x);
  x = maxPool('pool2/3x3_s2', x, 2, ceil); // 28×28
  let c = 192;
  for (const block of ['3a', '3b', '4a', '4b', '4c', '4d', '4e', '5a', '5b']) {
    [x, c] = inception(block, x, c);
    if (block === '3b') x = maxPool('pool3/3x3_s2', x, 2, ceil); // 14×14
    if (block === '4e') x = maxPool('pool4/3x3_s2', x, 2, ceil); // 7×7
  }
  x = g.node('AveragePool', 'pool5/7x7_s1', [x], 'pool5/7x7_s1_1', { kernel_shape: ints(7, 7), pads: ints(0, 0, 0, 0), strides: ints(1, 1) });
  const pooled = sq('inception_5b/output_1') * AVGPOOL_GAIN;
  x = g.node('Dropout', 'pool5/drop_7x7_s1', [x], 'pool5/7x7_s1_2'); // identity at inference
  const shape = g.int64('OC2_DUMMY_1', [1, 1024]);
  x = g.node('Reshape', 'OC2_DUMMY_reshape', [x, shape], 'OC2_DUMMY_0');
  const fcStd = LOGIT_STD / Math.sqrt(c * pooled);
  const w = g.weight('loss3/classifier_w_0', [1000, c], rng.normals(1000 * c, 0, fcStd));
  const b = g.weight('loss3/classifier_b_0', [1000], rng.normals(1000, 0, 0.1 * LOGIT_STD));
  x = g.node('Gemm', 'loss3/classifier', [x, w, b], 'loss3/classifier_1', { alpha: float(1), beta: float(1), transA: int(0), transB: int(1) });
  x = g.node('Softmax', 'prob', [x], 'prob_1', { axis: int(1) });
  g.output(x, [1, 1000]);
  return g.build({ opset: 12, irVersion: 7, producerName: 'gradcam-webgpu (googlenet-zoo-seeded)', graphName: 'googlenet' });
}
