/**
 * `gradcam explain` over many inputs (src/cli/many.ts): the Grad-CAM request of the command line
 * for every input, overlays in --out-dir, one JSONL line per input.
 */
import { join } from 'node:path';
import { Network } from '../gradcam/network.ts';
import { planRequest } from '../gradcam/request.ts';
import { isMultiPass } from '../gradcam/methods.ts';
import { explainLine, isOverlayFileOf, overlayFileName } from '../gradcam/json.ts';
import { nodeGpu } from '../gpu/node.ts';
import { encodePngAtomic } from '../image/decode-node.ts';
import { lowerOrFail, resolveModel } from '../models/resolve.ts';
import { checkWritable } from '../node/files.ts';
import { samplePath } from './assets.ts';
import { type Args, type Io, stringOption, UsageError } from './command.ts';
import { explain, explainRequest, passOptions } from './explain.ts';
import { downloadLimits } from './fetch.ts';
import { modelChoice } from './model-options.ts';
import { describeTuning, kernelChoice } from './kernel-options.ts';
import { inputBytes, maxPixelsOption, readInput } from './input.ts';
import { checkResumable } from './jsonl.ts';
import { expandInputPaths, manySettings, outputStems, prepareOutDir, runMany } from './many.ts';
import { refuseOutputsOverInputs } from './same-file.ts';

export async function explainMany(args: Args, io: Io): Promise<void> {
  for (const single of ['out', 'json'] as const) {
    if (args.values[single] !== undefined) throw new UsageError(`--${single} is for one input; with several, use ${single === 'out' ? '--out-dir DIR' : '--jsonl FILE'}`, explain);
  }
  const request = explainRequest(args);
  // The multi-pass methods' flags (--pass-batch, --skip-zero, …): as for one input.
  const methodOptions = passOptions(args, request.methods);
  const settings = manySettings(explain, args);
  const outDir = stringOption(args, 'out-dir');
  const maxPixels = maxPixelsOption(explain, args);
  const limits = downloadLimits(explain, args);
  // Outputs first (no result is lost at the end; none is an input), then the inputs, then the model, then the GPU.
  const inputs = expandInputPaths(args.positionals.length ? args.positionals : [samplePath('chelsea.png')]);
  const stems = outputStems(inputs);
  const stemSet = new Set(stems);
  const jsonlFile = settings.jsonl !== undefined && settings.jsonl !== '-' && !io.isStdout(settings.jsonl) ? settings.jsonl : undefined;
  refuseOutputsOverInputs(explain, { inputs, model: stringOption(args, 'model') }, [{ option: '--jsonl', path: jsonlFile }],
    outDir !== undefined ? [{ option: '--out-dir', dir: outDir, isOutputName: (name) => isOverlayFileOf(name, stemSet) }] : []);
  if (jsonlFile !== undefined) await (settings.resume ? checkResumable(jsonlFile) : checkWritable(jsonlFile));
  if (outDir !== undefined) await prepareOutDir(outDir);
  const kernels = await kernelChoice(args);
  const resolved = await resolveModel(stringOption(args, 'model'), io.info, { fetch: limits, ...modelChoice(args) });
  const graph = lowerOrFail(resolved);
  planRequest(graph, request);
  const gpu = await nodeGpu(io.info);
  io.progress('gradcam: compiling kernels…');
  const network = await Network.load(gpu, resolved.model, { recipe: resolved.recipe, labels: resolved.labels, ...kernels });
  if (network.tuning) io.info(describeTuning(network.tuning));
  try {
    await runMany({
      settings: { ...settings, inputs }, io,
      read: (path) => readInput(path, graph, { maxPixels }),
      cost: inputBytes,
      // The multi-pass methods: a bar of passes over all inputs, and Ctrl-C stops cleanly (src/cli/passes.ts).
      passes: request.methods.some(isMultiPass),
      async run(batch, control) {
        // One call for the batch: the API runs it as one GPU batch of --batch images (bitwise the single-image results).
        const results = await network.gradCAM(batch.map((x) => x.input.image ?? x.input.tensor!),
          { ...request, methodOptions, batchSize: settings.batch, upsample: outDir !== undefined, overlay: outDir !== undefined, signal: control?.signal, onProgress: control?.onProgress });
        const out: object[] = [];
        for (const [i, result] of results.entries()) {
          let overlays: string[] | undefined;
          if (outDir !== undefined) {
            overlays = [];
            for (const m of result.maps) {
              const path = join(outDir, overlayFileName(stems[batch[i].index], m));
              await encodePngAtomic(path, m.overlay!);
              overlays.push(path);
            }
          }
          // The timings of a batched result are its batch's, together (`batch.images` inputs).
          out.push({ ...explainLine(result, overlays), ...(result.batch ? { batch: result.batch } : {}) });
        }
        return out;
      },
      describe(path, result) {
        const r = result as ReturnType<typeof explainLine> & { batch?: { images: number } };
        const top = r.predictions[0];
        const ms = `${r.timings.totalMs.toFixed(0)} ms${r.batch && r.batch.images > 1 ? ` (a batch of ${r.batch.images})` : ''}`;
        return `${path}  ${top.class} ${top.label}  p=${top.probability}  ${r.maps.length} map${r.maps.length === 1 ? '' : 's'}  ${ms}`;
      },
    });
  } finally {
    network.destroy();
  }
}
