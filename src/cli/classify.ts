/**
 * `gradcam classify <image|tensor.npy> --model <model.onnx>`: the model's top-K classes for one
 * picture (resized and preprocessed on the GPU with the model's recipe) or one float32 NCHW tensor
 * (used as is). The table goes to stdout; `--json` writes every score.
 */
import { Network } from '../gradcam/network.ts';
import type { Prediction } from '../gradcam/types.ts';
import { nodeGpu } from '../gpu/node.ts';
import { encodeNpy } from '../image/npy.ts';
import { chwOf, type Recipe } from '../image/recipes.ts';
import { checkWritable } from '../node/files.ts';
import { type Command, intOption, pathOption, positionals, stringOption } from './command.ts';
import { DOWNLOAD_OPTIONS, DOWNLOAD_VALUES, downloadLimits, downloadOptionsHelp } from './fetch.ts';
import { MODEL_OPTIONS, MODEL_VALUES, modelChoice, modelOptionsHelp } from './model-options.ts';
import { describeTuning, KERNEL_OPTIONS, KERNEL_VALUES, kernelChoice, kernelOptionsHelp } from './kernel-options.ts';
import { writeFileAtomic } from './files.ts';
import { maxPixelsOption, pictureOptionsHelp, PICTURE_OPTIONS, PICTURE_VALUES, readInput } from './input.ts';
import { lowerOrFail, resolveModel } from '../models/resolve.ts';
import { classifyMany } from './classify-many.ts';
import { isMany, MANY_OPTIONS, MANY_VALUES, manyOptionsHelp } from './many.ts';
import { refuseOutputsOverInputs } from './same-file.ts';
import { jsonText } from '../node/text.ts';
import { f32 } from '../gradcam/json.ts';

function describeRecipe(r: Recipe): string {
  const range = r.valueScale === 1 ? '0–255' : Math.abs(r.valueScale * 255 - 1) < 1e-9 ? '0–1' : `×${r.valueScale}`;
  const std = r.std.every((s) => s === 1) ? '' : `, std ${r.std.join('/')}`;
  return `${r.name} (${range}, mean ${r.mean.join('/')} (RGB)${std}, ${r.channelOrder})`;
}

export const classify: Command = {
  name: 'classify',
  summary: 'top-K classes of a picture (PNG, JPEG, WebP) or of a float32 NCHW .npy tensor',
  usage: 'gradcam classify <image.png|jpg|webp|tensor.npy|folder>... [--model M] [--top K] [--json FILE|-] [--save-input FILE] [--jsonl FILE|-] [--batch B] [--resume] [--max-pixels N] [--max-bytes N] [--max-time S]',
  help: `options:
  --model M           a model file, a manifest name or an http(s) URL (default: googlenet-12 when downloaded, else the
                      demonstration model googlenet-known-answer)
  --top K             how many classes to print (default 5)
  --json FILE         also write {model, input, recipe, predictions, logits, probabilities} to FILE; '-': to
                      stdout instead of the table
  --save-input FILE   write the model's input tensor (after preprocessing) to FILE as float32 .npy
several inputs (files, folders of pictures; also one input with any option below):
${manyOptionsHelp(18)}
${pictureOptionsHelp(20)}
${modelOptionsHelp(20)}
${kernelOptionsHelp(20)}
${downloadOptionsHelp(20)}

A picture is resized on the GPU to the model's input size (antialiased bilinear) and preprocessed
with the model's recipe (caffe-bgr: Model Zoo GoogLeNet; imagenet-rgb: torchvision). A .npy tensor
is the model's input as is: float32, C order, exactly the input's shape (e.g. [1, 3, 224, 224]).
Scores are pre-softmax logits (for a model ending in Softmax, that Softmax's input).`,
  options: {
    model: { type: 'string', short: 'm' }, top: { type: 'string', short: 'k' }, json: { type: 'string' }, 'save-input': { type: 'string' },
    ...MANY_OPTIONS, ...PICTURE_OPTIONS, ...MODEL_OPTIONS, ...KERNEL_OPTIONS, ...DOWNLOAD_OPTIONS,
  },
  values: {
    model: 'a model file, a manifest name or a URL', top: 'an integer ≥ 1', json: "a file name ('-': stdout)", 'save-input': 'a file name',
    ...MANY_VALUES, ...PICTURE_VALUES, ...MODEL_VALUES, ...KERNEL_VALUES, ...DOWNLOAD_VALUES,
  },
  async run(args, io) {
    if (isMany(args)) return classifyMany(args, io);
    const [inputPath] = positionals(classify, args, 1, 1, 'the input (an image or a .npy tensor)');
    const k = intOption(classify, args, 'top', 5);
    const json = pathOption(classify, args, 'json');
    const saveInput = pathOption(classify, args, 'save-input');
    const maxPixels = maxPixelsOption(classify, args);
    const limits = downloadLimits(classify, args);
    // Every output is checked before any work (a download, the GPU): no result is lost at the end.
    // --json -: the JSON instead of the table; --json /dev/stdout (or where stdout goes): after it.
    const jsonToStdout = json === '-' || (json !== undefined && io.isStdout(json));
    refuseOutputsOverInputs(classify, { inputs: [inputPath], model: stringOption(args, 'model') },
      [{ option: '--json', path: jsonToStdout ? undefined : json }, { option: '--save-input', path: saveInput }]);
    for (const path of [jsonToStdout ? undefined : json, saveInput]) if (path !== undefined) await checkWritable(path);
    const kernels = await kernelChoice(args, classify);
    const resolved = await resolveModel(stringOption(args, 'model'), io.info, { fetch: limits, ...modelChoice(args, classify) });
    const modelPath = resolved.name;
    const { tensor, image } = await readInput(inputPath, lowerOrFail(resolved), { maxPixels });

    const gpu = await nodeGpu(io.info);
    io.progress('gradcam: compiling kernels…');
    const network = await Network.load(gpu, resolved.model, { recipe: resolved.recipe, labels: resolved.labels, ...kernels });
    if (network.tuning) io.info(describeTuning(network.tuning));
    const { engine } = network;
    try {
      if (image) {
        const [, h, w] = chwOf(engine.inputShape, engine.layout);
        io.info(`gradcam: ${inputPath} ${image.width}×${image.height} → ${w}×${h}, recipe ${describeRecipe(engine.recipe)} (${resolved.recipeChoice.source}: ${resolved.recipeChoice.why})`);
      }
      io.progress('gradcam: running the forward pass…');
      // Image 0 of the batch (the engine runs batch 1 unless the model fixes another size).
      const result = await network.classify(image ?? tensor!, Math.min(k, engine.classCount));
      if (saveInput) await writeFileAtomic(saveInput, encodeNpy(engine.inputShape, await engine.readTensor(engine.graph.input.name)));

      const predictions: Prediction[] = result.predictions.map((p) => ({ ...p, score: f32(p.score), probability: f32(p.probability) }));
      if (json !== '-') printTable(predictions, io.out);
      if (json) {
        const n = engine.classCount;
        const doc = {
          model: modelPath, input: inputPath, recipe: image ? engine.recipe.name : null, adapter: gpu.adapter, predictions,
          logits: Array.from(result.logits.subarray(0, n), f32), probabilities: Array.from(result.probabilities.subarray(0, n), f32),
        };
        if (jsonToStdout) io.out(jsonText(doc));
        else await writeFileAtomic(json, `${jsonText(doc)}\n`);
      }
    } finally {
      network.destroy();
    }
  },
};

function printTable(preds: Prediction[], out: (line: string) => void): void {
  const lw = Math.max(5, ...preds.map((p) => p.label.length));
  out(`rank  class  ${'label'.padEnd(lw)}  ${'logit'.padStart(10)}  probability`);
  for (const [i, p] of preds.entries()) {
    const prob = p.probability >= 1e-4 || p.probability === 0 ? p.probability.toFixed(4) : p.probability.toExponential(1);
    out(`${String(i + 1).padStart(4)}  ${String(p.class).padStart(5)}  ${p.label.padEnd(lw)}  ${p.score.toFixed(4).padStart(10)}  ${prob.padStart(11)}`);
  }
}
