/**
 * The JSONL of the many-inputs mode: one complete line per input, appended with one write each (an
 * interrupted run leaves complete lines, and at most the start of one more).
 *
 * `--resume` keeps such a file, but only one that gradcam could have written: every line up to the
 * last newline a JSON object with an "input", and after it nothing, or the start of a line cut short
 * ('{"inp…'). The whole file is checked before anything is changed, so a picture, notes or a file
 * with a corrupt line in the middle given by mistake are refused as they are; only the cut-off end
 * is removed, at its byte offset (the file is handled as bytes: invalid UTF-8 in a line before it
 * does not move the cut), and stderr says so.
 */
import { closeSync, constants, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { GradcamError } from '../errors.ts';
import { checkWritable, fileErrorReason } from '../node/files.ts';
import type { Io } from './command.ts';

/** What a JSONL to resume holds: the inputs with a result line, and where its complete lines end. */
export interface ResumeState {
  done: Set<string>;
  /** Bytes of complete lines (the file is cut here when more follows). */
  keep: number;
  /** Bytes of a last line cut short (removed), 0 when none. */
  cut: number;
}

/** How every line gradcam writes starts ({"input": ...} first): a cut-off end must be a start of it. */
const LINE_START = '{"input":';
const NOT_OURS_HINT = 'Resume with the JSONL of the interrupted run, or drop --resume to start anew (that replaces the file).';

/** Reads a whole open file. */
function readAll(fd: number): Buffer {
  const size = fstatSync(fd).size;
  const buf = Buffer.alloc(size);
  let off = 0;
  while (off < size) {
    const n = readSync(fd, buf, off, size - off, off);
    if (n === 0) break;
    off += n;
  }
  return buf.subarray(0, off);
}

/** Checks the bytes of a JSONL to resume (see the module comment); throws GradcamError without changing anything. */
export function resumeState(path: string, bytes: Buffer): ResumeState {
  const keep = bytes.lastIndexOf(0x0a) + 1;
  const done = new Set<string>();
  let start = 0;
  for (let n = 1; start < keep; n++) {
    const end = bytes.indexOf(0x0a, start);
    const line = bytes.toString('utf8', start, end);
    start = end + 1;
    if (line.trim() === '') continue;
    let doc: unknown;
    try {
      doc = JSON.parse(line);
    } catch {
      throw new GradcamError(`${path}: line ${n} is not JSON, so this is not a JSONL file that gradcam wrote; it was left as it is`, NOT_OURS_HINT);
    }
    const input = (doc as { input?: unknown } | null)?.input;
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || typeof input !== 'string') {
      throw new GradcamError(`${path}: line ${n} has no "input", so this is not a JSONL file that gradcam wrote; it was left as it is`, NOT_OURS_HINT);
    }
    if ((doc as { error?: unknown }).error === undefined) done.add(input);
  }
  const rest = bytes.toString('latin1', keep); // compared with ASCII only
  if (rest && !LINE_START.startsWith(rest) && !rest.startsWith(LINE_START)) {
    throw new GradcamError(`${path}: ${keep ? 'the end after the last line' : 'the text'} is not the start of a JSON line, so this is not a JSONL file that gradcam wrote; it was left as it is`, NOT_OURS_HINT);
  }
  return { done, keep, cut: bytes.length - keep };
}

/**
 * Checks a JSONL to resume before any work, reading only: a regular file must be one gradcam could
 * have written (resumeState); a missing file is started anew.
 */
export async function checkResumable(path: string): Promise<void> {
  await checkWritable(path);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new GradcamError(`${path}: cannot read the JSONL to resume (${fileErrorReason(err)})`);
  }
  try {
    if (fstatSync(fd).isFile()) resumeState(path, readAll(fd));
  } finally {
    closeSync(fd);
  }
}

/** One JSON line per input; appended with one write each (no partial line unless the OS fails). */
export class JsonlOutput {
  private constructor(private readonly path: string, private readonly fd: number | undefined, private readonly out: ((line: string) => void) | undefined,
    /** Inputs with a result line in the file kept by --resume. */
    readonly done: Set<string>,
    /** Bytes of complete lines in a regular file (a failed write is cut back to it); undefined: not a regular file. */
    private size: number | undefined) {}

  /**
   * Opens `path` ('-': results go through `io.out`). Without `resume` the file is started anew;
   * with it, the file is checked whole first (resumeState: a refusal changes nothing), then a last
   * line cut short is removed (said on stderr), and the inputs with a result line are in `done`.
   */
  static async open(path: string, resume: boolean, io: Io): Promise<JsonlOutput> {
    if (path === '-' || io.isStdout(path)) return new JsonlOutput(path, undefined, io.out, new Set(), undefined);
    await checkWritable(path);
    let fd: number;
    try {
      fd = openSync(path, resume ? 'a+' : 'w'); // 'a+' creates a missing file and changes nothing else
    } catch (err) {
      throw new GradcamError(`${path}: cannot open (${fileErrorReason(err)})`, 'Choose another --jsonl file.');
    }
    try {
      const regular = fstatSync(fd).isFile();
      if (!resume || !regular) return new JsonlOutput(path, fd, undefined, new Set(), regular ? 0 : undefined);
      const state = resumeState(path, readAll(fd));
      if (state.cut) {
        ftruncateSync(fd, state.keep);
        io.info(`gradcam: ${path}: its last line was cut short (an interrupted run): removed, ${state.cut} bytes; that input runs again`);
      }
      return new JsonlOutput(path, fd, undefined, state.done, state.keep);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Whether the lines go to stdout (the progress bar must be cleared around them on a terminal). */
  get toStdout(): boolean {
    return this.out !== undefined;
  }

  /**
   * Appends one line. A write that fails (a full disk) is a GradcamError naming the file; in a
   * regular file the part of the line that was written is cut off again: the complete lines stay.
   */
  write(doc: object): void {
    const line = `${JSON.stringify(doc)}\n`;
    if (this.out) {
      this.out(line.slice(0, -1));
      return;
    }
    const buf = Buffer.from(line);
    try {
      for (let off = 0; off < buf.length;) off += writeSync(this.fd!, buf, off);
    } catch (err) {
      if (this.size !== undefined) {
        try {
          ftruncateSync(this.fd!, this.size);
        } catch { /* the lines before stay either way */ }
      }
      throw new GradcamError(`${this.path}: cannot write (${fileErrorReason(err)})`,
        `The lines written before stay${this.size !== undefined ? ' (--resume goes on from them)' : ''}; free some space or choose another --jsonl file.`);
    }
    if (this.size !== undefined) this.size += buf.length;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
  }
}
