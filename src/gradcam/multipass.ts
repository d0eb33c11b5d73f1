/**
 * The multi-pass CAM methods (methods.ts kinds 'score' and 'ablation'): after the first pass (the
 * forward pass, the classes chosen), their channel weights come from one more pass per channel, run
 * in batches of B on a pass engine (an Engine compiled for B images); the program's 'map' dispatch
 * then makes ReLU(Σ_k w_k A_k) from them, as for the weighted methods.
 *
 *   - scorecam (pytorch-grad-cam's ScoreCAM): per image, the range of each upsampled channel
 *     (maskRange), then per batch the masked inputs x ⊙ norm(up(A_k)) written straight into the pass
 *     engine's input on the GPU (mask), its whole forward pass, and the class scores (gather); then
 *     w = softmax over channels (softmaxWeights).
 *   - ablationcam (Desai & Ramaswamy 2020): per image, every slot of the pass engine gets the first
 *     pass's values of what the tail reads from outside it (copies: no forward runs again); then per batch the layer with one channel zeroed per slot (ablate), only the ops from the layer
 *     to the scores (the forward cone, graph/cone.ts), and the scores (gather); then
 *     w_k = (S − S_k) / S (ablationWeights). With skipZero, channels whose activations are all zero
 *     get no pass (their weight is exactly 0: zeroing them changes nothing).
 *
 * With eigen-smooth the map is the eigen kernel on w_k A_k instead (program.ts); with aug-smooth every
 * augmented copy (engine images 6n … 6n + 5) gets its own passes, and its maps are smoothed after.
 *
 * Ablation zeroes the channel, as the paper and issue 20 say; pytorch-grad-cam's AblationLayer does
 * the same when the layer's minimum is 0 (after a ReLU), and otherwise sets it to min − 1e7.
 */
import { GradcamError } from '../errors.ts';
import { backwardCone } from '../graph/cone.ts';
import { rootOf } from '../graph/deps.ts';
import { type Op, perImage } from '../graph/ir.ts';
import type { BufferView, Dispatch, KernelEnv } from '../gpu/dispatch.ts';
import { view as viewUniforms } from '../gpu/kernel.ts';
import { MULTIPASS } from '../kernels/multipass.ts';
import { chwOf } from '../image/recipes.ts';
import type { Engine } from '../runtime/engine.ts';
import { encodeStage } from '../runtime/program.ts';
import { ReadbackPlan, viewRegions } from '../runtime/readback.ts';
import { AUG_COPIES } from './aug-smooth.ts';
import { type Method, methodSpec } from './methods.ts';
import { PassRunner } from './passes.ts';
import type { GradcamProgram, LayerMaps } from './program.ts';
import type { GradcamOptions } from './types.ts';

/** Whether `m` is one of this module's methods: its weights come from one pass per channel of the layer. */
export function isChannelPasses(m: Method): boolean {
  const { kind } = methodSpec(m);
  return kind === 'score' || kind === 'ablation';
}

/** 0xffffffff: a channel without a pass (skipZero), in slotOf. */
const SKIPPED = 0xffffffff;

/** The batch size a method's passes run in: its methodOptions' batchSize, else `fallback`. */
export function passBatch(method: Method, options: GradcamOptions, fallback: number): number {
  const o = options.methodOptions as Record<string, { batchSize?: number } | undefined> | undefined;
  return o?.[method]?.batchSize ?? fallback;
}

/** Checks, before any GPU work, what the multi-pass methods cannot do. */
export function checkMultiPass(methods: readonly Method[], options: GradcamOptions): void {
  const multi = methods.filter(isChannelPasses);
  if (!multi.length) return;
  if (options.reductionLayer !== undefined) {
    throw new GradcamError(`${multi.join(', ')} score the model's class outputs; option reductionLayer ('${options.reductionLayer}') is not supported with them`,
      "Leave out reductionLayer (reduction 'logit' or 'softmax' picks the score), or use a single-pass method.");
  }
}

export interface MultiPassRun {
  /** The engine of the first pass: images 0 … images − 1 of its buffers hold their input, activations and logits. */
  first: Engine;
  /** The inputs of the run (with aug-smooth, runMultiPass runs the passes of their six copies each: 6 · images engine images). */
  images: number;
  program: GradcamProgram;
  options: GradcamOptions;
  /** The pass engine for batches of `batch` (never `first`: the passes overwrite its buffers). */
  passEngine(batch: number): Promise<Engine>;
  /** The default passes per batch (from the device's limits). */
  defaultBatch: number;
  /** Filled with each method's milliseconds (its passes at every layer, for every image). */
  byMethod?: Map<Method, number>;
}

/** Passes each multi-pass layer entry runs per image (skipZero's channels known: `lists`). */
interface Plan {
  maps: LayerMaps;
  /** Per image: the channels that get a pass, in order. */
  lists: number[][];
}

/**
 * Runs every multi-pass method's passes of `run.program` for `run.images` images and writes their
 * channel weights (LayerMaps.weights). Inside a run, after the first pass's classes are chosen.
 * Returns the milliseconds it took; rejects with AbortError when `options.signal` aborts.
 */
export async function runMultiPass(run: MultiPassRun): Promise<number> {
  const t0 = performance.now();
  const { first, program, options } = run;
  // Aug-smooth: input n is engine images 6n … 6n + 5 (aug-smooth.ts), each an input with its own passes.
  const images = run.images * (program.request.augSmooth ? AUG_COPIES : 1);
  const entries = program.layers.filter((l) => isChannelPasses(l.method));
  if (!entries.length) return 0;
  const plans: Plan[] = [];
  for (const maps of entries) plans.push({ maps, lists: await channelLists(first, maps, images, options) });
  const total = plans.reduce((a, p) => a + p.lists.reduce((b, l) => b + l.length, 0), 0);
  const device = first.gpu.device;
  const runner = new PassRunner(device, total, { signal: options.signal, onProgress: options.onProgress });
  runner.check();
  for (const plan of plans) {
    const started = performance.now();
    const batch = passBatch(plan.maps.method, options, run.defaultBatch);
    const engine = await run.passEngine(batch);
    // Uniforms and small buffers of this call: freed at its end.
    const env = engine.env.child();
    try {
      for (let n = 0; n < images; n++) await runImage({ first, engine, env, program, maps: plan.maps, image: n, channels: plan.lists[n], runner, softmax: program.request.reduction === 'softmax' });
    } finally {
      env.destroy();
    }
    run.byMethod?.set(plan.maps.method, (run.byMethod.get(plan.maps.method) ?? 0) + performance.now() - started);
  }
  return performance.now() - t0;
}

/** The channels each image's passes ablate or mask: all, or (ablationcam's skipZero) those with a non-zero activation. */
async function channelLists(first: Engine, maps: LayerMaps, images: number, options: GradcamOptions): Promise<number[][]> {
  const all = Array.from({ length: maps.channels }, (_, c) => c);
  const skipZero = maps.method === 'ablationcam' && options.methodOptions?.ablationcam?.skipZero === true;
  if (!skipZero) return Array.from({ length: images }, () => all);
  const hw = maps.shape[0] * maps.shape[1];
  const plane = maps.channels * hw;
  const { buffer, offset, stride } = maps.features;
  const read = await first.readNow(new ReadbackPlan(first.gpu.device).add('A', viewRegions(buffer, offset, stride, plane, images)));
  const a = read.f32('A');
  return Array.from({ length: images }, (_, n) => all.filter((c) => {
    for (let i = 0; i < hw; i++) if (a[n * plane + c * hw + i] !== 0) return true;
    return false;
  }));
}

async function runImage(c: {
  first: Engine; engine: Engine; env: KernelEnv; program: GradcamProgram; maps: LayerMaps; image: number; channels: number[]; runner: PassRunner; softmax: boolean;
}): Promise<void> {
  const { first, engine, env, program, maps, image, channels, runner } = c;
  const device = engine.gpu.device;
  const score = methodSpec(maps.method).kind === 'score';
  const B = engine.batch;
  const C = maps.channels;
  const K = program.request.classesPerImage;
  const P = channels.length;
  const inputName = first.graph.input.name;
  const [inC, inH, inW] = chwOf(first.inputShape, first.layout);
  const view = (v: BufferView, name: string) => viewUniforms(name, v);
  const firstInput = first.compiled.view(inputName);
  const passInput = engine.compiled.view(inputName);
  const passFeatures = engine.compiled.view(maps.layer);
  const passScores = engine.compiled.view(engine.graph.logits);
  const baseScores = first.compiled.view(first.graph.logits);
  const uniforms = {
    imageIndex: image, channels: C, mapH: maps.shape[0], mapW: maps.shape[1], inC, inH, inW, nhwc: first.layout === 'NHWC' ? 1 : 0,
    batch: B, passCount: P, classesPerImage: K, classCount: first.classCount,
    ...view(maps.features, 'features'), ...view(firstInput, 'image'), ...view(passInput, 'passInput'), ...view(passFeatures, 'passFeatures'),
    ...view(passScores, 'passScores'), ...view(baseScores, 'baseScores'),
  };
  const overrides = { SOFTMAX: c.softmax };
  const cursor = env.scratch(4, 'multipass cursor');
  const channelList = env.storage(new Uint32Array(Math.max(1, P)).map((_, p) => channels[p] ?? 0));
  const scores = env.scratch(Math.max(1, K * P), `scores ${maps.method} ${maps.layer}`);
  const at = (what: string, flops: number, shapes: string) => ({ label: `${maps.method} ${maps.layer} ${what}`, use: maps.method, opType: 'Grad-CAM', flops, shapes });
  const gather = await MULTIPASS.dispatch(env, 'gather', {
    overrides, uniforms, buffers: { cursor, classes: program.classes, passScores: passScores.buffer, scoresOut: scores },
    workgroups: MULTIPASS.groups('gather', [B, K, 1]), ...at('gather', B * K, `${B}×${K}`),
  });

  const prepare: Dispatch[] = [];
  const perBatch: Dispatch[] = [];
  let weights: Dispatch;
  let copies: ((encoder: GPUCommandEncoder) => void) | undefined;
  if (score) {
    const ranges = env.scratch(2 * C, `ranges ${maps.layer}`);
    prepare.push(await MULTIPASS.dispatch(env, 'maskRange', {
      uniforms, buffers: { features: maps.features.buffer, rangesOut: ranges },
      workgroups: MULTIPASS.groups('maskRange', [C, 1, 1]), ...at('range', 8 * C * inH * inW, `${C}×${inH}×${inW}`),
    }));
    perBatch.push(await MULTIPASS.dispatch(env, 'mask', {
      uniforms, buffers: { cursor, features: maps.features.buffer, ranges, channelList, image: firstInput.buffer, passInput: passInput.buffer },
      workgroups: MULTIPASS.groups('mask', [inH * inW, B, 1]), ...at('mask', B * inH * inW * (10 + inC), `${B}×${inC}×${inH}×${inW}`),
    }), ...engine.compiled.dispatches, gather);
    weights = await MULTIPASS.dispatch(env, 'softmaxWeights', {
      uniforms, buffers: { scores, weightsOut: maps.weights! },
      workgroups: MULTIPASS.groups('softmaxWeights', [K, 1, 1]), ...at('weights', 3 * K * C, `${K}×${C}`),
    });
  } else {
    // What the tail reads from outside it (a residual's other branch, a concat's other slices, the
    // layer itself): the first pass's values of the image, copied into every slot once.
    const tail = backwardCone(engine.graph, engine.graph.logits, [maps.layer]);
    const sides = sideInputs(engine, tail, maps.layer);
    copies = (encoder) => {
      for (const name of sides) {
        const from = first.compiled.view(name);
        const to = engine.compiled.view(name);
        const bytes = perImage(first.graph.tensors.get(name)!) * 4;
        for (let s = 0; s < B; s++) encoder.copyBufferToBuffer(from.buffer, (image * from.stride + from.offset) * 4, to.buffer, (s * to.stride + to.offset) * 4, bytes);
      }
    };
    perBatch.push(await MULTIPASS.dispatch(env, 'ablate', {
      uniforms, buffers: { cursor, features: maps.features.buffer, channelList, passFeatures: passFeatures.buffer },
      workgroups: MULTIPASS.groups('ablate', [C * maps.shape[0] * maps.shape[1], B, 1]), ...at('ablate', 0, `${B}×${C}×${maps.shape[0]}×${maps.shape[1]}`),
    }), ...tail.flatMap((op) => engine.compiled.opDispatches.get(op)!), gather);
    const slotOf = env.storage(new Uint32Array(C).fill(SKIPPED).map((v, ch) => {
      const p = channels.indexOf(ch);
      return p < 0 ? v : p;
    }));
    weights = await MULTIPASS.dispatch(env, 'ablationWeights', {
      overrides, uniforms, buffers: { classes: program.classes, baseScores: baseScores.buffer, slotOf, scores, weightsOut: maps.weights! },
      workgroups: MULTIPASS.groups('ablationWeights', [C, K, 1]), ...at('weights', 3 * K * C, `${C}×${K}`),
    });
  }

  const encoder = device.createCommandEncoder({ label: `${maps.method} prepare` });
  copies?.(encoder);
  encodeStage(encoder, `${maps.method} prepare`, prepare);
  device.queue.submit([encoder.finish()]);
  await runner.run({
    method: maps.method, passes: P, batch: B,
    encode(enc, firstPass) {
      device.queue.writeBuffer(cursor, 0, new Uint32Array([firstPass]));
      encodeStage(enc, `${maps.method} passes`, perBatch);
    },
  });
  const done = device.createCommandEncoder({ label: `${maps.method} weights` });
  encodeStage(done, `${maps.method} weights`, [weights]);
  device.queue.submit([done.finish()]);
}

/**
 * The tensors the ops of `tail` read that no op of it writes (by storage root): the rest of the
 * network's values the forward from `layer` needs, the layer included.
 */
function sideInputs(engine: Engine, tail: readonly Op[], layer: string): string[] {
  const { graph } = engine;
  const written = new Set(tail.map((op) => rootOf(graph, op.output)));
  const names = new Set([layer, ...tail.flatMap((op) => op.inputs)]);
  return [...names].filter((n) => graph.tensors.has(n) && !written.has(rootOf(graph, n)));
}
