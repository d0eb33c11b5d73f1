/**
 * The input attributions (methods.ts kinds 'input', 'input-passes' and 'occlusion'): maps at the
 * input's resolution (shaders/attribution.wgsl has the formulas).
 *
 *   - 'input' (saliency, input-x-gradient): one plain backward pass from the score to the input,
 *     inside the Grad-CAM program (inputMaps, next to the guided methods' guided pass);
 *   - 'input-passes' (smoothgrad, integrated-gradients): many forward + backward passes on perturbed
 *     copies of the input, B at a time on an engine compiled for a batch of B (each slot one copy,
 *     made on the GPU from the input the first pass ran on), their input gradients summed on the GPU
 *     (accumulate), then one `attributeInput` step; integrated gradients' path includes both ends (the
 *     trapezoid rule): x' + (j/m)(x − x') for j < m on the pass engine, and x itself, whose gradient the
 *     first pass computes (its plain backward pass to the input: m passes, not m + 1); the ends' scores
 *     give the completeness gap;
 *   - 'occlusion': many forwards, one occluding window per slot; each window's score drop kept on
 *     the GPU, the map made from them at the end.
 * The many-pass methods run inside the call's run, after the first pass chose the classes (they read
 * them, and the input, from its buffers), through the runner (passes.ts), on a pass engine (never the
 * first pass's); their maps are entries of the Grad-CAM program, read back with the rest.
 */
import { GradcamError } from '../errors.ts';
import { checked, type Dispatch } from '../gpu/dispatch.ts';
import { view as viewUniforms } from '../gpu/kernel.ts';
import { type Graph, type Op, perImage } from '../graph/ir.ts';
import { chwOf, preprocessPixel } from '../image/recipes.ts';
import { ATTRIBUTION, PERTURB } from '../kernels/attribution.ts';
import { GRADCAM } from '../kernels/gradcam.ts';
import type { OpKernel } from '../kernels/types.ts';
import type { BufferView } from '../gpu/dispatch.ts';
import { compileBackward, type BackwardProgram } from '../runtime/backward.ts';
import type { Engine } from '../runtime/engine.ts';
import { encodeStage } from '../runtime/program.ts';
import { extraPasses, INTEGRATED_GRADIENTS_DEFAULTS, occlusionSettings, SMOOTHGRAD_DEFAULTS } from './attribution-options.ts';
import { methodSpec, type Method } from './methods.ts';
import type { MultiPassRun } from './multipass.ts';
import { PassRunner } from './passes.ts';
import { GradcamProgram, type LayerMaps, type ProgramRequest } from './program.ts';
import type { GradcamOptions, MethodOptions } from './types.ts';

// ───────────────────────────── one backward pass: saliency, input-x-gradient ─────────────────────────────

/** The plain backward pass to the input and its seed (−1 for the counterfactual). */
export interface InputBackward {
  seed: Dispatch;
  backward: BackwardProgram;
}

/**
 * The 'input' methods of a Grad-CAM program: a plain backward pass from the score to the input (no
 * guided override), then per method its dispatch, appended to `layers` as an entry at the input:
 * saliency's map is [H, W] (`planes` 1), input-x-gradient's [C, H, W] signed (`rgb`, `planes` C,
 * `raw` Σ_c |·| for display, as the guided maps).
 */
export async function inputMaps(c: {
  engine: Engine; graph: Graph; kernels: Map<Op, OpKernel>; view: (n: string) => BufferView; score: string; req: ProgramRequest;
  classes: GPUBuffer; layers: LayerMaps[]; common: { items: number; classesPerImage: number }; methods: Method[];
}): Promise<InputBackward> {
  const { engine, graph, score, req, common, layers } = c;
  const { env } = engine;
  const { items } = common;
  const input = engine.graph.input.name;
  const backward = await compileBackward({ graph, env, kernels: c.kernels, view: c.view }, { score, features: [input], classesPerImage: req.classesPerImage });
  const classCount = perImage(graph.tensors.get(score)!);
  const seed = await GRADCAM.dispatch(env, 'seed', {
    uniforms: { ...common, classCount, seedValue: req.counterfactual ? -1 : 1, ...viewUniforms('scoreGrad', backward.scoreGrad) },
    buffers: { classes: c.classes, scoreGrad: backward.scoreGrad.buffer },
    workgroups: GRADCAM.groups('seed', [classCount, items, 1]),
    label: 'gradcam.seed input', opType: 'Grad-CAM', flops: 0, shapes: `${items}×${classCount}`,
  });
  const g = backward.featureGrads.get(input)!;
  // x and its gradient are in the input's layout (the kernels' nhwc); the maps are [C, H, W] either way.
  const [C, H, W] = chwOf(engine.graph.input.shape, engine.layout);
  const hw = H * W;
  const x = engine.compiled.view(input);
  const geometry = { ...common, classOffset: 0, channels: C, hw, width: W, nhwc: engine.layout === 'NHWC' ? 1 : 0, ...viewUniforms('inputGrad', g), ...viewUniforms('x', x) };
  const info = { opType: 'Grad-CAM', shapes: `${items}×${C}×${H}×${W}` };
  for (const method of c.methods.filter((m) => methodSpec(m).kind === 'input')) {
    const raw = env.scratch(items * hw, `map ${method}`);
    const entry: LayerMaps = { layer: input, method, shape: [H, W], channels: C, raw, signed: raw, dispatches: [], features: x, gradients: g, rgb: raw, planes: 1 };
    if (method === 'saliency') {
      entry.dispatches.push(await ATTRIBUTION.dispatch(env, 'saliency', {
        uniforms: geometry, buffers: { inputGrad: g.buffer, maps: raw },
        workgroups: ATTRIBUTION.groups('saliency', [hw, items, 1]), label: `${method} ${input}`, use: method, flops: 2 * items * C * hw, ...info,
      }));
    } else {
      entry.rgb = env.scratch(items * C * hw, `attribution ${method}`);
      entry.planes = C;
      entry.dispatches.push(await ATTRIBUTION.dispatch(env, 'attributeInput', {
        overrides: { TIMES_INPUT: true }, uniforms: { ...geometry, scale: 1 },
        buffers: { inputGrad: g.buffer, x: x.buffer, baseline: env.dummy, out: entry.rgb, maps: raw },
        workgroups: ATTRIBUTION.groups('attributeInput', [hw, items, 1]), label: `${method} ${input}`, use: method, flops: 4 * items * C * hw, ...info,
      }));
    }
    layers.push(entry);
  }
  return { seed, backward };
}

// ───────────────────────────── many passes: smoothgrad, integrated gradients, occlusion ─────────────────────────────

/** The kinds made here from many passes. */
export function isInputPasses(m: Method): boolean {
  const { kind } = methodSpec(m);
  return kind === 'input-passes' || kind === 'occlusion';
}

/**
 * The many-pass methods' entries of a Grad-CAM program, at the input: buffers for all items, filled
 * by runInputPasses (their dispatches run there, so `dispatches` is empty). smoothgrad and
 * integrated-gradients: [C, H, W] signed (`rgb`, `planes` C, `raw` Σ_c |·|); occlusion: [H, W].
 * integrated-gradients also keeps y(x') and y(x) per item (`ends`), for its completeness gap.
 */
export function passMaps(c: { engine: Engine; items: number; layers: LayerMaps[]; methods: Method[] }): void {
  const { engine, items } = c;
  const { env } = engine;
  const input = engine.graph.input.name;
  const x = engine.compiled.view(input);
  const [C, H, W] = chwOf(engine.graph.input.shape, engine.layout);
  const hw = H * W;
  for (const method of c.methods.filter(isInputPasses)) {
    const raw = env.scratch(items * hw, `map ${method}`);
    const entry: LayerMaps = { layer: input, method, shape: [H, W], channels: C, raw, signed: raw, dispatches: [], features: x, gradients: x, rgb: raw, planes: 1 };
    if (methodSpec(method).kind === 'input-passes') {
      entry.rgb = env.scratch(items * C * hw, `attribution ${method}`);
      entry.planes = C;
    }
    if (method === 'integrated-gradients') entry.ends = env.scratch(items * 2, `${method} y(x'), y(x)`);
    c.layers.push(entry);
  }
}

/** The passes one image of `method` runs on the pass engine (integrated gradients: m, the trapezoid rule's points but x). */
export function inputPassCount(method: Method, input: readonly [number, number, number], options?: MethodOptions): number {
  return extraPasses(method, input, options);
}

/**
 * Batches of at most `limit` passes, as even as they come (33 passes at 16: 3 × 11, not 16 + 16 + 1:
 * each batch costs its full size); the batch size asked for, when given.
 */
export function batchFor(passes: number, limit: number, asked?: number): number {
  if (asked !== undefined) return Math.max(1, Math.min(asked, passes));
  const batches = Math.ceil(passes / Math.max(1, limit));
  return Math.ceil(passes / batches);
}

/** The pass programs (a plain backward pass to the input) of each pass engine, by request. */
const passPrograms = new WeakMap<Engine, Map<string, Promise<GradcamProgram>>>();

function passProgram(engine: Engine, request: ProgramRequest): Promise<GradcamProgram> {
  let byKey = passPrograms.get(engine);
  if (!byKey) passPrograms.set(engine, byKey = new Map());
  const key = JSON.stringify([request.classesPerImage, request.reduction, request.counterfactual]);
  let p = byKey.get(key);
  if (!p) {
    p = GradcamProgram.create(engine, request);
    byKey.set(key, p);
  }
  return p;
}

/**
 * Runs the many-pass input attributions of `run.program` for `run.images` images: per method and
 * image, its passes in batches on the pass engine, then its map into the program's buffers (read back
 * with the rest of the run). Inside a run, after the first pass chose the classes. Returns the
 * milliseconds it took; rejects with AbortError when the signal aborts (between batches).
 */
export async function runInputPasses(run: MultiPassRun): Promise<number> {
  const t0 = performance.now();
  const entries = run.program.layers.filter((l) => isInputPasses(l.method));
  if (!entries.length) return 0;
  const [C, H, W] = chwOf(run.first.graph.input.shape, run.first.layout);
  const total = run.images * entries.reduce((a, l) => a + inputPassCount(l.method, [C, H, W], run.options.methodOptions), 0);
  const runner = new PassRunner(run.first.gpu.device, total, { signal: run.options.signal, onProgress: run.options.onProgress });
  runner.check();
  for (const entry of entries) {
    const started = performance.now();
    for (let n = 0; n < run.images; n++) await runImage(run, entry, n, runner);
    run.byMethod?.set(entry.method, (run.byMethod.get(entry.method) ?? 0) + performance.now() - started);
  }
  return performance.now() - t0;
}

/**
 * Checks, before any GPU work, what the input attributions cannot do: a score other than the class
 * outputs (reductionLayer), an occlusion window larger than the input.
 */
export function checkInputAttributions(methods: readonly Method[], options: GradcamOptions, engine: Engine): void {
  const input = methods.filter((m) => ['input', 'input-passes', 'occlusion'].includes(methodSpec(m).kind));
  if (!input.length) return;
  const many = input.filter(isInputPasses);
  if (many.length && options.reductionLayer !== undefined) {
    throw new GradcamError(`${many.join(', ')} score the model's class outputs; option reductionLayer ('${options.reductionLayer}') is not supported with them`,
      "Leave out reductionLayer (reduction 'logit' or 'softmax' picks the score), or use a single-pass method.");
  }
  if (input.includes('occlusion')) {
    const [, H, W] = chwOf(engine.graph.input.shape, engine.layout);
    occlusionSettings(options.methodOptions?.occlusion, H, W);
  }
}

/**
 * integrated-gradients' completeness (Sundararajan et al. 2017) for item b: Σ of its attributions
 * (`raw`, C × H × W), y(x') and y(x) (`ends`, from the path's ends), and the gap Σ − (y(x) − y(x'))
 * (with the counterfactual the score is −y).
 */
export function completeness(raw: Float32Array, ends: Float32Array, b: number, counterfactual: boolean): { sum: number; score: number; baselineScore: number; gap: number } {
  let sum = 0;
  for (const v of raw) sum += v;
  const baselineScore = ends[2 * b], score = ends[2 * b + 1];
  return { sum, score, baselineScore, gap: sum - (counterfactual ? -1 : 1) * (score - baselineScore) };
}

async function runImage(run: MultiPassRun, entry: LayerMaps, image: number, runner: PassRunner): Promise<void> {
  const { first, program, options } = run;
  const method = entry.method;
  const o = options.methodOptions;
  const [C, H, W] = chwOf(first.graph.input.shape, first.layout);
  const nhwc = first.layout === 'NHWC' ? 1 : 0;
  const hw = H * W;
  const n = C * hw;
  const K = program.request.classesPerImage;
  const items = program.items;
  // The passes run here; integrated gradients' path has one point more, x itself, whose gradient and
  // score the first pass has (its plain backward pass to the input): `points` = m + 1, `passes` = m.
  const passes = inputPassCount(method, [C, H, W], o);
  const points = method === 'integrated-gradients' ? passes + 1 : passes;
  const gradients = methodSpec(method).kind === 'input-passes';
  const asked = (o as Record<string, { batchSize?: number } | undefined> | undefined)?.[method]?.batchSize;
  const B = batchFor(passes, run.defaultBatch, asked);
  const engine = await run.passEngine(B);
  const device = engine.gpu.device;
  const env = engine.env.child(); // this call's uniforms and small buffers, freed at its end
  try {
    const input = engine.graph.input.name;
    const passInput = engine.compiled.view(input);
    const x = first.compiled.view(first.graph.input.name);
    const sign = program.request.counterfactual ? -1 : 1;
    const softmax = program.request.reduction === 'softmax';
    const geometry = { channels: C, hw, width: W, nhwc, classesPerImage: K, classOffset: image * K, passes: points, xOffset: image * x.stride + x.offset, xStride: x.stride };
    const at = (what: string, flops: number) => ({ label: `${method} ${what}`, use: method, opType: 'Grad-CAM', flops, shapes: `${B}×${C}×${H}×${W}` });

    const ig = o?.['integrated-gradients'];
    let baseline = env.dummy;
    if (method === 'integrated-gradients') {
      const values = new Float32Array(n);
      if ((ig?.baseline ?? INTEGRATED_GRADIENTS_DEFAULTS.baseline) === 'black') {
        const black = preprocessPixel(first.recipe, [0, 0, 0]);
        // In the input's layout, as x (NHWC: pixel by pixel).
        for (let ch = 0; ch < C; ch++) {
          for (let i = 0; i < hw; i++) values[nhwc ? i * C + ch : ch * hw + i] = black[Math.min(ch, 2)];
        }
      }
      baseline = env.storage(values);
    }
    const sg = o?.smoothgrad;
    const occ = method === 'occlusion' ? occlusionSettings(o?.occlusion, H, W) : undefined;
    const range = env.scratch(1, `${method} range`);
    const prepare: Dispatch[] = [];
    if (method === 'smoothgrad') {
      prepare.push(await ATTRIBUTION.dispatch(env, 'range', { uniforms: geometry, buffers: { x: x.buffer, rangeOut: range }, workgroups: [1, 1, 1], ...at('range', 2 * n) }));
    }
    const perturb = {
      ...geometry, ...viewUniforms('input', passInput), slots: B,
      sigma: sg?.sigma ?? SMOOTHGRAD_DEFAULTS.sigma, seed: sg?.seed ?? SMOOTHGRAD_DEFAULTS.seed,
      fill: occ?.fill ?? 0, patchSize: occ?.patch ?? 1, step: occ?.stride ?? 1, windowsX: occ?.windowsX ?? 1,
    };
    const mode = method === 'smoothgrad' ? PERTURB.smoothgrad : method === 'integrated-gradients' ? PERTURB.path : PERTURB.occlusion;
    const scores = method === 'smoothgrad' ? undefined : env.scratch(items * points, `${method} scores`);
    const acc = gradients ? env.scratch(K * n, `${method} sum of gradients`) : undefined;
    const passScores = engine.compiled.view(engine.graph.logits);

    // The pass program: a plain backward pass to the input, every slot's classes the image's.
    const backward = gradients ? await passProgram(engine, { layers: [], classesPerImage: K, reduction: program.request.reduction, methods: ['saliency'], counterfactual: program.request.counterfactual }) : undefined;
    if (backward) backward.writeClasses(new Array(B * K).fill(0)); // explicit classes: copied from the first pass's below
    const g = backward?.inputBackward!.backward.featureGrads.get(input);

    // Each batch's dispatches (their uniforms differ), made before the runner encodes them.
    const batches: Dispatch[][] = [];
    for (let firstPass = 0; firstPass < passes; firstPass += B) {
      const valid = Math.min(B, passes - firstPass);
      const list: Dispatch[] = [await ATTRIBUTION.dispatch(env, 'perturb', {
        overrides: { PERTURB: mode }, uniforms: { ...perturb, first: firstPass },
        buffers: { x: x.buffer, rangeIn: method === 'smoothgrad' ? range : env.dummy, baseline, input: passInput.buffer },
        workgroups: ATTRIBUTION.groups('perturb', [n, B, 1]), ...at('perturb', 3 * B * n),
      }), ...engine.forwardDispatches];
      if (scores) {
        list.push(await ATTRIBUTION.dispatch(env, 'passScores', {
          overrides: { SOFTMAX: softmax }, uniforms: { ...geometry, first: firstPass, valid, classCount: engine.classCount, ...viewUniforms('scores', passScores) },
          buffers: { scores: passScores.buffer, classes: program.classes, scoresOut: scores },
          workgroups: ATTRIBUTION.groups('passScores', [valid, K, 1]), ...at('scores', valid * K * engine.classCount * 3),
        }));
      }
      if (backward) {
        list.push(...backward.backwardStage, await ATTRIBUTION.dispatch(env, 'accumulate', {
          overrides: { TRAPEZOID: method === 'integrated-gradients' },
          uniforms: { ...geometry, classOffset: 0, first: firstPass, valid, ...viewUniforms('inputGrad', g!) }, buffers: { inputGrad: g!.buffer, acc: acc! },
          workgroups: ATTRIBUTION.groups('accumulate', [n, K, 1]), ...at('accumulate', 2 * valid * K * n),
        }));
      }
      batches.push(list);
    }

    // Integrated gradients' last point, x: its gradient (weight ½) and score, from the first pass.
    const last: Dispatch[] = [];
    if (method === 'integrated-gradients') {
      const g0 = program.inputBackward!.backward.featureGrads.get(first.graph.input.name)!;
      const logits = first.compiled.view(first.graph.logits);
      last.push(await ATTRIBUTION.dispatch(env, 'accumulate', {
        overrides: { TRAPEZOID: true },
        uniforms: { ...geometry, classOffset: 0, first: passes, valid: 1, inputGradOffset: g0.offset + image * K * g0.stride, inputGradStride: g0.stride },
        buffers: { inputGrad: g0.buffer, acc: acc! }, workgroups: ATTRIBUTION.groups('accumulate', [n, K, 1]), ...at('accumulate x', 2 * K * n),
      }), await ATTRIBUTION.dispatch(env, 'passScores', {
        overrides: { SOFTMAX: softmax }, uniforms: { ...geometry, first: passes, valid: 1, classCount: first.classCount, scoresOffset: logits.offset + image * logits.stride, scoresStride: logits.stride },
        buffers: { scores: logits.buffer, classes: program.classes, scoresOut: scores! },
        workgroups: ATTRIBUTION.groups('passScores', [1, K, 1]), ...at('score x', K * first.classCount * 3),
      }));
    }

    // The map of the image's K items, written into the program's buffers at items image·K … image·K + K − 1.
    const finish: Dispatch[] = [...last];
    if (gradients) {
      // smoothgrad: the mean gradient; integrated gradients: (x − x') ⊙ the trapezoid rule's sum / m (m = points − 1).
      const path = method === 'integrated-gradients';
      finish.push(await ATTRIBUTION.dispatch(env, 'attributeInput', {
        overrides: { TIMES_INPUT: path, MINUS_BASELINE: path },
        uniforms: { ...geometry, items: K, scale: path ? 1 / (points - 1) : 1 / passes, inputGradOffset: 0, inputGradStride: n, xOffset: x.offset, xStride: x.stride },
        buffers: { inputGrad: acc!, x: x.buffer, baseline, out: entry.rgb!, maps: entry.raw },
        workgroups: ATTRIBUTION.groups('attributeInput', [hw, K, 1]), ...at('map', 4 * K * n),
      }));
    } else {
      const logits = first.compiled.view(first.graph.logits);
      finish.push(await ATTRIBUTION.dispatch(env, 'occlusionMap', {
        overrides: { SOFTMAX: softmax },
        uniforms: { ...geometry, scale: sign, classCount: first.classCount, patchSize: occ!.patch, step: occ!.stride, windowsX: occ!.windowsX, ...viewUniforms('scores', logits) },
        buffers: { scores: logits.buffer, classes: program.classes, scoresIn: scores!, maps: entry.raw },
        workgroups: ATTRIBUTION.groups('occlusionMap', [hw, K, 1]), ...at('map', K * hw * (4 + first.classCount)),
      }));
    }

    await runner.run({
      method, passes, batch: B,
      encode: (encoder, firstPass) => {
        if (firstPass === 0) {
          if (acc) encoder.clearBuffer(acc);
          // Every slot's K classes: the image's, as the first pass chose them.
          for (let s = 0; s < B && backward; s++) encoder.copyBufferToBuffer(program.classes, image * K * 4, backward.classes, s * K * 4, K * 4);
          if (prepare.length) encodeStage(encoder, `${method} prepare`, prepare);
        }
        encodeStage(encoder, `${method} passes`, batches[firstPass / B]);
      },
    });

    const encoder = device.createCommandEncoder({ label: `${method} map` });
    encodeStage(encoder, `${method} map`, finish);
    if (entry.ends) {
      // y(x') and y(x): the first and the last point of the path.
      for (let k = 0; k < K; k++) {
        const b = image * K + k;
        encoder.copyBufferToBuffer(scores!, b * points * 4, entry.ends, b * 2 * 4, 4);
        encoder.copyBufferToBuffer(scores!, (b * points + points - 1) * 4, entry.ends, (b * 2 + 1) * 4, 4);
      }
    }
    await checked(device, `${method}: the map`, () => device.queue.submit([encoder.finish()]));
    await device.queue.onSubmittedWorkDone();
    entry.passes = passes;
  } finally {
    env.destroy();
  }
}
