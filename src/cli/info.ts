/**
 * `gradcam info <model.onnx>`: what the model is (producer, opset, inputs, outputs, ONNX op counts),
 * what the engine makes of it (ops after fusion, storages), and which tensors Grad-CAM can explain
 * (4-D tensors with more than one spatial position). Parse and lower only: no GPU.
 */
import { candidateLayers, type LayerInfo, resolveLayers } from '../gradcam/layers.ts';
import { type Graph, perImage } from '../graph/ir.ts';
import { chwOf, describeRecipe, inputLayout } from '../image/recipes.ts';
import type { OnnxModel, OnnxValueInfo } from '../onnx/model.ts';
import { checkWritable } from '../node/files.ts';
import { supportedOps, type SupportedOp } from '../graph/support.ts';
import { type Args, type Command, type Io, pathOption, positionals, stringOption, UsageError } from './command.ts';
import { DOWNLOAD_OPTIONS, DOWNLOAD_VALUES, downloadLimits, downloadOptionsHelp } from './fetch.ts';
import { MODEL_OPTIONS, MODEL_VALUES, modelChoice, modelOptionsHelp } from './model-options.ts';
import { writeFileAtomic } from './files.ts';
import { describeLabels, lowerOrFail, resolveModel } from '../models/resolve.ts';
import { jsonText } from '../node/text.ts';

export interface FeatureLayer extends LayerInfo {
  /** The ONNX op (or fused ops) that produce it, e.g. 'Conv+Relu', 'MaxPool', 'Concat'. */
  producer: string;
}

/** Grad-CAM's candidate layers (src/gradcam/layers.ts), in forward order, with their producers. */
export function featureLayers(model: OnnxModel, graph: Graph): FeatureLayer[] {
  const onnxProducer = new Map(model.nodes.flatMap((n) => n.outputs.map((o) => [o, n.opType] as const)));
  const opProducer = new Map(graph.ops.map((o) => [o.output, o.onnxTypes.join('+')]));
  return candidateLayers(graph).map((l) => ({ ...l, producer: opProducer.get(l.name) ?? onnxProducer.get(l.name) ?? '?' }));
}

const fmtShape = (s: readonly (number | string | null)[]) => `[${s.map((d) => d ?? '?').join(', ')}]`;
const fmtValue = (v: OnnxValueInfo) => `${v.name}  ${v.elemType} ${fmtShape(v.shape)}`;
const counts = (c: Record<string, number>) => Object.entries(c).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');

function loweredSummary(graph: Graph) {
  const kinds: Record<string, number> = {};
  for (const op of graph.ops) kinds[op.onnxTypes.join('+')] = (kinds[op.onnxTypes.join('+')] ?? 0) + 1;
  const bytes = graph.storages.reduce((a, s) => a + s.perImage * 4, 0);
  return { ops: graph.ops.length, opCounts: kinds, storages: graph.storages.length, activationBytesPerImage: bytes, logits: graph.logits, probabilities: graph.probabilities ?? null };
}

export const info: Command = {
  name: 'info',
  summary: 'describe a model: inputs, outputs, ops, Grad-CAM feature layers (no GPU needed)',
  usage: 'gradcam info <model.onnx|NAME|URL> [--json FILE|-] [--max-bytes N] [--max-time S] | gradcam info --ops [--json FILE|-]',
  help: `options:
  --ops           list the ONNX op types the engine reads (no model needed): what each becomes on
                  the GPU, and which are evaluated at load time (shape arithmetic on constants)
  --json FILE     also write the description as JSON to FILE; '-': to stdout instead of the text
  --model M       the model, instead of the argument: a file, a manifest name (a downloadable one is
                  fetched on first use) or an http(s) URL (downloaded into the cache once)
${modelOptionsHelp(16)}
${downloadOptionsHelp(16)}

Names and text from the model file are printed with control characters escaped (ESC as \\x1b).

Feature layers are the tensors Grad-CAM can explain (NCHW, more than one spatial position; channels-last
tensors are not), in forward order; * marks inception block outputs (Concat, e.g. inception_4e/output_1),
+ stage outputs (at each resolution, the last tensor every path to the scores goes through); --layer all
explains the block outputs, or the stage outputs of a model without blocks; the default layer is the last one before global pooling. --layer also takes a torchvision
module path (layer4, layer4.1, features.18): the last feature layer whose name starts with /layer4/.`,
  options: { json: { type: 'string' }, model: { type: 'string', short: 'm' }, ops: { type: 'boolean' }, ...MODEL_OPTIONS, ...DOWNLOAD_OPTIONS },
  values: { json: "a file name ('-': stdout)", model: 'a model file, a manifest name or a URL', ...MODEL_VALUES, ...DOWNLOAD_VALUES },
  async run(args, io) {
    const [given] = positionals(info, args, 0, 1, 'the model file (gradcam info <model.onnx>)');
    const option = stringOption(args, 'model');
    if (args.values.ops === true) {
      if (given !== undefined || option !== undefined) throw new UsageError('--ops lists what the engine reads; give no model with it', info);
      return listOps(args, io);
    }
    if (given !== undefined && option !== undefined) throw new UsageError('give the model once: as the argument or with --model', info);
    if (given === undefined && option === undefined) throw new UsageError('missing the model file (gradcam info <model.onnx>)', info);
    const json = pathOption(info, args, 'json');
    const limits = downloadLimits(info, args);
    // --json -: the JSON instead of the text; --json /dev/stdout (or where stdout goes): after it.
    const jsonToStdout = json === '-' || (json !== undefined && io.isStdout(json));
    if (json !== undefined && !jsonToStdout) await checkWritable(json);
    const resolved = await resolveModel(given ?? option, io.info, { fetch: limits, ...modelChoice(args, info) });
    const { model, path } = resolved;
    const total = Object.values(countOps(model)).reduce((a, b) => a + b, 0);
    // The description (stdout), unless the JSON goes there instead. (Every line is printed with its
    // control characters escaped, src/cli/main.ts: names and the producer come from the file.)
    const say = json === '-' ? () => {} : io.out;
    say(`model      ${resolved.name === path ? path : `${resolved.name} (${path})`}`);
    say(`producer   ${model.producerName || '(none)'}; IR version ${model.irVersion}, opset ${model.opset}${model.graphName ? `; graph '${model.graphName}'` : ''}`);
    for (const v of model.inputs) say(`input      ${fmtValue(v)}`);
    for (const v of model.outputs) say(`output     ${fmtValue(v)}`);
    say(`ONNX ops   ${total} nodes: ${counts(countOps(model))}`);
    const graph: Graph = lowerOrFail(resolved);
    const lowered = loweredSummary(graph);
    const layers = featureLayers(model, graph);
    const [auto] = layers.length ? resolveLayers(graph, ['auto']) : [];
    const { recipe, recipeChoice } = resolved;
    const layout = inputLayout(graph.input.shape, recipe.layout);
    const open = model.inputs[0].shape.some((d, i) => i > 0 && typeof d !== 'number') || model.inputs[0].shape.includes(0);
    const labelsFrom = describeLabels(resolved, perImage(graph.tensors.get(graph.logits)!));
    const logitShape = graph.tensors.get(graph.logits)!.shape;
    say(`lowered    ${lowered.ops} ops after fusion: ${counts(lowered.opCounts)}`);
    say(`storages   ${lowered.storages} buffers, ${(lowered.activationBytesPerImage / 1e6).toFixed(1)} MB of activations per image`);
    say(`scores     ${graph.logits} ${fmtShape(logitShape)} (pre-softmax)${graph.probabilities ? `; probabilities ${graph.probabilities}` : ''}`);
    say(`input size ${fmtShape(graph.input.shape)} ${layout}${open ? ` (height and width open in the file: ${recipe.size ? `the recipe's or --size` : 'the default'} ${chwOf(graph.input.shape, layout).slice(1).join('×')})` : ''}`);
    say(`recipe     ${describeRecipe(recipe, layout)}`);
    say(`           (${recipeChoice.source}) ${recipeChoice.why}`);
    say(`labels     ${labelsFrom}`);
    say('');
    say(`feature layers (${layers.length}; * = inception block output (Concat), + = stage output (the last at its resolution); --layer all: the blocks, else the stages; default: the last before global pooling):`);
    const width = Math.max(...layers.map((l) => l.name.length), 4);
    say(`    ${'name'.padEnd(width)}  ${'C×H×W'.padEnd(14)}  produced by`);
    for (const l of layers) {
      const mark = l.block ? '  * ' : l.stage ? '  + ' : '    ';
      say(`${mark}${l.name.padEnd(width)}  ${l.shape.slice(1).join('×').padEnd(14)}  ${l.producer}${l.name === auto ? '  (default)' : ''}`);
    }
    if (json) {
      const doc = {
        model: resolved.name, producer: model.producerName, irVersion: model.irVersion, opset: model.opset, graphName: model.graphName,
        inputs: model.inputs, outputs: model.outputs, onnxOps: countOps(model), lowered, recipe: recipe.name,
        recipeDetails: { ...recipe, source: recipeChoice.source, why: recipeChoice.why }, inputShape: graph.input.shape, layout, labels: labelsFrom,
        featureLayers: layers, defaultLayer: auto ?? null,
      };
      if (jsonToStdout) for (const line of jsonText(doc, 2).split('\n')) io.out(line);
      else await writeFileAtomic(json, `${jsonText(doc, 2)}\n`);
    }
  },
};

/** `gradcam info --ops`: the supported ONNX op types (src/graph/support.ts), as text or JSON. */
async function listOps(args: Args, io: Io): Promise<void> {
  const json = pathOption(info, args, 'json');
  const ops = supportedOps();
  const what = (o: SupportedOp) => [
    ...(o.kinds.length ? [o.kinds.map((k) => (k === 'view' ? 'view (no GPU work)' : k)).join(', ')] : []),
    ...(o.folded ? [o.kinds.length ? 'folded at load time when its inputs are constants' : 'folded at load time (constants and shapes only)'] : []),
  ].join('; ');
  if (json === '-' || (json !== undefined && io.isStdout(json))) {
    for (const line of jsonText({ supportedOps: ops }, 2).split('\n')) io.out(line);
    return;
  }
  if (json !== undefined) await checkWritable(json);
  io.out(`${ops.length} supported ONNX op types (default domain), and the engine's op kind each lowers to:`);
  const width = Math.max(...ops.map((o) => o.opType.length));
  for (const o of ops) io.out(`  ${o.opType.padEnd(width)}  ${what(o)}`);
  if (json !== undefined) await writeFileAtomic(json, `${jsonText({ supportedOps: ops }, 2)}\n`);
}

function countOps(model: OnnxModel): Record<string, number> {
  const c: Record<string, number> = {};
  for (const n of model.nodes) c[n.opType] = (c[n.opType] ?? 0) + 1;
  return c;
}
