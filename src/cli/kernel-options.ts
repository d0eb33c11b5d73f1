/**
 * The options that choose the convolution's kernel variants (src/kernels/variants.ts), for every
 * command that runs a model: --variant NAME (one variant wherever it applies, or a kernel family),
 * --plan FILE (per layer and direction), --tune (measured on this adapter, kept in the cache:
 * src/node/plan-files.ts). A malformed choice is a usage error (exit 2); a plan file that cannot be
 * read or does not fit the model is a GradcamError naming the file (exit 1).
 */
import { GradcamError } from '../errors.ts';
import type { NetworkOptions } from '../gradcam/network.ts';
import { CONV_VARIANT_NAMES, isConvVariant, parsePlan } from '../kernels/variants.ts';
import { readFileOrFail } from '../node/files.ts';
import { FilePlanStore } from '../node/plan-files.ts';
import type { TuneReport } from '../runtime/tune.ts';
import { type Args, type Command, type Options, stringOption, UsageError } from './command.ts';
import { inputsProgress } from './progress.ts';

export const KERNEL_OPTIONS: Options = { variant: { type: 'string' }, plan: { type: 'string' }, tune: { type: 'boolean' } };

export const KERNEL_VALUES: Record<string, string> = {
  variant: `a conv variant (${CONV_VARIANT_NAMES.join(', ')}) or a kernel family (cpu, gpu)`, plan: 'a file name',
};

/** The help lines of KERNEL_OPTIONS (indented to the help's option column, 2 + `width`). */
export function kernelOptionsHelp(width: number): string {
  const pad = ' '.repeat(width + 2);
  const line = (opt: string, text: string) => `  ${opt.padEnd(width)}${text}`;
  return [
    line('--variant NAME', 'the conv kernel variant wherever it applies (gemm-blocked, gemm-tiled, winograd,'),
    `${pad}im2col, direct, gather), or cpu / gpu: that family's fixed rules (default: by adapter)`,
    line('--plan FILE', 'conv variants per layer, JSON: { "conv1": { "forward": "im2col", "backward": … } }'),
    line('--tune', 'time every variant on every conv layer shape on this GPU and use the fastest;'),
    `${pad}kept in the cache per GPU, model and engine version (a later run does no timing)`,
  ].join('\n');
}

/** The Network options of --variant, --plan and --tune (the plan file read here). */
export async function kernelChoice(args: Args, command?: Command, progress: NodeJS.WriteStream = process.stderr,
  info: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<Pick<NetworkOptions, 'variant' | 'plan' | 'planSource' | 'tune'>> {
  const variant = stringOption(args, 'variant'), planFile = stringOption(args, 'plan'), tune = args.values.tune === true;
  if (variant !== undefined && variant !== 'cpu' && variant !== 'gpu' && !isConvVariant(variant)) {
    throw new UsageError(`--variant takes ${KERNEL_VALUES.variant}, got '${variant}'`, command);
  }
  if (tune && variant !== undefined && variant !== 'cpu' && variant !== 'gpu') {
    throw new UsageError(`--tune chooses every conv layer's variant: give --tune or --variant ${variant}, not both`, command);
  }
  if (planFile === '') throw new UsageError('--plan takes a file name, got an empty one', command);
  const out: Pick<NetworkOptions, 'variant' | 'plan' | 'planSource' | 'tune'> = {};
  if (variant !== undefined) out.variant = variant as NetworkOptions['variant'];
  if (planFile !== undefined) {
    const bytes = await readFileOrFail(planFile, { maxBytes: 64 * 2 ** 20, limitReason: 'a plan is a small JSON file' });
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new GradcamError(`${planFile}: not UTF-8 text`, 'A plan is a JSON file: { "layer": { "forward": "variant", "backward": "variant" }, … }.');
    }
    out.plan = parsePlan(text, planFile);
    out.planSource = planFile;
  }
  if (tune) {
    let bar: ReturnType<typeof inputsProgress> | undefined;
    // The many-input commands' --batch B (checked by then): their full batches run B images, so tune at B too (a plan is per batch size).
    const batch = typeof args.values.batch === 'string' ? Number(args.values.batch) : NaN;
    out.tune = {
      ...(Number.isSafeInteger(batch) && batch > 1 ? { batchSizes: [batch] } : {}),
      store: new FilePlanStore(),
      onProgress: (p) => {
        bar ??= inputsProgress(p.total, info, progress, { unit: 'measurements' });
        bar.advance(1);
        if (p.done === p.total) {
          bar.done();
          bar = undefined; // (the next batch size's measurements, if any, get their own bar)
        }
      },
    };
  }
  return out;
}

/** One line on where the conv variants came from, after a load with --tune. */
export function describeTuning(t: TuneReport): string {
  const layers = Object.keys(t.tuned.plan).length;
  return t.source === 'cache'
    ? `conv variants: the tuned plan for this GPU and model (${layers} layers), from ${t.where}`
    : `conv variants: tuned ${layers} layers (${t.tuned.timings.length} measurements, ${t.tuned.method === 'timestamps' ? 'GPU timestamps' : 'wall time'}), kept in ${t.where}`;
}
