/**
 * `classify` and `explain` over many inputs: the input list (files, and the pictures of folders),
 * the JSONL of results (one complete line per input, appended and handed to the OS one by one, so an
 * interrupted run leaves complete lines only; `--resume` skips the inputs that have a result line),
 * the progress display, and the loop: inputs are read, then run in batches of `--batch`; an input
 * that cannot be read or run gets an error line and the rest goes on; the command fails (exit 1) at
 * the end when any input failed.
 */
import { closeSync, fstatSync, ftruncateSync, openSync, readdirSync, readSync, statSync, writeSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { GradcamError } from '../errors.ts';
import { uniqueStems } from '../gradcam/json.ts';
import { MAX_BATCH } from '../gradcam/network.ts';
import { checkWritable, makeFolders } from '../node/files.ts';
import { inputsProgress } from './progress.ts';
import { type Args, type Command, intOption, type Options, pathOption, UsageError } from './command.ts';
import type { Io } from './command.ts';

/** The file types a folder contributes (case-insensitive); files named on the command line are taken whatever their name. */
export const INPUT_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.npy'];

export const MANY_OPTIONS: Options = { batch: { type: 'string', short: 'b' }, jsonl: { type: 'string' }, resume: { type: 'boolean' } };
export const MANY_VALUES: Record<string, string> = { batch: 'an integer ≥ 1', jsonl: "a file name ('-': stdout)" };
export function manyOptionsHelp(width: number): string {
  const pad = (s: string) => `  ${s.padEnd(width)}`;
  const more = ' '.repeat(width + 2);
  return `${pad('--batch B')}inputs per GPU batch (default: as many as the GPU's buffer limits allow, at most ${MAX_BATCH})
${pad('--jsonl FILE')}one JSON line per input, written as each finishes: {input, ...results} or {input, error};
${more}'-': to stdout instead of the table
${pad('--resume')}keep FILE's lines and skip the inputs that have a result there (inputs with an
${more}error line are tried again)`;
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

export interface ManySettings {
  inputs: string[];
  /** Inputs per batch; undefined: the API's default (the GPU's limits), read MAX_BATCH at a time. */
  batch?: number;
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
 * name (not recursive). A path named twice counts once.
 */
export function expandInputs(paths: string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (p: string) => {
    if (!seen.has(p)) out.push(p);
    seen.add(p);
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
    let names: string[];
    try {
      names = readdirSync(p);
    } catch (err) {
      throw new GradcamError(`${p}: cannot list the folder (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 'Check its permissions.');
    }
    const pictures = names.filter((n) => INPUT_EXTENSIONS.includes(extname(n).toLowerCase())).sort();
    if (!pictures.length) throw new GradcamError(`${p}: the folder holds no ${INPUT_EXTENSIONS.join(', ')} files`, 'Name the pictures or the folder that holds them.');
    for (const n of pictures) add(join(p, n));
  }
  return out;
}

/** A file-name stem for each input's outputs (uniqueStems of the base names without extension, src/gradcam/json.ts). */
export function outputStems(inputs: string[]): string[] {
  return uniqueStems(inputs.map((p) => basename(p, extname(p))));
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

/** One JSON line per input; appended with one write each (no partial line unless the OS fails). */
export class JsonlOutput {
  private constructor(private readonly fd: number | undefined, private readonly out: ((line: string) => void) | undefined,
    /** Inputs with a result line in the file kept by --resume. */
    readonly done: Set<string>) {}

  /**
   * Opens `path` ('-': results go through `io.out`). Without `resume` the file is started anew;
   * with it, its complete lines are kept (a last line cut short by an interrupted run is removed)
   * and the inputs with a result line are listed in `done`.
   */
  static async open(path: string, resume: boolean, io: Io): Promise<JsonlOutput> {
    if (path === '-' || io.isStdout(path)) return new JsonlOutput(undefined, io.out, new Set());
    await checkWritable(path);
    let fd: number;
    try {
      fd = openSync(path, resume ? 'a+' : 'w');
    } catch (err) {
      throw new GradcamError(`${path}: cannot open (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 'Choose another --jsonl file.');
    }
    const done = new Set<string>();
    if (resume && fstatSync(fd).isFile()) {
      const size = fstatSync(fd).size;
      const buf = Buffer.alloc(size);
      for (let off = 0; off < size;) {
        const n = readSync(fd, buf, off, size - off, off);
        if (n === 0) break;
        off += n;
      }
      const text = buf.toString('utf8');
      const end = text.lastIndexOf('\n') + 1;
      if (end < text.length) ftruncateSync(fd, Buffer.byteLength(text.slice(0, end))); // a line cut short
      text.slice(0, end).split('\n').filter(Boolean).forEach((line, i) => {
        let doc: { input?: unknown; error?: unknown };
        try {
          doc = JSON.parse(line);
        } catch {
          closeSync(fd);
          throw new GradcamError(`${path}: line ${i + 1} is not JSON, so this is not a JSONL file that gradcam wrote`, 'Resume with the JSONL of the interrupted run, or drop --resume to start anew.');
        }
        if (typeof doc.input === 'string' && doc.error === undefined) done.add(doc.input);
      });
    }
    return new JsonlOutput(fd, undefined, done);
  }

  /** Whether the lines go to stdout (the progress bar must be cleared around them on a terminal). */
  get toStdout(): boolean {
    return this.out !== undefined;
  }

  write(doc: object): void {
    const line = `${JSON.stringify(doc)}\n`;
    if (this.out) {
      this.out(line.slice(0, -1));
      return;
    }
    const buf = Buffer.from(line);
    for (let off = 0; off < buf.length;) off += writeSync(this.fd!, buf, off);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
  }
}

/** One input, read. */
export interface ReadInput<I> {
  path: string;
  index: number;
  input: I;
}

export interface ManyRun<I> {
  settings: ManySettings;
  io: Io;
  /** Reads one input (a GradcamError: its error line). */
  read(path: string): Promise<I>;
  /** Runs a batch of read inputs; one result (the JSONL fields besides `input`) per input, in order. */
  run(batch: ReadInput<I>[]): Promise<object[]>;
  /** The stdout line of one result (unless the JSONL goes to stdout). */
  describe(path: string, result: object): string;
}

/** A GradcamError passes (it is the input's error line); anything else (a bug) or a usage error stops the run. */
function userError(err: unknown): GradcamError {
  if (!(err instanceof GradcamError) || err instanceof UsageError) throw err;
  return err;
}

/**
 * Runs every input (see the module comment). Returns when all are done; throws a GradcamError at
 * the end when any failed (exit code 1). A batch that fails as a whole is run again input by input,
 * so that the error lands on the input that caused it; lines come in input order. Errors other
 * than GradcamError (bugs) stop the run.
 */
export async function runMany<I>(m: ManyRun<I>): Promise<void> {
  const { settings, io } = m;
  const jsonl = settings.jsonl !== undefined ? await JsonlOutput.open(settings.jsonl, settings.resume, io) : undefined;
  const table = !jsonl?.toStdout; // the lines themselves are the results on stdout
  try {
    const pending = settings.inputs.map((path, index) => ({ path, index })).filter((x) => !jsonl?.done.has(x.path));
    const skipped = settings.inputs.length - pending.length;
    if (skipped) io.info(`gradcam: ${skipped} of ${settings.inputs.length} inputs have results in ${settings.jsonl} already (--resume): ${pending.length} to go`);
    const progress = inputsProgress(pending.length, io.info, process.stderr);
    const failed: { path: string; error: GradcamError }[] = [];
    const fail = (path: string, error: GradcamError) => {
      failed.push({ path, error });
      const line = { input: path, error: error.message, ...(error.hint ? { hint: error.hint } : {}) };
      if (jsonl?.toStdout) progress.log('', () => jsonl.write(line));
      else jsonl?.write(line);
      if (table) progress.log(`${path}  error: ${error.message}`, io.out);
      progress.log(`gradcam: ${error.message}`);
    };
    const succeed = (path: string, result: object) => {
      if (jsonl?.toStdout) progress.log('', () => jsonl.write({ input: path, ...result }));
      else jsonl?.write({ input: path, ...result });
      if (table) progress.log(m.describe(path, result), io.out);
    };
    const chunk = settings.batch ?? MAX_BATCH;
    for (let at = 0; at < pending.length; at += chunk) {
      const slice = pending.slice(at, at + chunk);
      // Each input's outcome, reported in input order once the batch is done.
      const outcome = new Map<string, { result: object } | { error: GradcamError }>();
      const read: ReadInput<I>[] = [];
      for (const x of slice) {
        try {
          read.push({ ...x, input: await m.read(x.path) });
        } catch (err) {
          outcome.set(x.path, { error: userError(err) });
        }
      }
      if (read.length) {
        try {
          const results = await m.run(read);
          read.forEach((x, i) => outcome.set(x.path, { result: results[i] }));
        } catch (err) {
          const error = userError(err);
          if (read.length === 1) outcome.set(read[0].path, { error });
          else {
            for (const x of read) {
              try {
                outcome.set(x.path, { result: (await m.run([x]))[0] });
              } catch (e) {
                outcome.set(x.path, { error: userError(e) });
              }
            }
          }
        }
      }
      for (const x of slice) {
        const o = outcome.get(x.path)!;
        if ('error' in o) fail(x.path, o.error);
        else succeed(x.path, o.result);
      }
      progress.advance(slice.length);
    }
    progress.done();
    if (failed.length) {
      throw new GradcamError(`${failed.length} of ${pending.length} inputs failed (the first: ${failed[0].error.message})`,
        settings.jsonl ? `Their lines in ${settings.jsonl === '-' ? 'the JSONL' : settings.jsonl} say why; fix or remove them, then --resume to run them again.` : 'The lines above say why.');
    }
  } finally {
    jsonl?.close();
  }
}
