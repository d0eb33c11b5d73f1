/**
 * `gradcam classify` over many inputs (src/cli/many.ts): the top-K classes of every input, one
 * JSONL line per input.
 */
import { Network } from '../gradcam/network.ts';
import { nodeGpu } from '../gpu/node.ts';
import { lowerOrFail, resolveModel } from '../models/resolve.ts';
import { checkWritable } from '../node/files.ts';
import { f32 } from '../gradcam/json.ts';
import { classify } from './classify.ts';
import { type Args, type Io, intOption, stringOption, UsageError } from './command.ts';
import { downloadLimits } from './fetch.ts';
import { modelChoice } from './model-options.ts';
import { describeTuning, kernelChoice } from './kernel-options.ts';
import { inputBytes, maxPixelsOption, readInput } from './input.ts';
import { checkResumable } from './jsonl.ts';
import { expandInputPaths, manySettings, runMany } from './many.ts';
import { refuseOutputsOverInputs } from './same-file.ts';

export async function classifyMany(args: Args, io: Io): Promise<void> {
  for (const single of ['json', 'save-input'] as const) {
    if (args.values[single] !== undefined) throw new UsageError(`--${single} is for one input${single === 'json' ? '; with several, use --jsonl FILE' : ''}`, classify);
  }
  const k = intOption(classify, args, 'top', 5);
  const settings = manySettings(classify, args);
  const maxPixels = maxPixelsOption(classify, args);
  const limits = downloadLimits(classify, args);
  if (!args.positionals.length) throw new UsageError('missing the inputs (pictures, .npy tensors or folders of them)', classify);
  const inputs = expandInputPaths(args.positionals);
  const jsonlFile = settings.jsonl !== undefined && settings.jsonl !== '-' && !io.isStdout(settings.jsonl) ? settings.jsonl : undefined;
  // Before any work: no output over an input, the JSONL writable (and, to resume, one gradcam wrote).
  refuseOutputsOverInputs(classify, { inputs, model: stringOption(args, 'model') }, [{ option: '--jsonl', path: jsonlFile }]);
  if (jsonlFile !== undefined) await (settings.resume ? checkResumable(jsonlFile) : checkWritable(jsonlFile));
  const kernels = await kernelChoice(args);
  const resolved = await resolveModel(stringOption(args, 'model'), io.info, { fetch: limits, ...modelChoice(args) });
  const graph = lowerOrFail(resolved);
  const gpu = await nodeGpu(io.info);
  io.progress('gradcam: compiling kernels…');
  const network = await Network.load(gpu, resolved.model, { recipe: resolved.recipe, labels: resolved.labels, ...kernels });
  if (network.tuning) io.info(describeTuning(network.tuning));
  const top = Math.min(k, network.classCount);
  try {
    await runMany({
      settings: { ...settings, inputs }, io,
      read: (path) => readInput(path, graph, { maxPixels }),
      cost: inputBytes,
      async run(batch) {
        // One call for the batch: one GPU batch of --batch inputs; the time is the batch's, together.
        const t0 = performance.now();
        const results = await network.classify(batch.map((x) => x.input.image ?? x.input.tensor!), { top, batchSize: settings.batch });
        const totalMs = performance.now() - t0;
        return results.map((r, index) => ({
          predictions: r.predictions.map((p) => ({ ...p, score: f32(p.score), probability: f32(p.probability) })),
          timings: { totalMs }, batch: { images: batch.length, index },
        }));
      },
      describe(path, result) {
        const r = result as { predictions: { class: number; label: string; probability: number }[]; timings: { totalMs: number }; batch: { images: number } };
        const p = r.predictions[0];
        return `${path}  ${p.class} ${p.label}  p=${p.probability}  ${r.timings.totalMs.toFixed(0)} ms${r.batch.images > 1 ? ` (a batch of ${r.batch.images})` : ''}`;
      },
    });
  } finally {
    network.destroy();
  }
}
