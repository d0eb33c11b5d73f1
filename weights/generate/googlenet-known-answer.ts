/**
 * The known-answer GoogLeNet: the ONNX Model Zoo googlenet-12 graph of googlenet-zoo.ts (same node
 * types, attributes, tensor and weight names) with every weight set by hand, so that the right
 * Grad-CAM answer is known before anything runs. Class 0 scores "red", class 1 "green", class 2
 * "blue"; the other 997 classes have the constant logit −10.
 *
 * ## The weights
 *
 * Three "colour" channels (c = 0 red, 1 green, 2 blue) run from conv1 to inception_5b; every other
 * weight and bias is exactly 0, so every other channel is exactly 0 and nothing leaks.
 *
 * - conv1/7x7_s2 computes colour-opponent responses from one tap (kernel position (4, 4), i.e.
 *   input pixel (2q+1, 2p+1) for output (q, p)): with the Caffe recipe the input is BGR minus the
 *   means, so for a pixel (R, G, B) in 0–255
 *     conv1[c] = κ·(X_c − (X_o1 + X_o2)/2 − T)        (X: R, G or B; o1, o2 the two other colours)
 *   where the means go into the bias: κ·(mean_c − (mean_o1 + mean_o2)/2 − T). A neutral grey of any
 *   level has X_c − (X_o1 + X_o2)/2 = 0, hence a response −κT < 0, exactly 0 after the ReLU (the
 *   threshold T = 16 keeps float rounding from leaking a tiny positive value). Pure red (255, 0, 0)
 *   gives red κ·239 and green, blue κ·(−127.5 − 16) < 0: exactly 0.
 * - κ = 2⁻¹⁴ keeps the colour channels ≤ 0.015 through both LRNs: there (α/size)·Σx² ≤ 2e-5 · 3 ·
 *   0.015² < 1.4e-8, so the LRN divides by (1 + 1.4e-8)^0.75, which is exactly 1 in float32 (and
 *   1 − 1e-8 in float64). The LRNs are therefore the identity on this model, to float32 precision.
 *   inception_3a's 5x5_reduce multiplies by 64 to bring the channels back to 0–0.93.
 * - The channels travel through one branch per inception block, chosen to cover every branch type's
 *   slice of the concatenation (channel offsets in brackets): 3a 5x5 [192], 3b 3x3 [128],
 *   4a 5x5 [400], 4b 1x1 [0], 4c 3x3 [128], 4d 5x5 [400], 4e 1x1 [0], 5a 3x3 [256], 5b 5x5 [768].
 *   The 1×1 "reduce" convolutions are identities on the three channels; the pool branches carry
 *   nothing (a max-pool 3×3 would only widen the response).
 * - The spatial kernels are separable, non-negative and sum to 1 (binomial, so dyadic: exact in
 *   binary): conv2/3x3 [1,2,1]/4; 3a/5x5 [1,4,6,4,1]/16; 3b/3x3 [1,2,1]/4; 4a/5x5 [1,2,1]/4 on taps
 *   0–2 of 5 (centred one 14×14 cell up-left, see below); 5a/3x3 [1,6,1]/8; all others one centre tap.
 * - pool5 averages inception_5b over 7×7; loss3/classifier has weight G = 8 from feature 768 + c to
 *   class c, bias 0 for classes 0–2 and −10 for the others:  logit_c = 8 · mean over space of A_c,
 *   where A_c = inception_5b/output_1[768 + c] ∈ [0, 0.93]. A full red picture gives logit_0 ≈ 6.9
 *   and p_0 ≈ 0.998: large, but 1 − p_0 stays far from float32's rounding, so the 'softmax'
 *   reduction's gradient p_c(1 − p_c) does not vanish.
 *
 * ## What Grad-CAM must answer (at inception_5b, the default layer)
 *
 * The logits are linear in the pooled features, so ∂logit_c/∂A_k = G/49 for k = 768 + c and 0 for
 * every other channel: α = G/49 on channel 768 + c, the map is ReLU(G/49 · A_c) = G/49 · A_c, the
 * colour-c response itself. With the 'softmax' reduction, ∂p_c/∂z_j = p_c(δ_cj − p_j) gives
 * α_{768+j} = p_c(δ_cj − p_j)·G/49: positive on colour c, negative on the two others, so the map
 * is ReLU(α_c A_c − Σ_{j≠c} p_c p_j G/49 · A_j).
 * - A grey picture with one square of colour c: A_c > 0 around the square, A_j = 0 exactly for
 *   j ≠ c. Top-1 is class c (logit > 0 = the other two colour logits > −10); the map of class c is
 *   a bump on the square; the maps of the two other colour classes are 0 exactly (ReLU of 0, with
 *   'logit'; ReLU of a non-positive sum, with 'softmax').
 *
 * ## Where the maximum is, and for which square sizes that is guaranteed
 *
 * Geometry. Along one axis, a 7×7 cell i covers input pixels [32i, 32i + 32) and bilinear
 * upsampling (align_corners = false) puts the cell's value at pixel 32i + 15.5 (its "node"). The
 * Caffe ceil-mode max-pools (3×3, stride 2, padded at the end only) each look half a window to the
 * right: pool1..pool4 shift the response by +1, +2, +4, +8 px, and conv1's tap (4, 4) by +0.5,
 * +15.5 px in all. 4a's 5×5 kernel on taps 0–2 (centre tap 1, one 14×14 cell = 16 px up-left)
 * takes 16 back: the colour response is centred on the square to within 0.5 px. The path is
 * separable (a square is a product of two intervals, the kernels are outer products, and a max over
 * a rectangle of a non-negative product is the product of the maxima), so each axis can be studied
 * alone: A_c(i, j) = v · f(i) · g(j), and the upsampled map is a product too.
 *
 * Why not centre taps everywhere: each 3×3/2 max-pool widens a response by one sample on each side,
 * ±30 px in all. Without blurring, every cell within ~30 px of the square has the same value (a
 * plateau), and its upsampled maximum spreads far outside the square. The binomial kernels
 * (half-widths 4 + 16 + 8 + 16 = 44 px > 30 px) turn the plateau into a bump that decreases away
 * from the square's centre, and 5a's [1,6,1]/8 breaks the two-way ties that a stride-2 max-pool
 * makes when the finer peak falls on the sample two windows share.
 *
 * Guarantee. "The maximum is inside the square" means: every pixel where the upsampled map is
 * within 1e-3 (relative) of its maximum lies inside the square, or in the half-cell band along the
 * picture's border where upsampling replicates the edge cell, if the square reaches into that band.
 * Measured in pixels of the 224×224 network input (a side of s picture pixels along an axis of W
 * pixels is s·224/W there; a cell is 32), it holds for every position when the side is
 * - ≥ 48 (1.5 cells) anywhere in the picture: 48 px in a 224×224 picture, 65 px in a 300×200 one;
 * - ≥ 34 when the square keeps half a cell (W/14) away from the border: 34 px at 224×224.
 * Both bounds are tight to a few pixels. Below one cell there is no guarantee at all: a square
 * narrower than a cell that sits across a cell boundary contains neither neighbouring node (e.g.
 * [22, 42) between the nodes 15.5 and 47.5). Near the border, the zero padding of the blurs (which
 * stands for grey beyond the picture) cuts off the part of the widened response that falls outside
 * the picture, which pulls the bump inwards by up to half a cell: hence 1.5 cells there. The bounds
 * come from an exhaustive scan of every position and side along one axis, exact for this separable
 * path, for any colour on 224×224 pictures (the square is then a sharp 0/1 indicator for conv1);
 * resized pictures were scanned for opponencies 100 and 255 (their antialiased edges meet conv1's
 * threshold, which is near-separable only: the GPU tests cover the 2-D case); the scan
 * is repeated by test/known-answer.test.ts (test/helpers/colour-path.ts, from the model's own
 * weights), which also checks random squares end to end on the GPU.
 */
import type { OnnxModel, OnnxTensor } from '../../src/onnx/model.ts';
import { googlenetZoo } from './googlenet-zoo.ts';

/** Class index per colour. */
export const KNOWN_ANSWER_CLASSES = { red: 0, green: 1, blue: 2 } as const;
/**
 * The smallest square side, in pixels of the 224×224 network input (a side of s picture pixels is
 * s·224/W there), for which the maximum of the upsampled class map is guaranteed inside the square:
 * anywhere in the picture, and when the square keeps half a cell (W/14) away from the border.
 */
export const KNOWN_ANSWER_MIN_SIDE = { anywhere: 48, interior: 34 } as const;
/** Colour opponency (0–255 units) below which a pixel counts as grey. */
export const KNOWN_ANSWER_THRESHOLD = 16;
/** conv1's scale: keeps the LRNs' inputs small enough to be the identity in float32. */
const KAPPA = 2 ** -14;
/** inception_3a/5x5_reduce's gain, after the LRNs. */
const GAIN_3A = 64;
/** logit_c = LOGIT_GAIN · mean over space of inception_5b/output_1[FEATURE_OFFSET + c]. */
export const KNOWN_ANSWER_LOGIT_GAIN = 8;
/** Where the colour channels sit in inception_5b/output_1 (the 5x5 branch's slice). */
export const KNOWN_ANSWER_FEATURE_OFFSET = 768;
const OTHER_LOGIT = -10;

const B3 = [1 / 4, 2 / 4, 1 / 4];
const B5 = [1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16];
const UP_LEFT5 = [1 / 4, 2 / 4, 1 / 4, 0, 0]; // a 5-tap kernel centred on tap 1: one sample up/left
const S161 = [1 / 8, 6 / 8, 1 / 8];
const centre = (k: number): number[] => Array.from({ length: k }, (_, i) => (i === (k - 1) / 2 ? 1 : 0));

/**
 * The colour path: each Conv on it, which input channel feeds which output channel (per colour:
 * channel + c), its separable 1-D kernel and gain. Exported so that tests can follow the path.
 */
export const KNOWN_ANSWER_PATH: { layer: string; from: number; to: number; kernel: number[]; gain?: number }[] = [
  { layer: 'conv2/3x3_reduce', from: 0, to: 0, kernel: [1] },
  { layer: 'conv2/3x3', from: 0, to: 0, kernel: B3 },
  { layer: 'inception_3a/5x5_reduce', from: 0, to: 0, kernel: [1], gain: GAIN_3A },
  { layer: 'inception_3a/5x5', from: 0, to: 0, kernel: B5 }, // → 3a[192 + c]
  { layer: 'inception_3b/3x3_reduce', from: 192, to: 0, kernel: [1] },
  { layer: 'inception_3b/3x3', from: 0, to: 0, kernel: B3 }, // → 3b[128 + c]
  { layer: 'inception_4a/5x5_reduce', from: 128, to: 0, kernel: [1] },
  { layer: 'inception_4a/5x5', from: 0, to: 0, kernel: UP_LEFT5 }, // → 4a[400 + c]
  { layer: 'inception_4b/1x1', from: 400, to: 0, kernel: [1] }, // → 4b[0 + c]
  { layer: 'inception_4c/3x3_reduce', from: 0, to: 0, kernel: [1] },
  { layer: 'inception_4c/3x3', from: 0, to: 0, kernel: centre(3) }, // → 4c[128 + c]
  { layer: 'inception_4d/5x5_reduce', from: 128, to: 0, kernel: [1] },
  { layer: 'inception_4d/5x5', from: 0, to: 0, kernel: centre(5) }, // → 4d[400 + c]
  { layer: 'inception_4e/1x1', from: 400, to: 0, kernel: [1] }, // → 4e[0 + c]
  { layer: 'inception_5a/3x3_reduce', from: 0, to: 0, kernel: [1] },
  { layer: 'inception_5a/3x3', from: 0, to: 0, kernel: S161 }, // → 5a[256 + c]
  { layer: 'inception_5b/5x5_reduce', from: 256, to: 0, kernel: [1] },
  { layer: 'inception_5b/5x5', from: 0, to: 0, kernel: centre(5) }, // → 5b[768 + c]
];

/** The Caffe recipe's means (R, G, B) and the input's channel order (BGR). */
const MEAN_RGB = [123.68, 116.779, 103.939];
const BGR_INDEX = [2, 1, 0]; // input channel of R, G, B

export function googlenetKnownAnswer(): OnnxModel {
  // The zoo topology, names and attributes; its seeded weights are all replaced below.
  const zoo = googlenetZoo(1);
  const initializers = new Map<string, OnnxTensor>();
  for (const [name, t] of zoo.initializers) {
    initializers.set(name, t.dataType === 'float32' ? { ...t, data: new Float32Array(t.data.length) } : t);
  }
  const tensor = (name: string): { dims: number[]; data: Float32Array } => {
    const t = initializers.get(name);
    if (!t) throw new Error(`known-answer: no initializer '${name}'`);
    return { dims: t.dims, data: t.data as Float32Array };
  };
  /** Sets W[o][i] of a Conv to gain · outer(kernel, kernel). */
  const setConv = (layer: string, o: number, i: number, kernel: number[], gain = 1) => {
    const { dims, data } = tensor(`${layer}_w_0`);
    const [, cin, kh, kw] = dims;
    if (kh !== kernel.length || kw !== kernel.length) throw new Error(`known-answer: ${layer} is ${kh}×${kw}, kernel has ${kernel.length} taps`);
    for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) data[((o * cin + i) * kh + y) * kw + x] = gain * kernel[y] * kernel[x];
  };

  // conv1: colour opponency from tap (4, 4), threshold in the bias.
  const T = KNOWN_ANSWER_THRESHOLD;
  const conv1 = tensor('conv1/7x7_s2_w_0');
  const conv1b = tensor('conv1/7x7_s2_b_0');
  for (let c = 0; c < 3; c++) {
    const others = [0, 1, 2].filter((j) => j !== c);
    const tap = (o: number, i: number) => ((o * 3 + i) * 7 + 4) * 7 + 4;
    conv1.data[tap(c, BGR_INDEX[c])] = KAPPA;
    for (const j of others) conv1.data[tap(c, BGR_INDEX[j])] = -KAPPA / 2;
    conv1b.data[c] = KAPPA * (MEAN_RGB[c] - (MEAN_RGB[others[0]] + MEAN_RGB[others[1]]) / 2 - T);
  }
  for (const step of KNOWN_ANSWER_PATH) {
    for (let c = 0; c < 3; c++) setConv(step.layer, step.to + c, step.from + c, step.kernel, step.gain);
  }
  const fc = tensor('loss3/classifier_w_0');
  const fcb = tensor('loss3/classifier_b_0');
  const features = fc.dims[1];
  fcb.data.fill(OTHER_LOGIT);
  for (let c = 0; c < 3; c++) {
    fc.data[c * features + KNOWN_ANSWER_FEATURE_OFFSET + c] = KNOWN_ANSWER_LOGIT_GAIN;
    fcb.data[c] = 0;
  }
  return { ...zoo, initializers, producerName: 'gradcam-webgpu (googlenet-known-answer)' };
}
