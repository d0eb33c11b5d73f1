/**
 * A small model on GoogLeNet's code paths (conv + Relu, max-pool, an inception-like concat of a 1×1
 * conv and a 3×3 max-pool, global average pool, a Gemm classifier), and random pictures for it:
 * shared by the tests that need many fast runs (concurrency, batches, memory soak).
 */
import type { RgbaImage } from '../../src/image/image.ts';
import type { OnnxModel } from '../../src/onnx/model.ts';
import { Rng } from '../../weights/generate/random.ts';
import { buildModel, int, int64, ints, node, weight } from '../reference/models.ts';
import { randomTensor, rng } from '../reference/tensor.ts';

export const SMALL_SHAPE = [1, 3, 16, 12];
export const SMALL_CLASSES = 10;

/**
 * x → conv 3×3 + Relu → maxpool → [conv 1×1 + Relu, maxpool 3×3] concat → conv 3×3 + Relu → GAP →
 * Flatten → Gemm (`head: 'flatten'`, output 'logits'), or GAP → Reshape [1, 6] → Gemm → Softmax
 * (`head: 'reshape-softmax'`, output 'prob'). Weights drawn from rng(seed).
 */
export function smallModel(seed: number, head: 'flatten' | 'reshape-softmax'): OnnxModel {
  const r = rng(seed);
  const softmax = head === 'reshape-softmax';
  return buildModel({
    inputs: { x: SMALL_SHAPE },
    outputs: [softmax ? 'prob' : 'logits'],
    weights: [
      weight('w1', randomTensor([8, 3, 3, 3], r)), weight('b1', randomTensor([8], r, 0, 0.2)),
      weight('w2', randomTensor([8, 8, 1, 1], r)), weight('w3', randomTensor([6, 16, 3, 3], r)),
      weight('fc', randomTensor([SMALL_CLASSES, 6], r)), weight('fcb', randomTensor([SMALL_CLASSES], r)),
      ...(softmax ? [int64('flat_shape', [1, 6])] : []),
    ],
    nodes: [
      node('Conv', ['x', 'w1', 'b1'], ['c1'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }),
      node('Relu', ['c1'], ['a1']),
      node('MaxPool', ['a1'], ['p1'], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) }),
      node('Conv', ['p1', 'w2'], ['c2'], { kernel_shape: ints([1, 1]) }),
      node('Relu', ['c2'], ['a2']),
      node('MaxPool', ['p1'], ['pp'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }),
      node('Concat', ['a2', 'pp'], ['cat'], { axis: int(1) }),
      node('Conv', ['cat', 'w3'], ['c3'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }),
      node('Relu', ['c3'], ['a3']),
      node('GlobalAveragePool', ['a3'], ['g']),
      ...(softmax
        ? [node('Reshape', ['g', 'flat_shape'], ['flat']), node('Gemm', ['flat', 'fc', 'fcb'], ['logits'], { transB: int(1) }), node('Softmax', ['logits'], ['prob'], { axis: int(1) })]
        : [node('Flatten', ['g'], ['flat']), node('Gemm', ['flat', 'fc', 'fcb'], ['logits'], { transB: int(1) })]),
    ],
  });
}

/** An opaque RGBA picture of random pixels. */
export function randomPicture(r: Rng, width: number, height: number): RgbaImage {
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < data.length; i++) data[i] = i % 4 === 3 ? 255 : r.nextU32() & 255;
  return { width, height, data };
}
