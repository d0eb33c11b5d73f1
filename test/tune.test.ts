/**
 * Conv variants chosen by name (`variant`, `plan`) and by measurement (`tune`, src/runtime/tune.ts)
 * on the small model (test/helpers/small-model.ts: 3×3, 1×1 and 3×3 convolutions and a Gemm): what
 * each layer runs, what is refused and how, and that a tuned plan is measured once, kept in its
 * store (files in a temporary cache here) and taken by a later load with no timing at all. The
 * variants' numbers against the float64 reference are test/conv-variants.test.ts's.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { GradcamError } from '../src/errors.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import { Network } from '../src/gradcam/network.ts';
import { encodeNpy } from '../src/image/npy.ts';
import { applicableVariants, convLowering, type ConvVariantName, parsePlan } from '../src/kernels/variants.ts';
import { FilePlanStore } from '../src/node/plan-files.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import type { ConvOp } from '../src/ops/conv.ts';
import type { TunedPlan } from '../src/runtime/plan-store.ts';
import { KEEP_DEFAULT_WITHIN, modelDigest, planKey, planLayerName, sha256Hex, tuneCounters, type TuneProgress, tuneWork } from '../src/runtime/tune.ts';
import { expectExit, gradcam, inParallel, ROOT } from './helpers/cli.ts';
import { testGpu } from './helpers/gpu.ts';
import { SMALL_SHAPE, smallModel } from './helpers/small-model.ts';
import { buildModel, ints, node, weight } from './reference/models.ts';
import { randomTensor, rng } from './reference/tensor.ts';

const model = smallModel(5, 'flatten');
const input = { shape: SMALL_SHAPE, data: Float32Array.from({ length: SMALL_SHAPE.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.37)) };
const dir = mkdtempSync(join(tmpdir(), 'gradcam-tune-'));
let gpu: GpuContext;

beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const convsOf = (net: Network) => net.graph.ops.filter((op): op is ConvOp => op.kind === 'conv');

/** The kernels (first part of each dispatch's name) of a layer's forward dispatches. */
const forwardKernels = (net: Network, layer: string) => [...new Set(net.engine.forwardDispatches.filter((d) => d.label === layer).map((d) => d.kernel.split('.')[0]))].sort();
const KERNELS: Record<ConvVariantName, string[]> = {
  'gemm-blocked': ['conv'], 'gemm-tiled': ['conv_tiled'], winograd: ['conv', 'winograd'], im2col: ['conv', 'im2col'], direct: ['depthwise'], gather: ['conv_gather'],
};

describe('conv variants by name', () => {
  test('variant: that variant on every layer and direction where it applies, the fixed rules elsewhere; the forward dispatches are its kernels', async () => {
    for (const variant of ['gemm-tiled', 'winograd'] as const) {
      const net = await Network.load(gpu, model, { variant });
      try {
        for (const op of convsOf(net)) {
          for (const d of ['forward', 'backward'] as const) {
            const want = applicableVariants(op, d).includes(variant) ? variant : convLowering(op, 'cpu', d);
            expect(net.engine.env.choices.get(op.name)?.[d], `${variant}: ${op.name} ${d}`).toBe(want);
          }
          expect(forwardKernels(net, op.name), op.name).toEqual(KERNELS[net.engine.env.choices.get(op.name)!.forward as ConvVariantName]);
        }
        // The 3×3 stride-1 layers are Winograd's: the choice reached them.
        if (variant === 'winograd') expect(convsOf(net).filter((op) => net.engine.env.choices.get(op.name)!.forward === 'winograd').length).toBe(2);
      } finally {
        net.destroy();
      }
    }
  });

  test('plan: per layer and direction, over the fixed rules', async () => {
    const fixed = await Network.load(gpu, model);
    const [first, second] = convsOf(fixed);
    // The first layer by its Conv node's name alone, the second by its op name (fused ops joined by '+').
    expect(first.name).toContain('+');
    const planned = await Network.load(gpu, model, { plan: { [first.name.split('+')[0]]: { forward: 'gemm-tiled' }, [second.name]: { backward: 'gemm-tiled' } } });
    try {
      expect(planned.engine.env.choices.get(first.name)).toEqual({ forward: 'gemm-tiled', backward: convLowering(first, 'cpu', 'backward') });
      expect(planned.engine.env.choices.get(second.name)).toEqual({ forward: convLowering(second, 'cpu', 'forward'), backward: 'gemm-tiled' });
      expect(forwardKernels(planned, first.name)).toEqual(['conv_tiled']);
    } finally {
      fixed.destroy();
      planned.destroy();
    }
  });

  test('refused: an unknown variant, a plan naming an unknown layer, or a variant where it does not apply; malformed plan files', async () => {
    const err = async (p: Promise<unknown>) => {
      const e = await p.then(() => undefined, (x: unknown) => x);
      expect(e).toBeInstanceOf(GradcamError);
      return (e as GradcamError).message;
    };
    expect(await err(Network.load(gpu, model, { variant: 'fastest' as ConvVariantName }))).toBe("unknown kernel variant 'fastest'");
    expect(await err(Network.load(gpu, model, { plan: { nosuch: { forward: 'gemm-blocked' } }, planSource: 'p.json' }))).toBe("p.json: layer 'nosuch' is not a convolution of this model");
    const fixed = await Network.load(gpu, model);
    const pointwise = convsOf(fixed).find((op) => op.kh === 1 && op.kw === 1)!;
    fixed.destroy();
    expect(await err(Network.load(gpu, model, { plan: { [pointwise.name]: { forward: 'winograd' } }, planSource: 'p.json' })))
      .toMatch(new RegExp(`^p\\.json: layer '${pointwise.name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}' forward: variant 'winograd' does not apply to a 1×1/1 convolution`));
    expect(await err(Network.load(gpu, model, { variant: 'winograd', tune: true }))).toMatch(/tune chooses every conv layer's variant/);
    expect(() => parsePlan('[1]', 'p.json')).toThrow('p.json: expected a JSON object of layers, got an array');
    expect(() => parsePlan('{"a": {"forward": "fast"}}', 'p.json')).toThrow(`p.json: layer 'a' forward: unknown variant "fast"`);
    expect(() => parsePlan('{"a": {"sideways": "winograd"}}', 'p.json')).toThrow(`p.json: layer 'a': unknown key 'sideways'`);
    expect(() => parsePlan('{"a": ', 'p.json')).toThrow(/^p\.json: not JSON/);
  });
});

describe('tune', () => {
  test('measures every applicable variant on every distinct shape once, keeps the fastest, stores the plan; a second load takes it with no timing', async () => {
    const store = new FilePlanStore(join(dir, 'cache', 'plans'));
    const before = tuneCounters.timedSubmissions;
    const progress: TuneProgress[] = [];
    const a = await Network.load(gpu, model, { tune: { store, onProgress: (p) => progress.push(p) } });
    const timed = tuneCounters.timedSubmissions - before;
    try {
      expect(a.tuning?.source).toBe('measured');
      expect(timed).toBeGreaterThan(0);
      const work = tuneWork(a.graph, a.engine.env.variant);
      expect(progress.map((p) => p.done)).toEqual(work.map((_, i) => i + 1));
      expect(progress.every((p) => p.total === work.length)).toBe(true);
      const { plan, timings } = a.tuning!.tuned;
      expect(timings.length).toBe(work.length);
      for (const op of convsOf(a)) {
        for (const d of ['forward', 'backward'] as const) {
          const mine = timings.filter((t) => t.layers.includes(op.name) && t.direction === d);
          expect(mine.map((t) => t.variant).sort(), `${op.name} ${d}`).toEqual(applicableVariants(op, d).sort());
          // The fastest, the fixed rules' variant winning within KEEP_DEFAULT_WITHIN.
          const fixed = convLowering(op, a.engine.env.variant, d);
          const score = (t: { variant: string; ms: number }) => (t.variant === fixed ? t.ms * (1 - KEEP_DEFAULT_WITHIN) : t.ms);
          const chosen = mine.find((t) => t.variant === plan[planLayerName(op.name)][d])!;
          expect(mine.every((t) => score(chosen) <= score(t)), `${op.name} ${d}: ${JSON.stringify(mine)}`).toBe(true);
          expect(a.engine.env.choices.get(op.name)?.[d]).toBe(plan[planLayerName(op.name)][d]);
        }
        expect(forwardKernels(a, op.name)).toEqual(KERNELS[plan[planLayerName(op.name)].forward!]);
      }
      // The file: JSON, its key the adapter's, the model's SHA-256, the input and the engine version.
      const files = readdirSync(join(dir, 'cache', 'plans'));
      expect(files).toHaveLength(1);
      const stored = JSON.parse(readFileSync(join(dir, 'cache', 'plans', files[0]), 'utf8'));
      expect(stored.key).toEqual(await planKey(gpu, model, a.graph));
      expect(stored.key.model).toMatch(/^[0-9a-f]{64}$/);
      expect(stored.key.engine.version).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
      expect(stored.plan).toEqual(plan);

      const b = await Network.load(gpu, model, { tune: { store } });
      try {
        expect(tuneCounters.timedSubmissions - before, 'timing submissions after the second load').toBe(timed);
        expect(b.tuning?.source).toBe('cache');
        expect(b.tuning?.tuned.plan).toEqual(plan);
        // The same kernels on the same input: the same logits, bit for bit.
        expect((await b.classify(input)).logits).toEqual((await a.classify(input)).logits);
      } finally {
        b.destroy();
      }
      // Another model (other weights, same shapes) has its own key.
      expect(await modelDigest(smallModel(6, 'flatten'))).not.toBe(stored.key.model);
    } finally {
      a.destroy();
    }
  });

  test('a plan is per batch size: tuned at the load\'s batch and at batchSizes, each under its own key; an engine of B images takes the plan of the largest tuned size ≤ B, with no timing', async () => {
    // The first test's store: its batch-1 plan is taken from there (measured here when this test runs alone); batch 2 is measured.
    const store = new FilePlanStore(join(dir, 'cache', 'plans'));
    const before = tuneCounters.timedSubmissions;
    const batchOf = new Map<number, number>();
    const a = await Network.load(gpu, model, { tune: { store, batchSizes: [2], onProgress: (p) => batchOf.set(p.batch, p.done) } });
    const batchEngine = (net: Network, b: number) => (net as unknown as { batchEngines: Map<number, Network['engine']> }).batchEngines.get(b)!;
    try {
      expect([...a.tunings.keys()].sort()).toEqual([1, 2]);
      const family = a.engine.env.variant;
      expect(a.tunings.get(2)!.source).toBe('measured');
      for (const b of [1, 2]) {
        const t = a.tunings.get(b)!;
        expect(t.tuned.key.input).toEqual([b, ...SMALL_SHAPE.slice(1)]);
        expect(t.tuned.key).toEqual(await planKey(gpu, model, a.graph, b));
        // Every applicable variant on every distinct shape, measured with b images.
        expect(t.tuned.timings.length).toBe(tuneWork(a.graph, family, b).length);
        if (t.source === 'measured') expect(batchOf.get(b)).toBe(t.tuned.timings.length);
        expect(t.tuned.timings.every((m) => (b === 1 ? !/images/.test(m.shape) : m.shape.endsWith(`× ${b} images`)))).toBe(true);
      }
      expect(a.tuning).toBe(a.tunings.get(1));
      expect([1, 2, 3, 4, 8].map((b) => a.planFor(b).tunedAt)).toEqual([1, 2, 2, 2, 2]);
      const timed = tuneCounters.timedSubmissions - before;
      expect(timed).toBeGreaterThan(0);

      // Batches of 2 and of 4: engines of those sizes, each running its plan's variants; nothing timed.
      const inputs = [0, 1, 2, 3].map((k) => ({ shape: SMALL_SHAPE, data: input.data.map((v, i) => Math.sin(v + k + i * 0.01)) }));
      await a.classify(inputs, { batchSize: 2 });
      await a.classify(inputs, { batchSize: 4 });
      const plan2 = a.tunings.get(2)!.tuned.plan;
      for (const b of [2, 4]) {
        for (const op of convsOf(a)) expect(batchEngine(a, b).env.choices.get(op.name), `batch ${b}: ${op.name}`).toEqual(plan2[planLayerName(op.name)]);
      }
      expect(tuneCounters.timedSubmissions - before, 'timing submissions after batched runs').toBe(timed);

      // A later load takes both plans from the store (no timing); a plan stored for batch 2 that differs
      // from batch 1's (gemm-tiled forward everywhere, set by hand here) is what batch-2 engines run.
      const tiled: TunedPlan = { ...a.tunings.get(2)!.tuned, plan: Object.fromEntries(Object.entries(plan2).map(([l, p]) => [l, { ...p, forward: 'gemm-tiled' }])) };
      await store.put(await sha256Hex(JSON.stringify(tiled.key)), tiled);
      const b = await Network.load(gpu, model, { tune: { store, batchSizes: [2] } });
      try {
        expect([...b.tunings.values()].map((t) => t.source)).toEqual(['cache', 'cache']);
        expect(b.engine.env.choices.get(convsOf(b)[0].name)).toEqual(a.tunings.get(1)!.tuned.plan[planLayerName(convsOf(b)[0].name)]);
        await b.classify(inputs, { batchSize: 2 });
        for (const op of convsOf(b)) expect(batchEngine(b, 2).env.choices.get(op.name)!.forward).toBe('gemm-tiled');
        expect(tuneCounters.timedSubmissions - before, 'timing submissions after the second load').toBe(timed);
      } finally {
        b.destroy();
      }
      // A Grad-CAM at the first conv's own output (before its ReLU) re-lowers the graph with that ReLU
      // unfused, so the op's name changes; the plan names layers by their Conv node, so it still applies.
      const fused = convsOf(a)[0].name;
      expect(fused).toContain('+');
      await a.gradCAM(input, { featureLayers: 'c1' });
      const unfused = convsOf(a)[0];
      expect(unfused.name).toBe(planLayerName(fused));
      expect(a.engine.env.choices.get(unfused.name)).toEqual(a.tunings.get(1)!.tuned.plan[unfused.name]);
      // Refused before any work: a batch size that is none.
      await expect(Network.load(gpu, model, { tune: { store, batchSizes: [0] } })).rejects.toThrow('tune.batchSizes: 0 is not a batch size');
    } finally {
      a.destroy();
    }
  });

  test('CLI: --variant and --plan are checked before any work (exit 2, exit 1 naming the file); --tune measures once, a second run takes the plan from the cache', async () => {
    // The CLI (dist/gradcam.mjs) is built by the global setup (test/helpers/global-setup.ts). Its
    // tuning runs on the smallest model with a choice: one 1×1 conv (forward gemm-blocked, gemm-tiled;
    // data gradient gemm-blocked, gemm-tiled, gather: 5 measurements, each variant compiled in the
    // child process), then GAP → Flatten; the small model's 4 layers are tuned in-process above.
    const r = rng(8);
    const tiny = buildModel({
      inputs: { x: [1, 3, 6, 5] },
      outputs: ['logits'],
      weights: [weight('w', randomTensor([4, 3, 1, 1], r)), weight('b', randomTensor([4], r))],
      nodes: [node('Conv', ['x', 'w', 'b'], ['c'], { kernel_shape: ints([1, 1]) }), node('GlobalAveragePool', ['c'], ['g']), node('Flatten', ['g'], ['logits'])],
    });
    const onnx = join(dir, 'tiny.onnx'), npy = join(dir, 'x.npy'), bad = join(dir, 'bad-plan.json');
    writeFileSync(onnx, encodeOnnx(tiny));
    writeFileSync(npy, encodeNpy([1, 3, 6, 5], Float32Array.from({ length: 90 }, (_, i) => Math.sin(i * 0.37))));
    writeFileSync(bad, '{"conv1": {"forward": "fastest"}}');
    const env = { ...process.env, GRADCAM_CACHE: join(dir, 'cli-cache') };
    // The refusals end before the GPU starts: side by side.
    const [usage, planErr] = await inParallel([['--variant', 'fastest'], ['--plan', bad]], (a) => gradcam(['classify', npy, '--model', onnx, ...a], 60_000, env));
    expectExit(usage, 2);
    expect(usage.stderr).toMatch(/--variant takes a conv variant \(gemm-blocked, gemm-tiled, winograd, im2col, direct, gather\) or a kernel family \(cpu, gpu\), got 'fastest'/);
    expectExit(planErr, 1);
    expect(planErr.stderr).toContain(`${bad}: layer 'conv1' forward: unknown variant "fastest"`);
    const first = await gradcam(['classify', npy, '--model', onnx, '--tune'], 300_000, env);
    expectExit(first, 0);
    expect(first.stderr).toMatch(/conv variants: tuned 1 layers \(5 measurements, (GPU timestamps|wall time)\), kept in .*cli-cache\/plans\/[0-9a-f]{64}\.json/);
    const second = await gradcam(['classify', npy, '--model', onnx, '--tune'], 300_000, env);
    expectExit(second, 0);
    expect(second.stderr).toContain(`conv variants: the tuned plan for this GPU and model (1 layers), from ${join(dir, 'cli-cache', 'plans')}`);
    expect(second.stderr).not.toMatch(/measurements/);
    expect(readdirSync(join(dir, 'cli-cache', 'plans'))).toHaveLength(1);
    // The same plan, the same kernels: the same table.
    expect(second.stdout).toBe(first.stdout);
  });
});
