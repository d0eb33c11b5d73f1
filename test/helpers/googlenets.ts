/**
 * The two generated GoogLeNets for the exactness tests (cam-methods, guided), at the sizes those tests
 * run them:
 *   - googlenet-zoo-seeded at its own 224×224: the one full-size check of each property ("on the real
 *     model"); its AveragePool 7×7 → Reshape [1, 1024] head takes no other size;
 *   - googlenet-torchvision-seeded at 96×96: the same graph (GlobalAveragePool → Flatten → Gemm takes
 *     any size), its input declared [1, 3, 96, 96]; inception_3b, 4e, 5b are 12×12, 6×6, 3×3 (5b at
 *     224: 7×7), so every layer keeps spatial extent, and each pass costs (96/224)² ≈ 0.18 of the full
 *     size. Both the engine and the float64 reference (which reads shapes from the data) run that size.
 * One network per model and file (googlenetNetwork).
 * Input: 50·N(0, 1) per value from Rng(seed), the scale both generators design their weights for.
 */
import { Network } from '../../src/gradcam/network.ts';
import { decodeOnnx } from '../../src/onnx/decode.ts';
import type { OnnxModel } from '../../src/onnx/model.ts';
import { generateModelBytes } from '../../weights/generate/index.ts';
import { Rng } from '../../weights/generate/random.ts';
import { testGpu } from './gpu.ts';

export interface GooglenetCase {
  model: OnnxModel;
  /** [1, 3, size, size] */
  shape: number[];
  size: number;
  inputName: string;
}

/** Input size per generated GoogLeNet in the exactness tests. */
export const GOOGLENET_SIZES = { 'googlenet-zoo-seeded': 224, 'googlenet-torchvision-seeded': 96 } as const;
export type GooglenetName = keyof typeof GOOGLENET_SIZES;

/**
 * The model, decoded, with its input declared at the size above, or at `size` (the torchvision
 * graph takes any size; test/attributions-googlenet.test.ts runs it smaller, where its float64
 * reference's many passes must stay cheap).
 */
export function googlenetCase(name: GooglenetName, size: number = GOOGLENET_SIZES[name]): GooglenetCase {
  const model = decodeOnnx(generateModelBytes(name));
  const shape = [1, 3, size, size];
  model.inputs[0].shape = shape;
  return { model, shape, size, inputName: model.inputs[0].name };
}

/** A 50·N(0, 1) input of `shape`, drawn from Rng(seed). */
export function googlenetInput(shape: readonly number[], seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal() * 50);
}

/**
 * A [3, size, size] input of one of two regimes (test/forward-googlenet.test.ts, test/googlenet-zoo.test.ts):
 * an odd seed gives an image-like one (smooth, 0–255 minus means: sines plus 10·N(0, 1)), an even seed
 * noise (50·N(0, 1)); both regimes matter.
 */
export function regimeInput(seed: number, size: number): Float32Array {
  const n = 3 * size * size;
  const rng = new Rng(seed);
  if (seed % 2 === 0) return Float32Array.from({ length: n }, () => rng.normal() * 50);
  const out = new Float32Array(n);
  const [fx, fy, ph] = [rng.uniform() * 0.1, rng.uniform() * 0.1, rng.uniform() * 6];
  for (let i = 0; i < n; i++) {
    const x = i % size, y = Math.floor(i / size) % size, c = Math.floor(i / size / size);
    out[i] = 120 * Math.sin(fx * x + ph + c) * Math.cos(fy * y - c) + 10 * rng.normal();
  }
  return out;
}

const loaded = new Map<string, Promise<{ c: GooglenetCase; net: Network }>>();

/**
 * The model and its network (at its size above, or at `size`), loaded once per test file (on first
 * use) and shared by the file's tests; `destroyGooglenets` (afterAll) frees them.
 */
export function googlenetNetwork(name: GooglenetName, size: number = GOOGLENET_SIZES[name]): Promise<{ c: GooglenetCase; net: Network }> {
  const key = `${name}@${size}`;
  let p = loaded.get(key);
  if (!p) {
    const c = googlenetCase(name, size);
    p = testGpu().then((gpu) => Network.load(gpu, c.model)).then((net) => ({ c, net }));
    loaded.set(key, p);
  }
  return p;
}

export async function destroyGooglenets(): Promise<void> {
  for (const p of loaded.values()) (await p).net.destroy();
  loaded.clear();
}

/** The programs a network compiled (its private cache, read by the tests of its make-up), by key. */
export function programsOf<P>(net: Network): Map<string, P> {
  return (net as unknown as { programs: Map<string, P> }).programs;
}
