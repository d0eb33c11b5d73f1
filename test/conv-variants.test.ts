/**
 * Every conv variant (src/kernels/variants.ts) on every distinct conv layer shape of the generated
 * models, forward and data gradient, against the float64 reference (test/reference/ops.ts), each
 * run chosen by name through KernelEnv's choices exactly as a plan chooses it.
 *
 * A layer shape is its window, channels, groups and input size (test/helpers: the graph as lowered,
 * Gemm classifiers as 1×1 convolutions); each is run once at batch 1 with seeded weights, input and
 * incoming gradient, the fused ReLU on in the backward pass (its mask read from a forward output of
 * our own making, so that the mask's decisions are exact). Bound, per value (test/helpers/magnitude.ts):
 *   |gpu − reference| ≤ u·(n + 16)·M
 * n the reduction length (forward C_in/group·KH·KW, data gradient C_out/group·KH·KW), M the same
 * sum on absolute values; for Winograd M is the F(2×2, 3×3) magnitude (winogradMagnitude), for the
 * data gradient on the rotated, transposed filters with pads 2 − pad. Every variant sums the same
 * terms (split-K, im2col and the direct kernel in another order), so γ_n bounds each.
 *
 * Default (fast): of the small (CI) models' 188 distinct shapes, one per kernel specialisation (the
 * window KH×KW, strides, dilations, pointwise or not, ungrouped / grouped / depthwise-like), the
 * cheapest: what is compiled differs between them, while shapes of one specialisation differ only in
 * uniforms. The pipeline compilations are most of this file's time on SwiftShader (2026-12-07, load
 * ~25: 118 of 136 CPU-s; gemm-tiled's 64×64-tile shader ~2.7 CPU-s per pipeline, 80 CPU-s in all).
 * Shapes made by hand (HAND_MADE) take their specialisation's place: GoogLeNet's conv1 window and
 * channels (instead of resnet-ci's 7×7/2 3 → 6: the same kernels compiled), unequal strides, dilation
 * and pads (a specialisation of its own), and EfficientNet-Lite's 3×3/4 stem on 23×18 instead of
 * 224×224 (its GPU runs took 4.3 of the file's 136 CPU-s).
 * GRADCAM_VARIANTS_ALL=1: every distinct shape of every generated model (the 224×224 GoogLeNets
 * included; with the two made by hand then, 248 shapes): long. Run on 2026-12-07 (niced, load 23-32 from other work on 2 cores):
 * 1808 s, 248 of 249 passed; the one failure was this file's reference, which masked MobileNetV2's
 * stem (a fused ReLU6) as a ReLU: fixed above. Worst |gpu − float64| / bound: winograd 9.2e-3
 * forward, 1.8e-2 backward; the others ≤ 0.16.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { GpuContext } from '../src/gpu/device.ts';
import { type Dispatch, KernelEnv } from '../src/gpu/dispatch.ts';
import { lower } from '../src/graph/lower.ts';
import { windowCount } from '../src/graph/shapes.ts';
import { chooseRecipe } from '../src/image/recipes.ts';
import { applicableVariants, CONV_VARIANT_NAMES, type ConvVariantName, describeConv, type Direction } from '../src/kernels/variants.ts';
import { conv as convSpec, type ConvOp } from '../src/ops/conv.ts';
import { gradientPads } from '../src/kernels/winograd.ts';
import { splitK } from '../src/kernels/conv.ts';
import { GENERATED_MODELS } from '../weights/generate/index.ts';
import { rotateTranspose, U, winogradMagnitude } from './helpers/magnitude.ts';
import { testGpu } from './helpers/gpu.ts';
import * as ref from './reference/ops.ts';
import { randomTensor, rng, tensor, type Tensor } from './reference/tensor.ts';

const ALL = process.env.GRADCAM_VARIANTS_ALL === '1';
const MODELS = Object.entries(GENERATED_MODELS).filter(([n, s]) => !s.byNameOnly && (ALL || !n.startsWith('googlenet'))).map(([n]) => n);

interface Shape { op: ConvOp; input: number[]; output: number[]; from: string }

/** The distinct conv layer shapes of `models` (as lowered at batch 1), with the first layer of each. */
function distinctShapes(models: string[]): Shape[] {
  const seen = new Map<string, Shape>();
  for (const name of models) {
    const model = GENERATED_MODELS[name].build();
    const recipe = chooseRecipe({ metadata: model.metadata, inputName: model.inputs[0].name, opTypes: [...new Set(model.nodes.map((n) => n.opType))] }).recipe;
    const graph = lower(model, { inputSize: recipe.size, layout: recipe.layout, batch: 1 });
    for (const op of graph.ops) {
      if (op.kind !== 'conv') continue;
      const input = [1, ...graph.tensors.get(op.inputs[0])!.shape.slice(1)];
      const output = [1, ...graph.tensors.get(op.output)!.shape.slice(1)];
      const { cIn, cOut, kh, kw, strideH, strideW, pads, dilations, group } = op;
      const key = JSON.stringify([cIn, cOut, kh, kw, strideH, strideW, pads, dilations, group, input]);
      if (!seen.has(key)) seen.set(key, { op, input, output, from: `${name} '${op.name}'` });
    }
  }
  return [...seen.values()];
}

/** What is compiled for a shape (file comment): the window, pointwise or not, the group's kind. */
function specialisation({ op }: Shape): string {
  const groupKind = op.group === 1 ? 'dense' : op.cOut / op.group < 8 ? 'narrow groups' : 'wide groups';
  return JSON.stringify([op.kh, op.kw, op.strideH, op.strideW, op.dilations, op.pads.every((p) => p === 0), groupKind]);
}

/** One shape per specialisation: the cheapest (multiply-adds), or the `preferred` shape of that specialisation. */
function perSpecialisation(all: Shape[], preferred: Shape[] = []): Shape[] {
  const macs = (s: Shape) => s.output.reduce((a, b) => a * b, 1) * (s.op.cIn / s.op.group) * s.op.kh * s.op.kw;
  const best = new Map<string, Shape>();
  for (const s of all) {
    const k = specialisation(s), b = best.get(k);
    if (!b || macs(s) < macs(b)) best.set(k, s);
  }
  for (const s of preferred) best.set(specialisation(s), s);
  return [...best.values()];
}

/** [1, C, H, W] of a conv's input or output as lowered ([1, F] for a Gemm: [1, F, 1, 1]). */
const nchw = (s: number[]) => (s.length === 2 ? [s[0], s[1], 1, 1] : s);

async function readBuffer(gpu: GpuContext, buffer: GPUBuffer, floats: number): Promise<Float32Array> {
  const staging = gpu.device.createBuffer({ size: floats * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = gpu.device.createCommandEncoder();
  enc.copyBufferToBuffer(buffer, 0, staging, 0, floats * 4);
  gpu.device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(staging.getMappedRange().slice(0));
  staging.destroy();
  return out;
}

/** Encodes and submits `dispatches` in one compute pass. */
function run(dispatches: readonly Dispatch[]): void {
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (const d of dispatches) {
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, d.bindGroup);
    pass.dispatchWorkgroups(...d.workgroups);
  }
  pass.end();
  gpu.device.queue.submit([enc.finish()]);
}

const abs = (t: Tensor) => tensor(t.shape, t.data.map(Math.abs));
const f32 = (t: Tensor) => Float32Array.from(t.data);

/** The case's seeded operands (float32 values, held as float64 for the reference) and its references. */
function prepare(s: Shape, seed: number) {
  const r = rng(seed);
  const { op } = s;
  const xs = nchw(s.input), ys = nchw(s.output);
  // float32-exact operands: the reference then computes exactly what the GPU was given.
  const round = (t: Tensor) => tensor(t.shape, Float32Array.from(t.data));
  const w = round(randomTensor([op.cOut, op.cIn / op.group, op.kh, op.kw], r));
  const b = round(randomTensor([op.cOut], r, -0.5, 0.5));
  const x = round(randomTensor(xs, r));
  const dy = round(randomTensor(ys, r));
  const p: ref.ConvParams = { strides: [op.strideH, op.strideW], pads: op.pads, dilations: op.dilations, group: op.group };
  const y = ref.conv(x, w, b, p);
  // The backward pass masks dy with the fused activation's rule on a forward output: y rounded to float32, so that the GPU
  // reads the same decisions; y > 0 for a ReLU, 0 < y < 6 for a ReLU6 (a layer that fused a Clip: MobileNetV2's, op.relu6).
  const mask = Float32Array.from(y.data);
  const dyMasked = tensor(ys, dy.data.map((v, i) => (mask[i] > 0 && !(op.relu6 && mask[i] >= 6) ? v : 0)));
  const dx = ref.convBackward(dyMasked, xs, w, p);
  return { w, b, x, dy, y, mask, dyMasked, dx, p, xs, ys };
}

/** The float32 bound per value of `variant` in `direction` (file comment). */
function bounds(s: Shape, c: ReturnType<typeof prepare>, variant: ConvVariantName, direction: Direction): Float64Array {
  const { op } = s;
  const n = direction === 'forward' ? (op.cIn / op.group) * op.kh * op.kw : (op.cOut / op.group) * op.kh * op.kw;
  const rtol = U * (n + 16);
  let m: Tensor;
  if (direction === 'forward') {
    m = variant === 'winograd' ? winogradMagnitude(abs(c.x), abs(c.w), abs(c.b), op.pads) : ref.conv(abs(c.x), abs(c.w), abs(c.b), c.p);
  } else {
    m = variant === 'winograd' ? winogradMagnitude(abs(c.dyMasked), rotateTranspose(abs(c.w)), null, gradientPads(op.pads))
      : ref.convBackward(abs(c.dyMasked), c.xs, abs(c.w), c.p);
  }
  return Float64Array.from(m.data, (v) => rtol * v);
}

/** The kernels (first part of each dispatch's name) a variant's dispatches must come from. */
const KERNELS: Record<ConvVariantName, string[]> = {
  'gemm-blocked': ['conv'], 'gemm-tiled': ['conv_tiled'], winograd: ['conv', 'winograd'], im2col: ['conv', 'im2col'], direct: ['depthwise'], gather: ['conv_gather'],
};

/**
 * Shapes no small model has, made by hand: GoogLeNet's conv1 (7×7 stride 2, 3 → 64, pads 3: the
 * gather variant's reason to be) on a small odd input, and a window with unequal strides, dilation and
 * asymmetric pads, 5 → 7 channels (neither a multiple of 4), where a stride phase holds no column
 * for some rows' taps.
 */
function handMade(name: string, input: number[], c: Pick<ConvOp, 'cOut' | 'kh' | 'kw' | 'strideH' | 'strideW' | 'pads' | 'dilations'> & { group?: number }): Shape {
  const span = (k: number, d: number) => (k - 1) * d + 1;
  const oh = windowCount(input[2], span(c.kh, c.dilations[0]), c.strideH, c.pads[0], c.pads[2]);
  const ow = windowCount(input[3], span(c.kw, c.dilations[1]), c.strideW, c.pads[1], c.pads[3]);
  const op: ConvOp = {
    kind: 'conv', name, onnxTypes: ['Conv'], inputs: ['x'], output: 'y', weight: new Float32Array(0), bias: new Float32Array(0),
    cIn: input[1], relu: false, ...c, group: c.group ?? 1,
  };
  return { op, input, output: [1, c.cOut, oh, ow], from: 'made by hand' };
}
const HAND_MADE = [
  handMade('conv1/7x7_s2', [1, 3, 27, 21], { cOut: 64, kh: 7, kw: 7, strideH: 2, strideW: 2, pads: [3, 3, 3, 3], dilations: [1, 1] }),
  handMade('odd', [1, 5, 13, 17], { cOut: 7, kh: 3, kw: 5, strideH: 2, strideW: 3, pads: [2, 0, 1, 3], dilations: [2, 1] }),
  // EfficientNet-Lite's stem window and channels (3×3 stride 4, pads 1, 3 → 8), the only layer of its
  // specialisation, on 23×18 instead of its 224×224 (the same kernels compiled, 1/120 of the work;
  // rows of 23 leave a partial stride at the bottom).
  handMade('stem/3x3_s4', [1, 3, 23, 18], { cOut: 8, kh: 3, kw: 3, strideH: 4, strideW: 4, pads: [1, 1, 1, 1], dilations: [1, 1] }),
];

let gpu: GpuContext;
const shapes = ALL ? [...distinctShapes(MODELS), ...HAND_MADE] : perSpecialisation(distinctShapes(MODELS), HAND_MADE);
const worst = new Map<string, number>();

beforeAll(async () => {
  gpu = await testGpu();
});

afterAll(() => {
  console.log(`conv variants on ${shapes.length} distinct layer shapes of ${MODELS.length} models: max |gpu − float64| / bound per variant and direction: ${
    [...worst].map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
});

describe('conv variants: each on every distinct layer shape of the generated models, against the float64 reference', () => {
  test('the shapes cover every variant in both directions where it applies', () => {
    for (const v of CONV_VARIANT_NAMES) {
      for (const d of ['forward', 'backward'] as const) {
        const count = shapes.filter((s) => applicableVariants(s.op, d).includes(v)).length;
        if ((v === 'im2col' && d === 'backward') || (v === 'gather' && d === 'forward')) expect(count, `${v} ${d}`).toBe(0);
        else expect(count, `${v} ${d}`).toBeGreaterThan(0);
      }
    }
  });

  test.each(shapes.map((s, i) => [`${describeConv(s.op)}, input ${s.input.slice(1).join('×')} (${s.from})`, s, i] as const))('%s', async (_name, s, i) => {
    const c = prepare(s, 1000 + i);
    const op: ConvOp = { ...s.op, weight: f32(c.w), bias: f32(c.b), relu: false };
    for (const direction of ['forward', 'backward'] as const) {
      for (const variant of applicableVariants(op, direction)) {
        const kop: ConvOp = direction === 'forward' ? op : { ...op, relu: true };
        const env = new KernelEnv(gpu.device, 'cpu', {}, undefined, new Map([[op.name, { forward: variant, backward: variant }]]));
        try {
          const xN = c.x.data.length, yN = c.y.data.length;
          const x = { buffer: env.scratch(xN), offset: 0, stride: xN };
          const y = { buffer: env.scratch(yN), offset: 0, stride: yN };
          const kernel = convSpec.kernel(kop, { inputs: [s.input], output: s.output });
          let dispatches, got: Float32Array, want: Float64Array;
          if (direction === 'forward') {
            gpu.device.queue.writeBuffer(x.buffer, 0, f32(c.x));
            dispatches = await kernel.forward({ env, inputs: [x], output: y, batch: 1 });
          } else {
            const dy = { buffer: env.scratch(yN), offset: 0, stride: yN };
            gpu.device.queue.writeBuffer(y.buffer, 0, c.mask);
            gpu.device.queue.writeBuffer(dy.buffer, 0, f32(c.dy));
            dispatches = await kernel.backward({ env, inputs: [x], output: y, dy, dx: [{ view: x, accumulate: false }], items: 1, maskDiv: 1 });
          }
          expect([...new Set(dispatches.map((d) => d.kernel.split('.')[0]))].sort(), `${variant} ${direction}: its kernels`).toEqual(KERNELS[variant]);
          if (variant === 'gemm-blocked') expect(dispatches.every((d) => d.kernel === `conv.${direction}.gemm`)).toBe(true);
          run(dispatches);
          if (direction === 'forward') {
            got = await readBuffer(gpu, y.buffer, yN);
            want = c.y.data;
          } else {
            got = await readBuffer(gpu, x.buffer, xN);
            want = c.dx.data;
          }
          const bound = bounds(s, c, variant, direction);
          let ratio = 0, at = -1;
          for (let k = 0; k < want.length; k++) {
            const d = Math.abs(got[k] - want[k]);
            const e = d === 0 ? 0 : Number.isNaN(d) ? Infinity : d / bound[k]; // a NaN fails; a non-zero error on a zero bound too
            if (e > ratio) [ratio, at] = [e, k];
          }
          const key = `${variant} ${direction}`;
          worst.set(key, Math.max(worst.get(key) ?? 0, ratio));
          expect(ratio, `${variant} ${direction}: at ${at} got ${got[at]}, float64 ${want[at]}, bound ${bound[at]}`).toBeLessThanOrEqual(1);
        } finally {
          env.destroy();
        }
      }
    }
  });
});

/**
 * The GPU family's tiled GEMM (shaders/conv_tiled.wgsl: 64×64 tiles in workgroup memory, split-K for
 * layers with few tiles) on the shapes where its tiling and split-K matter, beyond the layer shapes
 * above: many input channels on a small plane (split-K, as GoogLeNet's 7×7 layers), C_out not a
 * multiple of 64 over several column tiles, several position tiles, stride 2 with asymmetric pads,
 * split-K per group with dilation; a fused ReLU (forward, and the backward mask), and the data
 * gradient of K = 3 classes of one image (items 3, each masked by image item / 3, as the engine runs it).
 * (These were test/conv-tiled.test.ts's cases, run there through a Network of the GPU family with a
 * Gemm head; here the conv's own kernels alone, with the same tolerance.)
 *
 * Tolerance: |Δ| ≤ 1e-5 · (max |ref| + 1e-6) per tensor. Each value is a float32 sum of at most
 * 96·9 = 864 products, relative rounding ≲ 864·2⁻²⁴ ≈ 5e-5 of the sum of |terms| in the worst case
 * and ~√864·2⁻²⁴ ≈ 2e-6 typically; a wrong tap or a lost split is O(1/channels) ≥ 1e-3 of the max.
 */
const TILED: { name: string; input: number[]; conv: Parameters<typeof handMade>[2]; split?: true }[] = [
  { name: 'many channels on 5×5: split-K', input: [1, 96, 5, 5], conv: { cOut: 70, kh: 3, kw: 3, strideH: 1, strideW: 1, pads: [1, 1, 1, 1], dilations: [1, 1] }, split: true },
  { name: '1×1 on 7×7 with 130 channels: split-K', input: [1, 130, 7, 7], conv: { cOut: 40, kh: 1, kw: 1, strideH: 1, strideW: 1, pads: [0, 0, 0, 0], dilations: [1, 1] }, split: true },
  { name: '7×7 stride 2, pads [3,2,2,3], on 20×17', input: [1, 3, 20, 17], conv: { cOut: 19, kh: 7, kw: 7, strideH: 2, strideW: 2, pads: [3, 2, 2, 3], dilations: [1, 1] } },
  { name: '3×3 stride 1 on 18×18 (several tiles)', input: [1, 9, 18, 18], conv: { cOut: 67, kh: 3, kw: 3, strideH: 1, strideW: 1, pads: [1, 1, 1, 1], dilations: [1, 1] } },
  // Groups in the grid (z = group · SPLIT + split), per-group split-K sums; dilation.
  { name: 'group 2 (64 → 70), 3×3 dilation 2 pads 2 on 5×5: split-K per group', input: [1, 64, 5, 5],
    conv: { cOut: 70, kh: 3, kw: 3, strideH: 1, strideW: 1, pads: [2, 2, 2, 2], dilations: [2, 2], group: 2 }, split: true },
];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): [number, number] {
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return [d, m];
}

describe('gemm-tiled (the GPU variant) on its own corner cases, forward + ReLU and the data gradient of K = 3 classes, against float64', () => {
  test('the split-K choice: enough workgroups, at least 4 chunks per split', () => {
    expect(splitK(1, 54)).toEqual({ split: 11, chunksPerSplit: 5 });
    expect(splitK(300, 54)).toEqual({ split: 1, chunksPerSplit: 54 });
    expect(splitK(4, 3)).toEqual({ split: 1, chunksPerSplit: 3 });
  });

  test.each(TILED.map((t, i) => [t.name, t, i] as const))('%s', async (_name, t, i) => {
    const s = handMade(`tiled ${i}`, t.input, t.conv);
    const K = 3;
    const c = prepare(s, 100 + i);
    const relu = (v: number) => Math.max(v, 0);
    // Forward: the conv and its fused ReLU. Backward: K incoming gradients, each masked by the image's ReLU.
    const op: ConvOp = { ...s.op, weight: f32(c.w), bias: f32(c.b), relu: true };
    const r = rng(200 + i);
    const dys = Array.from({ length: K }, () => randomTensor(nchw(s.output), r)).map((d) => Float32Array.from(d.data));
    const ysN = c.y.data.length, xN = c.x.data.length;
    const dyAll = new Float64Array(K * ysN);
    dys.forEach((d, k) => d.forEach((v, j) => (dyAll[k * ysN + j] = c.mask[j] > 0 ? v : 0)));
    const dxRef = ref.convBackward(tensor([K, ...nchw(s.output).slice(1)], dyAll), [K, ...nchw(s.input).slice(1)], c.w, c.p).data;
    const env = new KernelEnv(gpu.device, 'gpu', {}, undefined, new Map([[op.name, { forward: 'gemm-tiled', backward: 'gemm-tiled' }]]));
    try {
      const x = { buffer: env.scratch(xN), offset: 0, stride: xN };
      const y = { buffer: env.scratch(ysN), offset: 0, stride: ysN };
      const dy = { buffer: env.scratch(K * ysN), offset: 0, stride: ysN };
      const dx = { buffer: env.scratch(K * xN), offset: 0, stride: xN };
      const kernel = convSpec.kernel(op, { inputs: [s.input], output: s.output });
      gpu.device.queue.writeBuffer(x.buffer, 0, f32(c.x));
      const forward = await kernel.forward({ env, inputs: [x], output: y, batch: 1 });
      const kinds = (ds: Dispatch[]) => ds.map((d) => d.kernel);
      expect(new Set(kinds(forward).map((k) => k.split('.')[0]))).toEqual(new Set(['conv_tiled']));
      run(forward);
      const [dFwd, mFwd] = maxAbsDiff(await readBuffer(gpu, y.buffer, ysN), c.y.data.map(relu));
      expect(dFwd, `forward: ${dFwd} vs max ${mFwd}`).toBeLessThanOrEqual(1e-5 * (mFwd + 1e-6));

      // The mask: the reference's y (float32) in the output buffer, as in the cases above.
      gpu.device.queue.writeBuffer(y.buffer, 0, c.mask);
      dys.forEach((d, k) => gpu.device.queue.writeBuffer(dy.buffer, k * ysN * 4, d));
      const backward = await kernel.backward({ env, inputs: [x], output: y, dy, dx: [{ view: dx, accumulate: false }], items: K, maskDiv: K });
      expect(new Set(kinds(backward).map((k) => k.split('.')[0]))).toEqual(new Set(['conv_tiled']));
      if (t.split) expect(kinds([...forward, ...backward]).some((k) => k.includes('splitk')), 'split-K ran').toBe(true);
      run(backward);
      const got = await readBuffer(gpu, dx.buffer, K * xN);
      for (let k = 0; k < K; k++) {
        const [d, m] = maxAbsDiff(got.subarray(k * xN, (k + 1) * xN), dxRef.subarray(k * xN, (k + 1) * xN));
        expect(d, `data gradient, class ${k}: ${d} vs max ${m}`).toBeLessThanOrEqual(1e-5 * (m + 1e-6));
      }
    } finally {
      env.destroy();
    }
  });
});
