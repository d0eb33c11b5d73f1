/**
 * `gradcam explain [image|tensor.npy] [--model M] [--layer L]... [--class C]... [--reduction R]
 * [--out overlay.png] [--json FILE]`: Grad-CAM maps for one input, all requested classes and layers
 * in one forward and one backward pass.
 */
import { basename, dirname, extname, join } from 'node:path';
import { Network } from '../gradcam/network.ts';
import { planRequest } from '../gradcam/request.ts';
import { type ClassSpec, type GradcamMap, type GradcamOptions, type GradcamResult, isReduction, type Reduction, REDUCTIONS } from '../gradcam/types.ts';
import { isMethod, isMultiPass, type Method, METHODS } from '../gradcam/methods.ts';
import { passesSession } from './passes.ts';
import { checkSmoothing } from '../gradcam/smoothing.ts';
import { GradcamError } from '../errors.ts';
import { describeAdapter } from '../gpu/device.ts';
import { nodeGpu } from '../gpu/node.ts';
import { encodePngAtomic } from '../image/decode-node.ts';
import { samplePath } from './assets.ts';
import { describeCompleteness, f32, fitFileName, layerPart, mapJson } from '../gradcam/json.ts';
import { type Args, type Command, intOption, pathOption, positionals, stringOption, UsageError } from './command.ts';
import { explainMany } from './explain-many.ts';
import { isMany, MANY_OPTIONS, MANY_VALUES, manyOptionsHelp } from './many.ts';
import { refuseOutputsOverInputs, severalOutFolder } from './same-file.ts';
import { DOWNLOAD_OPTIONS, DOWNLOAD_VALUES, downloadLimits, downloadOptionsHelp } from './fetch.ts';
import { MODEL_OPTIONS, MODEL_VALUES, modelChoice, modelOptionsHelp } from './model-options.ts';
import { describeTuning, KERNEL_OPTIONS, KERNEL_VALUES, kernelChoice, kernelOptionsHelp } from './kernel-options.ts';
import { maxPixelsOption, pictureOptionsHelp, PICTURE_OPTIONS, PICTURE_VALUES, readInput } from './input.ts';
import { describeLabels, lowerOrFail, resolveModel } from '../models/resolve.ts';
import { describeRecipe } from '../image/recipes.ts';
import { checkWritable } from '../node/files.ts';
import { writeFileAtomic } from './files.ts';
import { jsonText } from '../node/text.ts';

const CLASS_VALUE = "a class index ≥ 0, 'top' or 'topK'";

/** --class values: indices, or one 'top' / 'topK'. */
export function parseClasses(values: string[]): ClassSpec {
  if (values.length === 0) return 'top';
  const tops = values.filter((v) => /^top\d*$/.test(v));
  if (tops.length) {
    if (values.length > 1) throw new UsageError(`--class ${tops[0]} cannot be combined with other --class values`, explain);
    return tops[0] as ClassSpec;
  }
  return values.map((v) => {
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new UsageError(`--class takes ${CLASS_VALUE}, got '${v}'`, explain);
    return Number(v);
  });
}

/**
 * File name of one overlay: the --out name itself for one map, else <stem>.<layer>.class<c>.png, and
 * when the request asks for other methods than Grad-CAM alone (or the counterfactual)
 * <stem>.<layer>.class<c>.<method>[-counterfactual].png (as --out-dir names them).
 */
export function overlayPath(out: string, map: GradcamMap, several: boolean, withMethod = false): string {
  if (!several) return out;
  const ext = extname(out) || '.png';
  const method = withMethod ? `.${map.method}${map.counterfactual ? '-counterfactual' : ''}` : '';
  // A name too long for the file system is shortened with a hash (fitFileName); the message says which file was written.
  return join(dirname(out), fitFileName(`${basename(out, ext)}.${layerPart(map.layer)}`, `.class${map.class}${method}${ext}`));
}

/**
 * --method values: names, each value may list several separated by commas (gradcam,hirescam);
 * duplicates are dropped, an empty name is refused. `command` and `allowed` are eval's (CAM methods only).
 */
export function parseMethods(values: string[], command: Command = explain, allowed: readonly Method[] = METHODS): Method[] {
  if (values.length === 0) return ['gradcam'];
  const names = values.flatMap((v) => v.split(',')).map((v) => v.trim());
  for (const n of names) {
    if (!isMethod(n) || !allowed.includes(n)) throw new UsageError(`--method takes ${allowed.join(', ')} (or several, comma-separated), got '${n}'`, command);
  }
  return [...new Set(names as Method[])];
}

/** The Grad-CAM request of the command line (--class, --layer, --reduction, --method, --counterfactual, --eigen-smooth, --aug-smooth), checked: mistakes are usage errors. */
export function explainRequest(args: Args): { classes: ClassSpec; featureLayers: string[]; reduction: Reduction; methods: Method[]; counterfactual: boolean; inspect: boolean; eigenSmooth: boolean; augSmooth: boolean } {
  const classes = parseClasses((args.values.class as unknown as string[] | undefined) ?? []);
  const featureLayers = (args.values.layer as unknown as string[] | undefined) ?? ['auto'];
  const reduction = stringOption(args, 'reduction') ?? 'logit';
  if (!isReduction(reduction)) throw new UsageError(`--reduction must be ${REDUCTIONS.map((r) => `'${r}'`).join(' or ')}, got '${reduction}'`, explain);
  const methods = parseMethods((args.values.method as unknown as string[] | undefined) ?? []);
  return { classes, featureLayers, reduction, methods, counterfactual: args.values.counterfactual === true, inspect: args.values.inspect === true, ...smoothingFlags(args, methods) };
}

/**
 * --eigen-smooth and --aug-smooth (explain's and eval's), checked against the methods and --inspect
 * by the API's check (smoothing.ts): a flag that does not apply is a usage error in its words.
 */
export function smoothingFlags(args: Args, methods: readonly Method[], command: Command = explain): { eigenSmooth: boolean; augSmooth: boolean } {
  const smoothing = { eigenSmooth: args.values['eigen-smooth'] === true, augSmooth: args.values['aug-smooth'] === true };
  try {
    checkSmoothing(methods, { ...smoothing, inspect: args.values.inspect === true });
  } catch (e) {
    if (e instanceof GradcamError) throw new UsageError(e.message.replace(/\beigenSmooth\b/g, '--eigen-smooth').replace(/\baugSmooth\b/g, '--aug-smooth').replace(/\binspect\b/, '--inspect'), command);
    throw e;
  }
  return smoothing;
}

function printMaps(result: GradcamResult, adapter: string, out: (line: string) => void): void {
  out(`layer${' '.repeat(28)}  method                  class  label                 h×w     raw max      upsampled max`);
  for (const m of result.maps) {
    const method = `${m.method}${m.counterfactual ? ' (cf)' : ''}`;
    out(`${m.layer.padEnd(33)}  ${method.padEnd(22)}  ${String(m.class).padStart(5)}  ${m.label.slice(0, 20).padEnd(20)}  ${`${m.shape[0]}×${m.shape[1]}`.padEnd(6)}  ${m.max.toExponential(3).padStart(10)}  ${(m.upsampled?.max ?? NaN).toExponential(3).padStart(13)}`);
    if (m.inspection) out(`  ${m.inspection.diagnosis}`);
    if (m.completeness) out(`  ${describeCompleteness(m.completeness)}`);
  }
  const t = result.timings;
  out(`timings (${t.source === 'gpu' ? 'GPU timestamps' : 'CPU clock'}, ${adapter}): forward ${t.forwardMs.toFixed(1)} ms, backward ${t.backwardMs.toFixed(1)} ms, maps ${t.camMs.toFixed(1)} ms, ${t.passesMs !== undefined ? `passes ${t.passesMs.toFixed(1)} ms (CPU clock), ` : ''}total ${t.totalMs.toFixed(1)} ms`);
}

/** The methods whose passes run in batches (--pass-batch). */
const BATCHED: readonly Method[] = ['scorecam', 'ablationcam', 'smoothgrad', 'integrated-gradients', 'occlusion'];

/**
 * methodOptions from the pass flags (--pass-batch, --skip-zero, --samples, --sigma, --seed, --steps,
 * --baseline, --patch, --stride, --fill), each of which must apply to a --method asked for (else a
 * usage error); their ranges are the API's (src/gradcam/arguments.ts), whose words a mistake keeps.
 */
export function passOptions(args: Args, methods: readonly Method[]): GradcamOptions['methodOptions'] {
  const batchSize = args.values['pass-batch'] === undefined ? undefined : intOption(explain, args, 'pass-batch', 1);
  const skipZero = args.values['skip-zero'] === true;
  const with_ = (m: Method) => methods.includes(m);
  if (batchSize !== undefined && !BATCHED.some(with_)) throw new UsageError(`--pass-batch applies to --method ${BATCHED.join(', ')}`, explain);
  if (skipZero && !with_('ablationcam')) throw new UsageError('--skip-zero applies to --method ablationcam', explain);
  // A flag of one method: given without it, a usage error.
  const of = (name: string, method: Method): string | undefined => {
    const v = stringOption(args, name);
    if (v !== undefined && !with_(method)) throw new UsageError(`--${name} applies to --method ${method}`, explain);
    return v;
  };
  const int = (name: string, method: Method, min: number) => (of(name, method) === undefined ? undefined : intOption(explain, args, name, min, min));
  const num = (name: string, method: Method, ok: (v: number) => boolean, what: string) => {
    const v = of(name, method);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new UsageError(`--${name} takes ${what}, got '${v}'`, explain);
    return n;
  };
  const samples = int('samples', 'smoothgrad', 1), seed = int('seed', 'smoothgrad', 0);
  const sigma = num('sigma', 'smoothgrad', (v) => v >= 0, 'a number ≥ 0 (a fraction of the input\'s range)');
  if (seed !== undefined && seed >= 2 ** 32) throw new UsageError(`--seed takes an integer from 0 to 2³² − 1, got '${seed}'`, explain);
  const steps = int('steps', 'integrated-gradients', 1);
  const baseline = of('baseline', 'integrated-gradients');
  if (baseline !== undefined && baseline !== 'zeros' && baseline !== 'black') throw new UsageError(`--baseline takes 'zeros' or 'black', got '${baseline}'`, explain);
  const patch = int('patch', 'occlusion', 1), stride = int('stride', 'occlusion', 1);
  const fill = num('fill', 'occlusion', () => true, 'a number (the preprocessed value inside the window)');
  return {
    ...(with_('scorecam') && batchSize !== undefined ? { scorecam: { batchSize } } : {}),
    ...(with_('ablationcam') && (batchSize !== undefined || skipZero) ? { ablationcam: { batchSize, skipZero } } : {}),
    ...(with_('smoothgrad') ? { smoothgrad: { samples, sigma, seed, batchSize } } : {}),
    ...(with_('integrated-gradients') ? { 'integrated-gradients': { steps, baseline: baseline as 'zeros' | 'black' | undefined, batchSize } } : {}),
    ...(with_('occlusion') ? { occlusion: { patch, stride, fill, batchSize } } : {}),
  };
}

/** The method names (METHODS: the table's, never a list written here) as help lines of at most 100 columns after `indent`; gradcam first, the default. */
export function methodLines(indent: number): string {
  const lines: string[] = [];
  let line = '';
  for (const [i, m] of METHODS.entries()) {
    const word = `${m}${m === 'gradcam' ? ' (default)' : ''}${i < METHODS.length - 1 ? ',' : ';'}`;
    if (line && indent + line.length + 1 + word.length > 100) { lines.push(line); line = word; } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}

export const explain: Command = {
  name: 'explain',
  summary: 'Grad-CAM maps of a picture or .npy tensor for some classes at some layers',
  usage: 'gradcam explain [image|tensor.npy|folder]... [--model M] [--layer NAME|auto|all]... [--class N|top|topK]... [--reduction logit|softmax] [--method M[,M...]]... [--counterfactual] [--eigen-smooth] [--aug-smooth] [--pass-batch B] [--skip-zero] [--samples N] [--sigma S] [--seed N] [--steps M] [--baseline zeros|black] [--patch P] [--stride S] [--fill V] [--inspect] [--out overlay.png] [--json FILE|-] [--out-dir DIR] [--jsonl FILE|-] [--batch B] [--resume] [--max-pixels N] [--max-bytes N] [--max-time S]',
  help: `options:
  --model M         a model file, a manifest name or an http(s) URL (default: googlenet-12 when downloaded, else the
                    demonstration model googlenet-known-answer)
  --layer L         a feature layer: a tensor name, a block name (inception_4e), 'auto' (default: the
                    last tensor with spatial extent before global pooling) or 'all' (every block output);
                    repeat for several (one backward pass for all)
  --class C         a class index, 'top' (default) or 'topK' (e.g. top3); repeat for several indices
                    (one backward pass for all)
  --reduction R     'logit' (default: the pre-softmax score, as the Grad-CAM paper) or 'softmax'
                    (the probability, as MATLAB's gradCAM)
  --method M        ${methodLines(20)}
                    comma-separated or repeated for several (one forward and backward pass for all;
                    the guided ones add a guided one to the input)
  --counterfactual  negate the gradients (G := −G): what speaks against the class (gradient methods)
  --eigen-smooth    the map as the first principal component of the channel terms instead of their sum
                    (pytorch-grad-cam's eigen_smooth; the weighted and element-wise methods, scorecam,
                    ablationcam)
  --aug-smooth      test-time augmentation (pytorch-grad-cam's aug_smooth): the mean of the normalised maps
                    of the input flipped or not × 0.9, 1, 1.1, flipped back (six images in one batch;
                    scorecam and ablationcam: six times their passes); the methods at a feature layer
  --pass-batch B    scorecam, ablationcam, smoothgrad, integrated-gradients, occlusion: passes run
                    together on the GPU (default: as many as the buffer limits allow, at most 16);
                    a progress bar shows passes done and time left (over all inputs with several);
                    Ctrl-C stops cleanly, exit 130: nothing written (several inputs: those finished
                    are complete, the batch in flight writes nothing; --resume goes on)
  --skip-zero       ablationcam: no pass for channels whose activations are all zero (weight 0)
  --samples N       smoothgrad: noisy copies of the input (default 50)
  --sigma S         smoothgrad: the noise's standard deviation as a fraction of the input's range
                    (default 0.15)
  --seed N          smoothgrad: the noise's seed (default 0: the same seed, the same noise)
  --steps M         integrated-gradients: steps of the trapezoid rule (default 50: m passes); the
                    completeness gap Σ attributions − (y(x) − y(x')) is printed: more steps, smaller
  --baseline B      integrated-gradients: 'zeros' (default: 0 in the preprocessed input) or 'black'
  --patch P         occlusion: the window's side in input pixels (default ⌈min(H, W)/7⌉: 32 at 224)
  --stride S        occlusion: the step between windows (default half the patch)
  --fill V          occlusion: the value inside the window, in the preprocessed input (default 0)
  --inspect         per map, a diagnosis line in the table and in the JSON an 'inspection': channel weights,
                    contributions, top channels with activation/gradient maps, the signed map, inception
                    branches, the CAM identity (docs/cli.md)
  --out FILE        the overlay (jet over the picture, alpha 0.5) as PNG at the input's size; with
                    several maps, one file per map: <stem>.<layer>.class<C>.png, or with --method or
                    --counterfactual <stem>.<layer>.class<C>.<method>[-counterfactual].png
  --json FILE       predictions, logits, probabilities, maps (raw, at the layer's resolution) and timings;
                    '-': to stdout instead of the table
several inputs (files, folders of pictures; also one input with any option below):
  --out-dir DIR     one overlay per map: DIR/<input stem>.<layer>.class<C>.<method>.png (made if missing)
${manyOptionsHelp(18)}
${pictureOptionsHelp(18)}
${modelOptionsHelp(18)}
${kernelOptionsHelp(18)}
${downloadOptionsHelp(18)}

Without an input, the bundled sample photo (weights/samples/chelsea.png) is explained.`,
  options: {
    model: { type: 'string', short: 'm' }, layer: { type: 'string', short: 'l', multiple: true },
    class: { type: 'string', short: 'c', multiple: true }, reduction: { type: 'string', short: 'r' },
    method: { type: 'string', multiple: true }, counterfactual: { type: 'boolean' }, inspect: { type: 'boolean' }, 'eigen-smooth': { type: 'boolean' }, 'aug-smooth': { type: 'boolean' },
    'pass-batch': { type: 'string' }, 'skip-zero': { type: 'boolean' },
    samples: { type: 'string' }, sigma: { type: 'string' }, seed: { type: 'string' }, steps: { type: 'string' }, baseline: { type: 'string' },
    patch: { type: 'string' }, stride: { type: 'string' }, fill: { type: 'string' },
    out: { type: 'string', short: 'o' }, json: { type: 'string' }, 'out-dir': { type: 'string' }, ...MANY_OPTIONS, ...PICTURE_OPTIONS, ...MODEL_OPTIONS, ...KERNEL_OPTIONS, ...DOWNLOAD_OPTIONS,
  },
  values: {
    model: 'a model file, a manifest name or a URL', layer: "a layer name, 'auto' or 'all'", class: CLASS_VALUE, reduction: "'logit' or 'softmax'", method: `method names (${METHODS.join(', ')})`,
    'pass-batch': 'an integer ≥ 1', samples: 'an integer ≥ 1', sigma: 'a number ≥ 0', seed: 'an integer ≥ 0', steps: 'an integer ≥ 1', baseline: "'zeros' or 'black'",
    patch: 'an integer ≥ 1', stride: 'an integer ≥ 1', fill: 'a number', out: 'a file name', json: "a file name ('-': stdout)", 'out-dir': 'a folder name', ...MANY_VALUES, ...PICTURE_VALUES, ...MODEL_VALUES, ...KERNEL_VALUES, ...DOWNLOAD_VALUES,
  },
  async run(args, io) {
    if (isMany(args, ['out-dir'])) return explainMany(args, io);
    const [inputArg] = positionals(explain, args, 0, 1, 'the input');
    const inputPath = inputArg ?? samplePath('chelsea.png');
    const { classes, featureLayers: layers, reduction, methods, counterfactual, inspect, eigenSmooth, augSmooth } = explainRequest(args);
    const out = pathOption(explain, args, 'out');
    const json = pathOption(explain, args, 'json');
    const maxPixels = maxPixelsOption(explain, args);
    const limits = downloadLimits(explain, args);
    // Every output is checked before any work (a download, the GPU): no result is lost at the end.
    // --json -: the JSON instead of the table; --json /dev/stdout (or where stdout goes): after it.
    const jsonToStdout = json === '-' || (json !== undefined && io.isStdout(json));
    refuseOutputsOverInputs(explain, { inputs: [inputPath], model: stringOption(args, 'model') },
      [{ option: '--out', path: out }, { option: '--json', path: jsonToStdout ? undefined : json }],
      out !== undefined ? [severalOutFolder(out, basename(out, extname(out) || '.png'), extname(out) || '.png')] : []);
    for (const path of [out, jsonToStdout ? undefined : json]) if (path !== undefined) await checkWritable(path);
    const kernels = await kernelChoice(args, explain);
    const resolved = await resolveModel(stringOption(args, 'model'), io.info, { fetch: limits, ...modelChoice(args, explain) });
    const graph = lowerOrFail(resolved);
    // Bad requests (a class out of range, an unknown layer, one after the score) fail here, before the GPU starts.
    planRequest(graph, { classes, featureLayers: layers, reduction, methods, counterfactual, eigenSmooth, augSmooth });
    const input = await readInput(inputPath, graph, { maxPixels });
    const methodOptions = passOptions(args, methods);

    const gpu = await nodeGpu(io.info);
    io.progress('gradcam: compiling kernels…');
    const network = await Network.load(gpu, resolved.model, { recipe: resolved.recipe, labels: resolved.labels, ...kernels });
    if (network.tuning) io.info(describeTuning(network.tuning));
    if (input.image) io.info(`gradcam: recipe ${describeRecipe(resolved.recipe, network.engine.layout)} (${resolved.recipeChoice.source}: ${resolved.recipeChoice.why})`);
    try {
      io.progress('gradcam: running forward, backward and maps…');
      // The multi-pass methods: a progress bar of passes, and Ctrl-C cancels before anything is written.
      const session = methods.some(isMultiPass) ? passesSession(io.info) : undefined;
      let result: GradcamResult;
      try {
        const call = () => network.gradCAM(input.image ?? input.tensor!, {
          classes, featureLayers: layers, reduction, methods, counterfactual, inspect, eigenSmooth, augSmooth, upsample: true, overlay: out !== undefined,
          methodOptions, signal: session?.signal, onProgress: session?.onProgress,
        });
        result = await (session ? session.run(call) : call());
      } finally {
        session?.done();
      }
      if (result.downscaled) {
        const d = result.downscaled;
        io.info(`gradcam: the overlays are ${result.width}×${result.height}, not the picture's ${d.pictureWidth}×${d.pictureHeight}: ${d.reason}`);
      }
      if (json !== '-') printMaps(result, describeAdapter(gpu.adapter), io.out);
      if (out) {
        for (const m of result.maps) {
          const path = overlayPath(out, m, result.maps.length > 1, counterfactual || methods.length > 1 || methods[0] !== 'gradcam');
          await encodePngAtomic(path, m.overlay!);
          io.info(`gradcam: wrote ${path} (${m.layer}, ${m.method}${m.counterfactual ? ' counterfactual' : ''}, class ${m.class} ${m.label})`);
        }
      }
      if (json) {
        const n = network.classCount;
        const doc = {
          model: resolved.name, input: inputPath, recipe: input.image ? network.engine.recipe.name : null,
          recipeSource: input.image ? { source: resolved.recipeChoice.source, why: resolved.recipeChoice.why } : null,
          labels: describeLabels(resolved, network.classCount), adapter: gpu.adapter,
          predictions: result.predictions.map((p) => ({ ...p, score: f32(p.score), probability: f32(p.probability) })),
          logits: Array.from(result.logits.subarray(0, n), f32), probabilities: Array.from(result.probabilities.subarray(0, n), f32),
          maps: result.maps.map(mapJson),
          timings: { forwardMs: result.timings.forwardMs, backwardMs: result.timings.backwardMs, camMs: result.timings.camMs, totalMs: result.timings.totalMs, source: result.timings.source },
        };
        if (jsonToStdout) io.out(jsonText(doc));
        else await writeFileAtomic(json, `${jsonText(doc)}\n`);
      }
    } finally {
      network.destroy();
    }
  },
};
