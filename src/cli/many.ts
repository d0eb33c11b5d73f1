/**
 * `classify` and `explain` over many inputs: the input list (files, and the pictures of folders,
 * their names kept as bytes: src/node/byte-paths.ts), the JSONL of results (src/cli/jsonl.ts), the
 * progress display, and the loop: inputs run in batches of `--batch` (default: as many as the GPU
 * takes, at most MAX_BATCH, and at most DEFAULT_BATCH_BYTES of decoded inputs), each batch read
 * (decoded) only when it runs, so memory stays bounded however many inputs there are; an input that
 * cannot be read or run gets an error line and the rest goes on; the command fails (exit 1) at the
 * end when any input failed.
 */
import { statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { AbortError, GradcamError } from '../errors.ts';
import { uniqueStems } from '../gradcam/json.ts';
import { MAX_BATCH } from '../gradcam/network.ts';
import { compareNames, displayPath, extensionOf, type InputPath, joinName, listFolderNames } from '../node/byte-paths.ts';
import { checkWritable, formatBytes, makeFolders } from '../node/files.ts';
import { JsonlOutput } from './jsonl.ts';
import { inputsProgress } from './progress.ts';
import { manyPassesSession, type PassControl } from './passes.ts';
import { type Args, type Command, intOption, type Options, pathOption, UsageError } from './command.ts';
import type { Io } from './command.ts';

/**
 * The most bytes of decoded inputs (4 per pixel of a picture) one batch holds by default: five
 * 6000×6000 pictures (144 MB each decoded) run one at a time instead of all at once. An input
 * larger than this still runs (alone); --max-pixels bounds that.
 */
export const DEFAULT_BATCH_BYTES = 256 * 2 ** 20;

/** The file types a folder contributes (case-insensitive); files named on the command line are taken whatever their name. */
export const INPUT_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.npy'];

export const MANY_OPTIONS: Options = { batch: { type: 'string', short: 'b' }, jsonl: { type: 'string' }, resume: { type: 'boolean' } };
export const MANY_VALUES: Record<string, string> = { batch: 'an integer ≥ 1', jsonl: "a file name ('-': stdout)" };
export function manyOptionsHelp(width: number): string {
  const pad = (s: string) => `  ${s.padEnd(width)}`;
  const more = ' '.repeat(width + 2);
  return `${pad('--batch B')}inputs per GPU batch (default: as many as the GPU's buffer limits allow, at most ${MAX_BATCH},
${more}and at most ${formatBytes(DEFAULT_BATCH_BYTES)} of decoded pictures, 4 bytes per pixel; see --max-pixels)
${pad('--jsonl FILE')}one JSON line per input, written as each finishes: {input, ...results} or {input, error};
${more}'-': to stdout instead of the table
${pad('--resume')}keep FILE's lines and skip the inputs that have a result there (inputs with an
${more}error line are tried again); a FILE gradcam did not write is refused and left as it is`;
}

/** Whether the command line asks for the many-inputs mode: several inputs, a folder, or one of its options. */
export function isMany(args: Args, extra: string[] = []): boolean {
  if (args.positionals.length > 1) return true;
  if (['batch', 'jsonl', 'resume', ...extra].some((o) => args.values[o] !== undefined)) return true;
  const [one] = args.positionals;
  try {
    return one !== undefined && statSync(one).isDirectory();
  } catch {
    return false;
  }
}

export interface ManySettings<P extends InputPath = InputPath> {
  inputs: P[];
  /**
   * Inputs per batch; undefined: the API's default (the GPU's limits), read at most MAX_BATCH and
   * `batchBytes` at a time.
   */
  batch?: number;
  /** The most bytes of read inputs (ManyRun.cost) in a default batch (default DEFAULT_BATCH_BYTES). */
  batchBytes?: number;
  jsonl?: string;
  resume: boolean;
}

/** The many-inputs options, checked (usage errors) before any work. */
export function manySettings(command: Command, args: Args): Omit<ManySettings, 'inputs'> {
  const batch = args.values.batch === undefined ? undefined : intOption(command, args, 'batch', 1);
  const jsonl = pathOption(command, args, 'jsonl');
  const resume = args.values.resume === true;
  if (resume && jsonl === undefined) throw new UsageError('--resume needs --jsonl FILE (the results to resume)', command);
  if (resume && jsonl === '-') throw new UsageError('--resume needs a JSONL file, not stdout', command);
  return { batch, jsonl, resume };
}

/**
 * The inputs of the command line, in order: a file as it is named (a missing or unreadable one
 * fails on its own line later), a folder as its files with a picture or .npy extension, sorted by
 * name (as bytes; not recursive). A path named twice counts once. A name in a folder that is not
 * UTF-8 stays bytes (a Buffer), so that `a\xfe.png` and `a\xff.png` stay two files.
 */
export function expandInputPaths(paths: string[]): InputPath[] {
  const out: InputPath[] = [];
  const seen = new Set<string>();
  const add = (p: InputPath) => {
    const key = typeof p === 'string' ? `s${p}` : `b${p.toString('hex')}`;
    if (!seen.has(key)) out.push(p);
    seen.add(key);
  };
  for (const p of paths) {
    let folder = false;
    try {
      folder = statSync(p).isDirectory();
    } catch { /* not there, or unreadable: its line will say */ }
    if (!folder) {
      add(p);
      continue;
    }
    let names: Buffer[];
    try {
      names = listFolderNames(p);
    } catch (err) {
      throw new GradcamError(`${p}: cannot list the folder (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 'Check its permissions.');
    }
    const pictures = names.filter((n) => INPUT_EXTENSIONS.includes(extensionOf(n))).sort(compareNames);
    if (!pictures.length) throw new GradcamError(`${p}: the folder holds no ${INPUT_EXTENSIONS.join(', ')} files`, 'Name the pictures or the folder that holds them.');
    for (const n of pictures) add(joinName(p, n));
  }
  return out;
}

/**
 * expandInputPaths with every path as text (displayPath): for callers that need strings; a name
 * that is not UTF-8 then names no file (its line says so).
 */
export function expandInputs(paths: string[]): string[] {
  return expandInputPaths(paths).map(displayPath);
}

/** A file-name stem for each input's outputs (uniqueStems of the base names without extension, src/gradcam/json.ts). */
export function outputStems(inputs: InputPath[]): string[] {
  return uniqueStems(inputs.map((p) => displayPath(p)).map((p) => basename(p, extname(p))));
}

export { layerPart, overlayFileName } from '../gradcam/json.ts';

/** The output folder: made if missing (with the folders above it), checked writable before any work. */
export async function prepareOutDir(dir: string): Promise<void> {
  if (dir === '') throw new GradcamError('--out-dir takes a folder name, got an empty one');
  try {
    await makeFolders(dir);
  } catch (err) {
    throw new GradcamError(`${dir}: cannot make the output folder (${(err as Error).message})`, 'Choose another --out-dir.');
  }
  await checkWritable(join(dir, 'x.png'));
}

export { JsonlOutput } from './jsonl.ts';

/** One input, read. */
export interface ReadInput<I, P extends InputPath = string> {
  path: P;
  index: number;
  input: I;
}

export interface ManyRun<I, P extends InputPath = string> {
  settings: ManySettings<P>;
  io: Io;
  /** Reads one input (a GradcamError: its error line). */
  read(path: P): Promise<I>;
  /**
   * About how many bytes an input takes once read, told before reading it (a picture's header):
   * a default batch (no --batch) holds at most `settings.batchBytes` of them. Without it, only the
   * count bounds a batch.
   */
  cost?(path: P): Promise<number>;
  /**
   * Runs a batch of read inputs; one result (the JSONL fields besides `input`) per input, in order.
   * With `passes`, `control` is the session's signal and progress, for the API call.
   */
  run(batch: ReadInput<I, P>[], control?: PassControl): Promise<object[]>;
  /**
   * The calls run multi-pass methods (scorecam, …): the bar counts passes over all inputs instead
   * of inputs, and Ctrl-C stops cleanly: the batch of inputs in flight writes nothing, those
   * finished before are complete, and the command exits 130 (src/cli/passes.ts).
   */
  passes?: boolean;
  /** The stdout line of one result (unless the JSONL goes to stdout); `shown`: the input's path as text (displayPath). */
  describe(shown: string, result: object): string;
}

/** A GradcamError passes (it is the input's error line); anything else (a bug), a usage error or Ctrl-C (AbortError) stops the run. */
function userError(err: unknown): GradcamError {
  if (!(err instanceof GradcamError) || err instanceof UsageError || err instanceof AbortError) throw err;
  return err;
}

/**
 * The error of an input that ran alone, naming it: the batch API numbers inputs within its call
 * ("input 0 of 1: ..."), which says nothing when the call held this one input.
 */
function namedError(shown: string, err: GradcamError): GradcamError {
  const message = err.message.replace(/^input 0 of 1: /, '');
  if (message.startsWith(`${shown}: `)) return message === err.message ? err : new GradcamError(message, err.hint);
  return new GradcamError(`${shown}: ${message}`, err.hint);
}

/**
 * Runs every input (see the module comment). Returns when all are done; throws a GradcamError at
 * the end when any failed (exit code 1). A batch that fails as a whole is run again input by input,
 * so that the error lands on the input that caused it; lines come in input order. Errors other
 * than GradcamError (bugs) stop the run, as does a JSONL that cannot be written (a full disk).
 */
export async function runMany<I, P extends InputPath = string>(m: ManyRun<I, P>): Promise<void> {
  const { settings, io } = m;
  const jsonl = settings.jsonl !== undefined ? await JsonlOutput.open(settings.jsonl, settings.resume, io) : undefined;
  const table = !jsonl?.toStdout; // the lines themselves are the results on stdout
  try {
    const pending = settings.inputs.map((path, index) => ({ path, index, shown: displayPath(path) })).filter((x) => !jsonl?.done.has(x.shown));
    const skipped = settings.inputs.length - pending.length;
    if (skipped) io.info(`gradcam: ${skipped} of ${settings.inputs.length} inputs have results in ${settings.jsonl} already (--resume): ${pending.length} to go`);
    let finished = 0;
    // Ctrl-C's hint: what is complete, and how to go on.
    const cancelled = () => {
      const many = pending.length === 1 ? 'input' : 'inputs';
      const where = settings.jsonl === undefined || settings.jsonl === '-' ? '' : ` (their lines in ${settings.jsonl})`;
      const next = settings.jsonl === undefined || settings.jsonl === '-' ? 'With --jsonl FILE, --resume can go on from where a run stopped.'
        : `Run the same command${settings.resume ? '' : ' with --resume'} to go on from there.`;
      return new AbortError('Ctrl-C', `${finished} of ${pending.length} ${many} finished before it and ${finished === 1 ? 'is' : 'are'} complete${where}; the batch in flight wrote nothing. ${next}`);
    };
    const passes = m.passes ? manyPassesSession(io.info, pending.length, cancelled) : undefined;
    const progress = passes ?? inputsProgress(pending.length, io.info, process.stderr);
    const run = (batch: ReadInput<I, P>[]) => (passes ? passes.call(batch.length, (control) => m.run(batch, control)) : m.run(batch));
    const failed: { shown: string; error: GradcamError }[] = [];
    const fail = (shown: string, error: GradcamError) => {
      failed.push({ shown, error });
      const line = { input: shown, error: error.message, ...(error.hint ? { hint: error.hint } : {}) };
      if (jsonl?.toStdout) progress.log('', () => jsonl.write(line));
      else jsonl?.write(line);
      if (table) progress.log(`${shown}  error: ${error.message}`, io.out);
      progress.log(`gradcam: ${error.message}`);
    };
    const succeed = (shown: string, result: object) => {
      if (jsonl?.toStdout) progress.log('', () => jsonl.write({ input: shown, ...result }));
      else jsonl?.write({ input: shown, ...result });
      if (table) progress.log(m.describe(shown, result), io.out);
    };
    // Each batch: up to --batch inputs; by default up to MAX_BATCH, and up to batchBytes of them read.
    const count = settings.batch ?? MAX_BATCH;
    const budget = settings.batch === undefined && m.cost ? settings.batchBytes ?? DEFAULT_BATCH_BYTES : Infinity;
    const costs = new Map<number, number>();
    const cost = async (i: number) => {
      if (budget === Infinity) return 0;
      if (!costs.has(i)) costs.set(i, await m.cost!(pending[i].path));
      return costs.get(i)!;
    };
    try {
      for (let at = 0; at < pending.length;) {
        passes?.check(); // Ctrl-C: stop before reading the next batch
        let end = at + 1;
        for (let bytes = await cost(at); end < pending.length && end - at < count;) {
          const next = await cost(end);
          if (bytes + next > budget) break;
          bytes += next;
          end++;
        }
        const slice = pending.slice(at, end);
        at = end;
        // Each input's outcome (by its index in `slice`), reported in input order once the batch is done.
        const outcome = new Map<number, { result: object } | { error: GradcamError }>();
        const read: (ReadInput<I, P> & { k: number; shown: string })[] = [];
        for (const [k, x] of slice.entries()) {
          try {
            read.push({ ...x, k, input: await m.read(x.path) });
          } catch (err) {
            outcome.set(k, { error: userError(err) });
          }
        }
        if (read.length) {
          try {
            const results = await run(read.map(({ path, index, input }) => ({ path, index, input })));
            read.forEach((x, i) => outcome.set(x.k, { result: results[i] }));
          } catch (err) {
            const error = userError(err);
            if (read.length === 1) outcome.set(read[0].k, { error: namedError(read[0].shown, error) });
            else {
              for (const x of read) {
                try {
                  outcome.set(x.k, { result: (await run([{ path: x.path, index: x.index, input: x.input }]))[0] });
                } catch (e) {
                  outcome.set(x.k, { error: namedError(x.shown, userError(e)) });
                }
              }
            }
          }
        }
        read.length = 0; // the batch's decoded inputs can go before the next batch is read
        for (const [k, x] of slice.entries()) {
          const o = outcome.get(k)!;
          if ('error' in o) fail(x.shown, o.error);
          else succeed(x.shown, o.result);
        }
        finished += slice.length;
        progress.advance(slice.length);
      }
    } finally {
      progress.done(); // also when Ctrl-C or an error stops the loop: the bar cleared, SIGINT no longer caught
    }
    if (failed.length) {
      throw new GradcamError(`${failed.length} of ${pending.length} inputs failed (the first: ${failed[0].error.message})`,
        settings.jsonl ? `Their lines in ${settings.jsonl === '-' ? 'the JSONL' : settings.jsonl} say why; fix or remove them, then --resume to run them again.` : 'The lines above say why.');
    }
  } finally {
    jsonl?.close();
  }
}
