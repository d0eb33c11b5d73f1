/**
 * `gradcam eval <pictures|folders>... [--boxes DIR] [--method a,b] [--layer L]`: faithfulness
 * (Average Drop / Increase in Confidence, deletion / insertion AUC) and localisation error of CAM
 * maps over a set of pictures (src/metrics/), one line per picture, then a method × metric table;
 * --json writes everything (per picture: curves, boxes).
 */
import { GradcamError } from '../errors.ts';
import { Network } from '../gradcam/network.ts';
import { planRequest } from '../gradcam/request.ts';
import { METHODS } from '../gradcam/methods.ts';
import { isReduction, REDUCTIONS } from '../gradcam/types.ts';
import { labelOf } from '../gradcam/labels.ts';
import { nodeGpu } from '../gpu/node.ts';
import { type Box, classResolver, clipToPicture, MAX_BOX_FILE_BYTES, MAX_BOX_FILE_TEXT, parseAnnotation } from '../metrics/boxes.ts';
import { BASELINES, type Baseline, DEFAULT_STEPS, isBaseline } from '../metrics/deletion-insertion.ts';
import { evaluateImage, type EvaluateOptions, type ImageEvaluation, summarise, type MethodSummary } from '../metrics/evaluate.ts';
import { IOU_THRESHOLD, LOCALISATION_THRESHOLD, type LocalisationTruth } from '../metrics/localisation.ts';
import { lowerOrFail, resolveModel } from '../models/resolve.ts';
import { displayPath, type InputPath, joinName, stemBytes } from '../node/byte-paths.ts';
import { checkWritable, readFileOrFail } from '../node/files.ts';
import { jsonText } from '../node/text.ts';
import { f32 } from '../gradcam/json.ts';
import { type Command, intOption, pathOption, stringOption, UsageError } from './command.ts';
import { methodLines, parseMethods, smoothingFlags } from './explain.ts';
import { ROAD_NOISE, ROAD_PERCENTILES } from '../metrics/road.ts';
import { DOWNLOAD_OPTIONS, DOWNLOAD_VALUES, downloadLimits, downloadOptionsHelp } from './fetch.ts';
import { chwOf, inputLayout } from '../image/recipes.ts';
import { MODEL_OPTIONS, MODEL_VALUES, modelChoice, modelOptionsHelp } from './model-options.ts';
import { describeTuning, KERNEL_OPTIONS, KERNEL_VALUES, kernelChoice, kernelOptionsHelp } from './kernel-options.ts';
import { writeFileAtomic } from './files.ts';
import { maxPixelsOption, pictureOptionsHelp, PICTURE_OPTIONS, PICTURE_VALUES, readInput } from './input.ts';
import { expandInputPaths, runMany } from './many.ts';

export const METRICS = ['drop', 'deletion', 'insertion', 'localisation', 'road'] as const;
type Metric = (typeof METRICS)[number];
/** The metrics without --metrics: all but ROAD (opt-in: its sparse solves cost CPU time) and localisation without --boxes. */
const DEFAULT_METRICS: readonly Metric[] = ['drop', 'deletion', 'insertion', 'localisation'];

function listOption(values: string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

const pct = (v: number | undefined) => (v === undefined ? '—' : v.toFixed(2));
const num = (v: number | undefined) => (v === undefined ? '—' : v.toFixed(4));

/** The method × metric table; with several layers, a layer column after the method. */
export function summaryTable(rows: readonly MethodSummary[]): string[] {
  const layers = new Set(rows.map((r) => r.layer)).size > 1;
  // ROAD's columns only when it ran (--metrics …,road).
  const road = rows.some((r) => r.roadCombined !== undefined);
  const head = ['method', ...(layers ? ['layer'] : []), 'images', 'avg drop %', 'increase %', 'deletion AUC', 'insertion AUC', 'loc err top-1 %', 'top-5 %',
    ...(road ? ['ROAD MoRF', 'ROAD LeRF', 'ROAD combined'] : [])];
  const body = rows.map((r) => [r.method, ...(layers ? [r.layer] : []), String(r.images), pct(r.averageDrop), pct(r.increaseInConfidence), num(r.deletionAuc), num(r.insertionAuc),
    pct(r.localisation?.top1Error), pct(r.localisation?.top5Error), ...(road ? [num(r.roadMorf), num(r.roadLerf), num(r.roadCombined)] : [])]);
  const left = layers ? 2 : 1;
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  return [head, ...body].map((r) => r.map((c, i) => (i < left ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
}

const boxText = (b: Box) => `${b.xmin}…${b.xmax} × ${b.ymin}…${b.ymax}`;

export const evalCommand: Command = {
  name: 'eval',
  summary: 'faithfulness (Average Drop/Increase, deletion/insertion AUC, ROAD) and localisation error of CAM maps over pictures',
  usage: 'gradcam eval <image|folder>... [--boxes DIR] [--synsets FILE] [--method M[,M...]]... [--eigen-smooth] [--aug-smooth] [--layer L|all]... [--metrics LIST] [--steps N] [--baseline zero|blur] [--road-percentiles P,P...] [--batch B] [--json FILE|-] [--jsonl FILE] [--model M]',
  help: `options:
  --model M         a model file, a manifest name or an http(s) URL (default as for explain)
  --method M        comma-separated or repeated (a map of several planes, guided or [3, H, W] input
                    attributions, is scored by the plane its overlay shows):
                    ${methodLines(20)}
  --eigen-smooth    the maps as the first principal component of their channel terms (as explain's)
  --aug-smooth      the maps averaged over the input flipped or not × 0.9, 1, 1.1 (as explain's)
  --layer L         the feature layer (default auto: the last before global pooling); 'all': every block
                    output; repeat for several. Every method is scored at every layer (a table row each)
  --reduction R     'logit' (default) or 'softmax': the score the maps explain
  --metrics LIST    which of ${METRICS.join(', ')}
                    (default all but road; localisation needs --boxes)
  --boxes DIR       ground-truth boxes: DIR/<picture name without extension>.xml, PASCAL VOC / ILSVRC XML
                    (at most ${MAX_BOX_FILE_TEXT}; a bad one is its picture's error line; boxes reaching outside the
                    picture are clipped to it)
  --synsets FILE    WordNet ids in class order, one per line (ILSVRC's LOC_synset_mapping.txt), so that
                    the boxes' <name>n01440764</name> are classes; else names are the model's labels or indices
  --steps N         deletion and insertion steps, at most the model input's pixels (default ${DEFAULT_STEPS}: ${DEFAULT_STEPS} pixels
                    per step at 224×224, as RISE; fewer pixels: one per step)
  --baseline B      what deleted pixels become / insertion starts from: 'zero' (the input value 0, i.e. the
                    mean colour) or 'blur' (Gaussian, σ 5 px); default RISE's: zero for deletion, blur for insertion
  --road-percentiles P
                    ROAD's percentiles, comma-separated numbers in (0, 100) (default ${ROAD_PERCENTILES.join(',')})
  --batch B         perturbed inputs per GPU batch (default 8)
  --json FILE       the settings, the table and every picture's numbers (curves, boxes); '-': stdout
  --jsonl FILE      one line per picture as it finishes ('-': stdout)
${pictureOptionsHelp(18)}
${modelOptionsHelp(18)}
${kernelOptionsHelp(18)}
${downloadOptionsHelp(18)}

The class explained is the predicted one (top-1; top-5 for localisation). Average Drop and Increase in
Confidence (Chattopadhay et al. 2018): the probability on the picture × the map normalised to [0, 1].
Deletion and insertion (Petsiuk et al. 2018): the probability as the map's pixels are removed / put back,
most important first; area under the curve on [0, 1]. Localisation (Selvaraju et al. 2017): the map
binarised at ${LOCALISATION_THRESHOLD * 100} % of its maximum, the box around its largest connected component, correct when
IoU ≥ ${IOU_THRESHOLD} with a ground-truth box of the class; top-1 / top-5 error as ILSVRC counts it. ROAD
(Rong et al. 2022, as pytorch-grad-cam): at percentile p, the pixels at or above the map's p-th percentile
(MoRF) or at or below its (100 − p)-th (LeRF) are removed and filled by noisy linear imputation (σ 0.01);
the table gives the mean change of the probability over the percentiles, and (LeRF − MoRF) / 2.`,
  options: {
    model: { type: 'string', short: 'm' }, method: { type: 'string', multiple: true }, layer: { type: 'string', short: 'l', multiple: true },
    'eigen-smooth': { type: 'boolean' }, 'aug-smooth': { type: 'boolean' },
    reduction: { type: 'string', short: 'r' }, metrics: { type: 'string', multiple: true }, boxes: { type: 'string' }, synsets: { type: 'string' },
    steps: { type: 'string' }, baseline: { type: 'string' }, 'road-percentiles': { type: 'string' }, batch: { type: 'string', short: 'b' }, json: { type: 'string' }, jsonl: { type: 'string' },
    ...PICTURE_OPTIONS, ...MODEL_OPTIONS, ...KERNEL_OPTIONS, ...DOWNLOAD_OPTIONS,
  },
  values: {
    model: 'a model file, a manifest name or a URL', method: `method names (${METHODS.join(', ')})`, layer: "a layer name, 'auto' or 'all'", reduction: "'logit' or 'softmax'",
    metrics: METRICS.join(', '), boxes: 'a folder', synsets: 'a file', steps: 'an integer ≥ 1', baseline: "'zero' or 'blur'", batch: 'an integer ≥ 1',
    'road-percentiles': 'numbers in (0, 100), comma-separated',
    json: "a file name ('-': stdout)", jsonl: "a file name ('-': stdout)", ...PICTURE_VALUES, ...MODEL_VALUES, ...KERNEL_VALUES, ...DOWNLOAD_VALUES,
  },
  async run(args, io) {
    if (!args.positionals.length) throw new UsageError('missing the pictures (files or folders)', evalCommand);
    const methods = parseMethods((args.values.method as unknown as string[] | undefined) ?? [], evalCommand);
    const smoothing = smoothingFlags(args, methods, evalCommand);
    const metricList = listOption(args.values.metrics as unknown as string[] | undefined);
    for (const m of metricList) if (!METRICS.includes(m as Metric)) throw new UsageError(`--metrics takes ${METRICS.join(', ')}, got '${m}'`, evalCommand);
    const metrics = new Set<Metric>(metricList.length ? (metricList as Metric[]) : DEFAULT_METRICS.filter((m) => m !== 'localisation' || args.values.boxes !== undefined));
    const percentileText = stringOption(args, 'road-percentiles');
    const roadPercentiles = percentileText?.split(',').map((v) => v.trim());
    if (roadPercentiles && !roadPercentiles.every((v) => /^\d+(\.\d+)?$/.test(v) && Number(v) > 0 && Number(v) < 100)) {
      throw new UsageError(`--road-percentiles takes numbers between 0 and 100 (exclusive), comma-separated, got '${percentileText}'`, evalCommand);
    }
    if (roadPercentiles && !metrics.has('road')) throw new UsageError('--road-percentiles is for ROAD: add road to --metrics', evalCommand);
    const boxes = stringOption(args, 'boxes');
    if (metrics.has('localisation') && boxes === undefined) throw new UsageError('--metrics localisation needs --boxes DIR', evalCommand);
    const reduction = stringOption(args, 'reduction') ?? 'logit';
    if (!isReduction(reduction)) throw new UsageError(`--reduction must be ${REDUCTIONS.map((r) => `'${r}'`).join(' or ')}, got '${reduction}'`, evalCommand);
    const baseline = stringOption(args, 'baseline');
    if (baseline !== undefined && !isBaseline(baseline)) throw new UsageError(`--baseline must be ${BASELINES.map((b) => `'${b}'`).join(' or ')}, got '${baseline}'`, evalCommand);
    const stepsAsked = args.values.steps === undefined ? undefined : intOption(evalCommand, args, 'steps', DEFAULT_STEPS);
    const batch = intOption(evalCommand, args, 'batch', 8);
    const json = pathOption(evalCommand, args, 'json');
    const jsonl = pathOption(evalCommand, args, 'jsonl');
    const maxPixels = maxPixelsOption(evalCommand, args);
    const limits = downloadLimits(evalCommand, args);
    const jsonToStdout = json === '-' || (json !== undefined && io.isStdout(json));
    const jsonlToStdout = jsonl === '-' || (jsonl !== undefined && io.isStdout(jsonl));
    for (const path of [jsonToStdout ? undefined : json, jsonlToStdout ? undefined : jsonl]) if (path !== undefined) await checkWritable(path);
    const synsetsPath = stringOption(args, 'synsets');
    const synsets = synsetsPath !== undefined ? new TextDecoder().decode(await readFileOrFail(synsetsPath)) : undefined;
    const inputs = expandInputPaths(args.positionals);
    const kernels = await kernelChoice(args, evalCommand);
    const resolved = await resolveModel(stringOption(args, 'model'), io.info, { fetch: limits, ...modelChoice(args, evalCommand) });
    const graph = lowerOrFail(resolved);
    // Each step changes at least one of the model input's pixels: more steps than pixels cannot be (and would only fill the heap).
    const [, inputH, inputW] = chwOf(graph.input.shape, inputLayout(graph.input.shape, resolved.recipe.layout));
    const pixels = inputH * inputW;
    if (stepsAsked !== undefined && stepsAsked > pixels) {
      throw new UsageError(`--steps takes an integer from 1 to ${pixels} (the model's input is ${inputH}×${inputW} = ${pixels} pixels; each step changes at least one), got '${stepsAsked}'`, evalCommand);
    }
    const steps = stepsAsked ?? Math.min(DEFAULT_STEPS, pixels);
    const featureLayers = (args.values.layer as unknown as string[] | undefined) ?? ['auto'];
    const plan = planRequest(graph, { classes: 'top', featureLayers, reduction, methods });
    const options: EvaluateOptions = {
      methods, featureLayer: plan.layers, reduction, steps, batchSize: batch,
      deletionBaseline: (baseline as Baseline | undefined) ?? 'zero', insertionBaseline: (baseline as Baseline | undefined) ?? 'blur',
      dropIncrease: metrics.has('drop'), deletion: metrics.has('deletion'), insertion: metrics.has('insertion'),
      road: metrics.has('road'), ...(roadPercentiles ? { roadPercentiles: roadPercentiles.map(Number) } : {}),
      ...(smoothing.eigenSmooth ? { eigenSmooth: true } : {}), ...(smoothing.augSmooth ? { augSmooth: true } : {}),
    };
    const gpu = await nodeGpu(io.info);
    io.progress('gradcam: compiling kernels…');
    const network = await Network.load(gpu, resolved.model, { recipe: resolved.recipe, labels: resolved.labels, ...kernels });
    if (network.tuning) io.info(describeTuning(network.tuning));
    const labels = Array.from({ length: network.classCount }, (_, c) => labelOf(c, network.classCount, resolved.labels));
    const toClass = classResolver(labels, synsets);
    const settings = {
      model: resolved.name, layers: plan.layers, reduction, methods: options.methods, ...smoothing, metrics: [...metrics], steps,
      deletionBaseline: options.deletionBaseline, insertionBaseline: options.insertionBaseline,
      localisation: metrics.has('localisation') ? { threshold: LOCALISATION_THRESHOLD, iou: IOU_THRESHOLD, boxes } : undefined,
      road: metrics.has('road') ? { percentiles: options.roadPercentiles ?? [...ROAD_PERCENTILES], noise: ROAD_NOISE } : undefined,
    };
    io.info(`gradcam: ${inputs.length} pictures, ${plan.layers.length > 1 ? `${plan.layers.length} layers` : `layer ${plan.layers[0]}`}, ${options.methods!.join(', ')}; ${[
      metrics.has('deletion') || metrics.has('insertion') ? `${steps} steps, baselines: deletion ${options.deletionBaseline}, insertion ${options.insertionBaseline}` : '',
      metrics.has('localisation') ? `boxes at ${LOCALISATION_THRESHOLD * 100} % of the max, IoU ≥ ${IOU_THRESHOLD}` : '',
      metrics.has('road') ? `ROAD at percentiles ${(options.roadPercentiles ?? ROAD_PERCENTILES).join(', ')}` : '',
    ].filter(Boolean).join('; ')}`);
    const done: { input: string; evaluation: ImageEvaluation }[] = [];
    let clippedSaid = false;
    /** The ground truth of a picture of width × height: boxes clipped to it (said once); anything wrong, an error naming the file. */
    const readTruth = async (file: InputPath, width: number, height: number): Promise<LocalisationTruth[]> => {
      // Regular files only, size-limited (src/node/files.ts), like every input.
      const xml = displayPath(file);
      const bytes = await readFileOrFail(file, { maxBytes: MAX_BOX_FILE_BYTES, limitReason: `a box file is at most ${MAX_BOX_FILE_TEXT}: an ILSVRC or VOC one is about 1 kB` });
      const ann = parseAnnotation(new TextDecoder().decode(bytes), xml);
      return ann.objects.map((o, i) => {
        const c = toClass(o.name);
        if (c === undefined) throw new GradcamError(`${xml}: class '${o.name}' is not a class of the model`, synsets ? 'The name is neither in --synsets nor a label.' : 'ILSVRC boxes name WordNet ids: give --synsets LOC_synset_mapping.txt.');
        const box = clipToPicture(o.box, width, height);
        const what = `${xml}: object ${i + 1} ('${o.name}'): the box ${boxText(o.box)}`;
        if (!box) throw new GradcamError(`${what} lies outside the ${width}×${height} picture`, 'Boxes are 1-based pixel ranges of the picture the file is for: is it the right file?');
        if (!clippedSaid && boxText(box) !== boxText(o.box)) {
          clippedSaid = true;
          io.info(`gradcam: ${what} reaches outside the ${width}×${height} picture: clipped to it (said once; other boxes are clipped alike)`);
        }
        return { class: c, box };
      });
    };
    let failure: unknown;
    try {
      await runMany({
        settings: { inputs, batch: 1, jsonl, resume: false }, io: { ...io, out: jsonlToStdout ? io.out : io.info },
        async read(path) {
          const input = await readInput(path, graph, { maxPixels });
          let truth: LocalisationTruth[] | undefined;
          if (metrics.has('localisation')) {
            const xml = joinName(boxes!, Buffer.concat([stemBytes(path), Buffer.from('.xml')]));
            const [width, height] = input.image ? [input.image.width, input.image.height] : [input.tensor!.shape.at(-1)!, input.tensor!.shape.at(-2)!];
            // A bad box file is this picture's error line (a GradcamError); the other pictures go on.
            truth = await readTruth(xml, width, height).catch((err: unknown) => {
              if (!(err instanceof GradcamError)) throw err;
              throw new GradcamError(`${err.message} (the box file for ${displayPath(path)})`, err.hint ?? 'Each picture needs <name>.xml in --boxes, or leave localisation out (--metrics).');
            });
          }
          return { input, truth };
        },
        async run(items) {
          const out: object[] = [];
          for (const x of items) {
            const e = await evaluateImage(network, x.input.input.image ?? x.input.input.tensor!, options, x.input.truth);
            done.push({ input: displayPath(x.path), evaluation: e });
            out.push(imageJson(e));
          }
          return out;
        },
        describe(path, result) {
          const r = result as ReturnType<typeof imageJson>;
          return `${displayPath(path)}: ${r.predictions[0].class} ${r.predictions[0].label}; ${r.methods.map((m) => `${m.method}${plan.layers.length > 1 ? ` at ${m.layer}` : ''}${m.deletionAuc !== undefined ? ` deletion ${num(m.deletionAuc)}` : ''}${m.insertionAuc !== undefined ? ` insertion ${num(m.insertionAuc)}` : ''}${m.localisation ? ` loc ${m.localisation.top1 ? '✓' : '✗'}/${m.localisation.top5 ? '✓' : '✗'}` : ''}`).join(', ')}`;
        },
      });
    } catch (err) {
      if (!(err instanceof GradcamError) || !done.length) throw err;
      failure = err; // some pictures failed: the table covers the others, then the error (exit 1)
    }
    const summary = summarise(done.map((d) => d.evaluation));
    if (json !== '-' && !jsonlToStdout) for (const line of summaryTable(summary)) io.out(line);
    if (json) {
      const doc = { ...settings, summary, images: done.map((d) => ({ input: d.input, ...imageJson(d.evaluation) })) };
      if (jsonToStdout) io.out(jsonText(doc));
      else await writeFileAtomic(json, `${jsonText(doc)}\n`);
    }
    if (failure) throw failure;
  },
};

/** One picture's numbers for the JSON outputs. */
function imageJson(e: ImageEvaluation) {
  return {
    width: e.width, height: e.height,
    predictions: e.predictions.map((p) => ({ ...p, score: f32(p.score), probability: f32(p.probability) })),
    methods: e.methods,
  };
}
