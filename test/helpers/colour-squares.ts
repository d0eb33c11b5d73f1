/**
 * A tiny known-answer classifier for the CLI tests whose point is the command (folders, box files,
 * JSON lines, exit codes), not GoogLeNet: the colour idea of weights/generate/googlenet-known-answer.ts
 * on a 32×32 input with three stages, so that a CLI run compiles a handful of kernels and each
 * picture costs a few milliseconds instead of GoogLeNet's seconds on SwiftShader.
 *
 *   x [1, 3, 32, 32] → Conv 1×1 + Relu 'opponent' (32×32) → MaxPool 2/2 → Conv 3×3 blur + Relu
 *   'blur16' (16×16) → MaxPool 2/2 → Conv 3×3 blur + Relu 'blur8' (8×8) → GlobalAveragePool →
 *   Flatten → Gemm 'logits' [1, 5]
 *
 * The recipe is in the model (metadata_props): values 0–1, mean 0, std 1, RGB, stretched. Channel c
 * (0 red, 1 green, 2 blue) of 'opponent' is ReLU(X_c − (X_o1 + X_o2)/2 − 16/255): exactly 0 on any
 * grey, positive on colour c only. The blurs are [1,2,1]/4 ⊗ [1,2,1]/4 on each channel alone (no
 * mixing), non-negative, so every stage keeps colour c on channel c and nothing else. The classifier:
 * logit_c = 8 · mean(blur8_c) for c = 0, 1, 2; classes 3 and 4 score the constant −10. So a grey
 * picture with one square of colour c is class c, the Grad-CAM map of class c at any layer is the
 * colour-c response itself (∂logit_c/∂A is non-negative on channel c and 0 elsewhere), a bump on the
 * square, and the maps of the other colours are exactly 0. Labels (metadata_props): red, green,
 * blue, grey, black. Multiplying the picture by a map in [0, 1] only lowers the colour response, so
 * the explanation input never raises the class's probability (Average Drop ≥ 0, no increase).
 */
import type { OnnxModel } from '../../src/onnx/model.ts';
import { encodeOnnx } from '../../src/onnx/write.ts';
import { GraphBuilder, int, ints } from '../../weights/generate/builder.ts';

/** The feature layers, finest first (also 'info''s stage outputs); 'blur8' is the default (last before pooling). */
export const COLOUR_LAYERS = ['opponent', 'blur16', 'blur8'] as const;
export const COLOUR_LABELS = ['red', 'green', 'blue', 'grey', 'black'];
export const COLOUR_SIZE = 32;

/** A 3×3 blur on each of the three channels alone ([1,2,1]/4 in both directions: exact in float32). */
function blur(): Float32Array {
  const k = [1, 2, 1];
  const w = new Float32Array(3 * 3 * 3 * 3);
  for (let c = 0; c < 3; c++) for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) w[((c * 3 + c) * 3 + i) * 3 + j] = (k[i] * k[j]) / 16;
  return w;
}

export function colourSquares(): OnnxModel {
  const b = new GraphBuilder();
  const opponent = new Float32Array(9);
  for (let c = 0; c < 3; c++) for (let k = 0; k < 3; k++) opponent[c * 3 + k] = c === k ? 1 : -0.5;
  const fc = new Float32Array(5 * 3);
  for (let c = 0; c < 3; c++) fc[c * 3 + c] = 8;
  let x = b.input('x', [1, 3, COLOUR_SIZE, COLOUR_SIZE]);
  x = b.node('Conv', 'opponent_conv', [x, b.weight('opponent_w', [3, 3, 1, 1], opponent), b.weight('opponent_b', [3], new Float32Array(3).fill(-16 / 255))], 'opponent_pre', { kernel_shape: ints(1, 1) });
  x = b.node('Relu', 'opponent_relu', [x], 'opponent');
  for (const [size, input] of [[16, 'pool16'], [8, 'pool8']] as const) {
    x = b.node('MaxPool', input, [x], `${input}_out`, { kernel_shape: ints(2, 2), strides: ints(2, 2) });
    x = b.node('Conv', `blur${size}_conv`, [x, b.weight(`blur${size}_w`, [3, 3, 3, 3], blur())], `blur${size}_pre`, { kernel_shape: ints(3, 3), pads: ints(1, 1, 1, 1) });
    x = b.node('Relu', `blur${size}_relu`, [x], `blur${size}`);
  }
  x = b.node('GlobalAveragePool', 'gap', [x], 'gap_out');
  x = b.node('Flatten', 'flatten', [x], 'flat', { axis: int(1) });
  x = b.node('Gemm', 'fc', [x, b.weight('fc_w', [5, 3], fc), b.weight('fc_b', [5], Float32Array.from([0, 0, 0, -10, -10]))], 'logits', { transB: int(1) });
  b.output(x, [1, 5]);
  const model = b.build({ opset: 13, irVersion: 8, producerName: 'gradcam-webgpu tests (colour squares)', graphName: 'colour-squares' });
  model.metadata = { recipe: 'imagenet-rgb', mean: '0,0,0', std: '1,1,1', labels: JSON.stringify(COLOUR_LABELS) };
  return model;
}

export const colourSquaresBytes = (): Uint8Array => encodeOnnx(colourSquares());
