/**
 * `gradcam eval <pictures|folders>... [--boxes DIR] [--method a,b] [--layer L]`: faithfulness
 * (Average Drop / Increase in Confidence, deletion / insertion AUC) and localisation error of CAM
 * maps over a set of pictures (src/metrics/), one line per picture, then a method × metric table;
 * --json writes everything (per picture: curves, boxes).
 */
import { basename, extname, join } from 'node:path';
import { GradcamError } from '../errors.ts';
import { Network } from '../gradcam/network.ts';
import { planRequest } from '../gradcam/request.ts';
import { isMethod, type Method, methodSpec, METHODS } from '../gradcam/methods.ts';
import { isReduction, REDUCTIONS } from '../gradcam/types.ts';
import { labelOf } from '../gradcam/labels.ts';
import { nodeGpu } from '../gpu/node.ts';
import { classResolver, parseAnnotation } from '../metrics/boxes.ts';
import { BASELINES, type Baseline, DEFAULT_STEPS, isBaseline } from '../metrics/deletion-insertion.ts';
import { evaluateImage, type EvaluateOptions, type ImageEvaluation, summarise, type MethodSummary } from '../metrics/evaluate.ts';
import { IOU_THRESHOLD, LOCALISATION_THRESHOLD, type LocalisationTruth } from '../metrics/localisation.ts';
import { lowerOrFail, resolveModel } from '../models/resolve.ts';
import { checkWritable, readFileOrFail } from '../node/files.ts';
import { jsonText } from '../node/text.ts';
import { f32 } from '../gradcam/json.ts';
import { type Command, intOption, pathOption, stringOption, UsageError } from './command.ts';
import { DOWNLOAD_OPTIONS, DOWNLOAD_VALUES, downloadLimits, downloadOptionsHelp } from './fetch.ts';
import { writeFileAtomic } from './files.ts';
import { maxPixelsOption, pictureOptionsHelp, PICTURE_OPTIONS, PICTURE_VALUES, readInput } from './input.ts';
import { expandInputs, runMany } from './many.ts';

export const METRICS = ['drop', 'deletion', 'insertion', 'localisation'] as const;
type Metric = (typeof METRICS)[number];

function listOption(values: string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

const pct = (v: number | undefined) => (v === undefined ? '—' : v.toFixed(2));
const num = (v: number | undefined) => (v === undefined ? '—' : v.toFixed(4));

/** The method × metric table. */
export function summaryTable(rows: readonly MethodSummary[]): string[] {
  const head = ['method', 'images', 'avg drop %', 'increase %', 'deletion AUC', 'insertion AUC', 'loc err top-1 %', 'top-5 %'];
  const body = rows.map((r) => [r.method, String(r.images), pct(r.averageDrop), pct(r.increaseInConfidence), num(r.deletionAuc), num(r.insertionAuc),
    pct(r.localisation?.top1Error), pct(r.localisation?.top5Error)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  return [head, ...body].map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
}

export const evalCommand: Command = {
  name: 'eval',
  summary: 'faithfulness (Average Drop/Increase, deletion/insertion AUC) and localisation error of CAM maps over pictures',
  usage: 'gradcam eval <image|folder>... [--boxes DIR] [--synsets FILE] [--method M[,M...]]... [--layer L] [--metrics LIST] [--steps N] [--baseline zero|blur] [--batch B] [--json FILE|-] [--jsonl FILE] [--model M]',
  help: `options:
  --model M         a model file, a manifest name or an http(s) URL (default as for explain)
  --method M        CAM methods, comma-separated or repeated: ${METHODS.filter((m) => methodSpec(m).kind !== 'guided').join(', ')}
                    (default gradcam; not the guided ones, which are gradients of the input, not maps)
  --layer L         the feature layer (default auto: the last before global pooling)
  --reduction R     'logit' (default) or 'softmax': the score the maps explain
  --metrics LIST    which of ${METRICS.join(', ')} (default all; localisation needs --boxes)
  --boxes DIR       ground-truth boxes: DIR/<picture name without extension>.xml, PASCAL VOC / ILSVRC XML
  --synsets FILE    WordNet ids in class order, one per line (ILSVRC's LOC_synset_mapping.txt), so that
                    the boxes' <name>n01440764</name> are classes; else names are the model's labels or indices
  --steps N         deletion and insertion steps (default ${DEFAULT_STEPS}: ${DEFAULT_STEPS} pixels per step at 224×224, as RISE)
  --baseline B      what deleted pixels become / insertion starts from: 'zero' (the input value 0, i.e. the
                    mean colour) or 'blur' (Gaussian, σ 5 px); default RISE's: zero for deletion, blur for insertion
  --batch B         perturbed inputs per GPU batch (default 8)
  --json FILE       the settings, the table and every picture's numbers (curves, boxes); '-': stdout
  --jsonl FILE      one line per picture as it finishes ('-': stdout)
${pictureOptionsHelp(18)}
${downloadOptionsHelp(18)}

The class explained is the predicted one (top-1; top-5 for localisation). Average Drop and Increase in
Confidence (Chattopadhay et al. 2018): the probability on the picture × the map normalised to [0, 1].
Deletion and insertion (Petsiuk et al. 2018): the probability as the map's pixels are removed / put back,
most important first; area under the curve on [0, 1]. Localisation (Selvaraju et al. 2017): the map
binarised at ${LOCALISATION_THRESHOLD * 100} % of its maximum, the box around its largest connected component, correct when
IoU ≥ ${IOU_THRESHOLD} with a ground-truth box of the class; top-1 / top-5 error as ILSVRC counts it.`,
  options: {
    model: { type: 'string', short: 'm' }, method: { type: 'string', multiple: true }, layer: { type: 'string', short: 'l' },
    reduction: { type: 'string', short: 'r' }, metrics: { type: 'string', multiple: true }, boxes: { type: 'string' }, synsets: { type: 'string' },
    steps: { type: 'string' }, baseline: { type: 'string' }, batch: { type: 'string', short: 'b' }, json: { type: 'string' }, jsonl: { type: 'string' },
    ...PICTURE_OPTIONS, ...DOWNLOAD_OPTIONS,
  },
  values: {
    model: 'a model file, a manifest name or a URL', method: `method names (${METHODS.join(', ')})`, layer: 'a layer name', reduction: "'logit' or 'softmax'",
    metrics: METRICS.join(', '), boxes: 'a folder', synsets: 'a file', steps: 'an integer ≥ 1', baseline: "'zero' or 'blur'", batch: 'an integer ≥ 1',
    json: "a file name ('-': stdout)", jsonl: "a file name ('-': stdout)", ...PICTURE_VALUES, ...DOWNLOAD_VALUES,
  },
  async run(args, io) {
    if (!args.positionals.length) throw new UsageError('missing the pictures (files or folders)', evalCommand);
    const methods = listOption(args.values.method as unknown as string[] | undefined);
    const cams = METHODS.filter((m) => methodSpec(m).kind !== 'guided');
    for (const m of methods) if (!isMethod(m) || !cams.includes(m)) throw new UsageError(`--method takes ${cams.join(', ')} (or several, comma-separated), got '${m}'`, evalCommand);
    const metricList = listOption(args.values.metrics as unknown as string[] | undefined);
    for (const m of metricList) if (!METRICS.includes(m as Metric)) throw new UsageError(`--metrics takes ${METRICS.join(', ')}, got '${m}'`, evalCommand);
    const metrics = new Set<Metric>(metricList.length ? (metricList as Metric[]) : METRICS.filter((m) => m !== 'localisation' || args.values.boxes !== undefined));
    const boxes = stringOption(args, 'boxes');
    if (metrics.has('localisation') && boxes === undefined) throw new UsageError('--metrics localisation needs --boxes DIR', evalCommand);
    const reduction = stringOption(args, 'reduction') ?? 'logit';
    if (!isReduction(reduction)) throw new UsageError(`--reduction must be ${REDUCTIONS.map((r) => `'${r}'`).join(' or ')}, got '${reduction}'`, evalCommand);
    const baseline = stringOption(args, 'baseline');
    if (baseline !== undefined && !isBaseline(baseline)) throw new UsageError(`--baseline must be ${BASELINES.map((b) => `'${b}'`).join(' or ')}, got '${baseline}'`, evalCommand);
    const steps = intOption(evalCommand, args, 'steps', DEFAULT_STEPS);
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
    const inputs = expandInputs(args.positionals);
    const resolved = await resolveModel(stringOption(args, 'model'), io.info, { fetch: limits });
    const graph = lowerOrFail(resolved);
    const layer = stringOption(args, 'layer') ?? 'auto';
    const plan = planRequest(graph, { classes: 'top', featureLayers: [layer], reduction, methods: methods.length ? methods as Method[] : undefined });
    const options: EvaluateOptions = {
      methods: methods.length ? methods as Method[] : ['gradcam'], featureLayer: plan.layers[0], reduction, steps, batchSize: batch,
      deletionBaseline: (baseline as Baseline | undefined) ?? 'zero', insertionBaseline: (baseline as Baseline | undefined) ?? 'blur',
      dropIncrease: metrics.has('drop'), deletion: metrics.has('deletion'), insertion: metrics.has('insertion'),
    };
    const gpu = await nodeGpu(io.info);
    io.progress('gradcam: compiling kernels…');
    const network = await Network.load(gpu, resolved.model, { recipe: resolved.recipe, labels: resolved.labels });
    const labels = Array.from({ length: network.classCount }, (_, c) => labelOf(c, network.classCount, resolved.labels));
    const toClass = classResolver(labels, synsets);
    const settings = {
      model: resolved.name, layer: plan.layers[0], reduction, methods: options.methods, metrics: [...metrics], steps,
      deletionBaseline: options.deletionBaseline, insertionBaseline: options.insertionBaseline,
      localisation: metrics.has('localisation') ? { threshold: LOCALISATION_THRESHOLD, iou: IOU_THRESHOLD, boxes } : undefined,
    };
    io.info(`gradcam: ${inputs.length} pictures, layer ${plan.layers[0]}, ${options.methods!.join(', ')}; ${[
      metrics.has('deletion') || metrics.has('insertion') ? `${steps} steps, baselines: deletion ${options.deletionBaseline}, insertion ${options.insertionBaseline}` : '',
      metrics.has('localisation') ? `boxes at ${LOCALISATION_THRESHOLD * 100} % of the max, IoU ≥ ${IOU_THRESHOLD}` : '',
    ].filter(Boolean).join('; ')}`);
    const done: { input: string; evaluation: ImageEvaluation }[] = [];
    let failure: unknown;
    try {
      await runMany({
        settings: { inputs, batch: 1, jsonl, resume: false }, io: { ...io, out: jsonlToStdout ? io.out : io.info },
        async read(path) {
          const input = await readInput(path, graph, { maxPixels });
          let truth: LocalisationTruth[] | undefined;
          if (metrics.has('localisation')) {
            const xml = join(boxes!, `${basename(path, extname(path))}.xml`);
            // Regular files only, size-limited (src/node/files.ts), like every input.
            const bytes = await readFileOrFail(xml).catch((err: GradcamError) => {
              throw new GradcamError(`${err.message} (the box file for ${path})`, 'Each picture needs <name>.xml in --boxes, or leave localisation out (--metrics).');
            });
            const ann = parseAnnotation(new TextDecoder().decode(bytes), xml);
            truth = ann.objects.map((o) => {
              const c = toClass(o.name);
              if (c === undefined) throw new GradcamError(`${xml}: class '${o.name}' is not a class of the model`, synsets ? 'The name is neither in --synsets nor a label.' : 'ILSVRC boxes name WordNet ids: give --synsets LOC_synset_mapping.txt.');
              return { class: c, box: o.box };
            });
          }
          return { input, truth };
        },
        async run(items) {
          const out: object[] = [];
          for (const x of items) {
            const e = await evaluateImage(network, x.input.input.image ?? x.input.input.tensor!, options, x.input.truth);
            done.push({ input: x.path, evaluation: e });
            out.push(imageJson(e));
          }
          return out;
        },
        describe(path, result) {
          const r = result as ReturnType<typeof imageJson>;
          return `${path}: ${r.predictions[0].class} ${r.predictions[0].label}; ${r.methods.map((m) => `${m.method}${m.deletionAuc !== undefined ? ` deletion ${num(m.deletionAuc)}` : ''}${m.insertionAuc !== undefined ? ` insertion ${num(m.insertionAuc)}` : ''}${m.localisation ? ` loc ${m.localisation.top1 ? '✓' : '✗'}/${m.localisation.top5 ? '✓' : '✗'}` : ''}`).join(', ')}`;
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
