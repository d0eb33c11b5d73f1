/**
 * File reading and writing for the Node entry points, with the errors a user can act on:
 * "model.onnx: no such file" instead of an ENOENT stack trace, and writes that never leave a
 * half-written file behind.
 *
 * - Inputs are read only from regular files (a character device such as /dev/zero, a FIFO or a
 *   socket is refused at once: it could be endless or block forever), up to a size limit.
 * - Outputs: a regular file, or a path where nothing is yet, is written through a temporary file in
 *   the same folder and a rename (atomic). A symbolic link is followed (at most 40 links) and its
 *   target written that way, so the link stays a link. A FIFO or a character device (/dev/null, a
 *   terminal) is written to directly, as a stream: renaming over it would replace it with a regular
 *   file; so is whatever a link of /proc names (/dev/stdout: an open file, whatever it is). A
 *   folder, a block device or a socket is refused.
 * - Folders are created one level at a time from the nearest existing one: Node's recursive mkdir
 *   never returns under /proc (mkdir says ENOENT there, and it retries forever).
 * - A process that ends in the middle of an atomic write leaves no temporary file: process.exit runs
 *   an 'exit' handler that removes it, and SIGINT, SIGTERM or SIGHUP (which would end the process by
 *   their default action, running no 'exit' handler) remove it and then end the process by that
 *   signal all the same (see removeOnSignal).
 */
import { constants, rmSync, type Stats } from 'node:fs';
import { access, chmod, lstat, mkdir, open, readlink, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { GradcamError } from '../errors.ts';
import { displayPath, type InputPath } from './byte-paths.ts';

/** The reason of a failed file operation, in words ("no such file", "permission denied", ...). */
export function fileErrorReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  switch (code) {
    case 'ENOENT': return 'no such file';
    case 'EISDIR': return 'is a folder, not a file';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'ENOTDIR': return 'a part of the path is not a folder';
    case 'ENOSPC': return 'no space left on the device';
    case 'ELOOP': return 'too many levels of symbolic links';
    case 'EROFS': return 'read-only file system';
    case 'EDQUOT': return 'disk quota exceeded';
    case 'EFBIG': return 'file too large for the file size limit';
    case 'ENAMETOOLONG': return 'the name is too long for the file system';
    default: return (err as Error)?.message ?? String(err);
  }
}

/** What a file system object is, in words ("a character device", "a FIFO (named pipe)", ...). */
export function describeFileType(s: Stats): string {
  if (s.isFile()) return 'a regular file';
  if (s.isDirectory()) return 'a folder';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  if (s.isFIFO()) return 'a FIFO (named pipe)';
  if (s.isSocket()) return 'a socket';
  if (s.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

/** 2 GiB − 1: the most Node reads into one buffer, and more than an ONNX (protobuf) file can hold. */
export const MAX_INPUT_BYTES = 2 ** 31 - 1;

/** A byte count in words: 2147483647 → "2.0 GiB", 1500 → "1.5 KiB", 12 → "12 bytes". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

export interface ReadOptions {
  /** The largest file accepted (default MAX_INPUT_BYTES). */
  maxBytes?: number;
  /** Why that is the limit, for the message (default: what Node can read at once). */
  limitReason?: string;
}

/**
 * Reads a whole regular file; errors become GradcamError("<path>: no such file"). Anything else
 * (/dev/zero, /dev/urandom, a FIFO, a socket, a folder) is refused before a byte is read: opened
 * with O_NONBLOCK so that a FIFO without a writer does not block the open.
 */
export async function readFileOrFail(path: InputPath, opts: ReadOptions = {}): Promise<Uint8Array> {
  if (path.length === 0) throw new GradcamError('an empty file name was given', 'Give the path of a file.');
  const shown = displayPath(path);
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new GradcamError(`${shown}: ${fileErrorReason(err)}`);
  }
  try {
    const s = await handle.stat();
    if (!s.isFile()) {
      throw new GradcamError(`${shown}: ${describeFileType(s)}, not a regular file`,
        s.isDirectory() ? 'Give a file, not a folder.' : 'Inputs are read from regular files only; save the data to a file first.');
    }
    const max = opts.maxBytes ?? MAX_INPUT_BYTES;
    if (s.size > max) {
      throw new GradcamError(`${shown}: ${formatBytes(s.size)} (${s.size} bytes), more than the ${formatBytes(max)} limit for this file (${opts.limitReason ?? 'the most Node reads into memory at once'})`);
    }
    const data = new Uint8Array(s.size);
    let off = 0;
    while (off < data.length) {
      const { bytesRead } = await handle.read(data, off, data.length - off, off);
      if (bytesRead === 0) break; // shrank while being read
      off += bytesRead;
    }
    return off === data.length ? data : data.subarray(0, off);
  } catch (err) {
    if (err instanceof GradcamError) throw err;
    throw new GradcamError(`${shown}: ${fileErrorReason(err)}`);
  } finally {
    await handle.close();
  }
}

const MAX_SYMLINKS = 40; // as Linux's path lookup (ELOOP)

/** lstat, or undefined when nothing is there. Other errors are thrown. */
async function lstatOrNone(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Where an output goes: the final path (symbolic links followed), what is there now, and how it
 * is written: 'atomic' (temporary file and rename), 'stream' (written into), else why not.
 */
interface OutputTarget {
  path: string;
  stats?: Stats;
  kind: 'atomic' | 'stream' | string;
}

/** The output rule for what is at a path: write atomically, stream into it, or refuse (why). */
function outputKind(s: Stats | undefined): OutputTarget['kind'] {
  if (!s || s.isFile()) return 'atomic';
  if (s.isFIFO() || s.isCharacterDevice()) return 'stream';
  return describeFileType(s);
}

/**
 * Follows symbolic links (a dangling one included: its target is created) to what is written.
 * A link in /proc (/dev/stdout → /proc/self/fd/1) names an open file, not a path: it is written
 * through, whatever it is, and never replaced.
 */
async function outputTarget(path: string): Promise<OutputTarget> {
  let p = resolve(path);
  for (let hops = 0; ; hops++) {
    const l = await lstatOrNone(p);
    if (!l?.isSymbolicLink()) return { path: p, stats: l, kind: outputKind(l) };
    if (hops >= MAX_SYMLINKS) throw Object.assign(new Error('too many symbolic links'), { code: 'ELOOP' });
    const folder = await realpath(dirname(p));
    if (folder.startsWith('/proc/') || folder === '/dev/fd') {
      const s = await stat(p);
      return { path: p, stats: s, kind: s.isFile() ? 'stream' : outputKind(s) };
    }
    const link = await readlink(p);
    p = isAbsolute(link) ? link : resolve(dirname(p), link);
  }
}

function cannotWrite(path: string, reason: string, hint?: string): GradcamError {
  return new GradcamError(`${path}: cannot write (${reason})`, hint);
}

/** What is at an output path (outputTarget), with an empty name or an unreadable path as the user's error. */
async function writeTarget(path: string): Promise<OutputTarget> {
  if (path === '') throw new GradcamError('an empty output file name was given', 'Give the path of the file to write.');
  try {
    return await outputTarget(path);
  } catch (err) {
    throw cannotWrite(path, fileErrorReason(err));
  }
}

/** Tells apart the temporary files of one process (with its pid and the time in their names). */
let tmpCount = 0;

/**
 * The temporary files of the atomic writes in progress. A process that exits in the middle of one
 * (process.exit: a second Ctrl-C during a multi-pass run quits at once, src/cli/passes.ts) removes
 * them on its way out: the target was never replaced, and no `.gradcam-*.tmp` is left beside it.
 */
const writing = new Set<string>();
let removesOnExit = false;

/** Removes the temporary files of the writes in progress (the 'exit' handler; synchronous, as 'exit' handlers must be). */
export function removeTemporaries(): void {
  for (const tmp of writing) rmSync(tmp, { force: true });
  writing.clear();
}

/** The signals whose default action ends the process without running 'exit' handlers (a terminal's Ctrl-C, kill, a closed terminal). */
export const ENDING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Listens for ENDING_SIGNALS while at least one atomic write is in progress (only then: the process
 * keeps their default action otherwise). It stands in for the default action only: a signal the
 * program listens for itself is that listener's (the CLI's Ctrl-C during multi-pass runs,
 * src/cli/passes.ts: cancel before the next batch, or process.exit(130), whose 'exit' handler removes
 * the temporary files), and this one does nothing. Else it removes the temporary files, stops
 * listening and sends the process the same signal again, so that it ends by it as it would have
 * (exit status "killed by SIGINT"; the CLI's parent process then ends by it too, src/cli/main.ts).
 */
function removeOnSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  removeTemporaries();
  stopListening();
  process.kill(process.pid, signal);
}

let listening = false;
function stopListening(): void {
  if (!listening) return;
  for (const s of ENDING_SIGNALS) process.off(s, removeOnSignal);
  listening = false;
}

/** `tmp` is being written: removed should the process end before the write does. */
function track(tmp: string): void {
  if (!removesOnExit) {
    process.on('exit', removeTemporaries);
    removesOnExit = true;
  }
  if (!listening) {
    for (const s of ENDING_SIGNALS) process.on(s, removeOnSignal);
    listening = true;
  }
  writing.add(tmp);
}

/** `tmp` was renamed or removed: the signals are left to their default action when no write is in progress. */
function untrack(tmp: string): void {
  writing.delete(tmp);
  if (writing.size === 0) stopListening();
}

/**
 * Writes `data` to `path`. A regular file (or a new one) is written through a temporary file in
 * the same folder and a rename (atomic on one file system), so a reader never sees half a file at
 * `path`, even if the process dies mid-write; an existing file keeps its permissions. A symbolic
 * link is written through (the link stays); a FIFO or a character device is written as a stream.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const target = await writeTarget(path);
  const { kind } = target;
  if (kind === 'stream') {
    try {
      await writeFile(target.path, data); // opened and written: nothing is replaced (FIFOs and devices ignore O_TRUNC)
    } catch (err) {
      throw cannotWrite(path, fileErrorReason(err));
    }
    return;
  }
  if (kind !== 'atomic') throw cannotWrite(path, `it is ${kind}`);
  const final = target.path;
  // A short name whatever the final one's length (a 250-byte name is legal; it plus a suffix is not: ENAMETOOLONG).
  const tmp = join(dirname(final), `.gradcam-${process.pid}-${Date.now().toString(36)}-${(tmpCount++).toString(36)}.tmp`);
  track(tmp);
  try {
    await writeFile(tmp, data, { flag: 'wx' });
    if (target.stats) await chmod(tmp, target.stats.mode & 0o7777);
    await rename(tmp, final);
  } catch (err) {
    await rm(tmp, { force: true });
    const reason = (err as NodeJS.ErrnoException)?.code === 'ENOENT' ? `no such folder: ${dirname(final)}` : fileErrorReason(err);
    throw cannotWrite(path, reason);
  } finally {
    untrack(tmp);
  }
}

/**
 * Fails early (before long work) when `path` cannot be written by writeFileAtomic: an empty name,
 * a folder, a block device or a socket there; a missing or read-only folder for a new or regular
 * file; a FIFO or device that is not writable.
 */
export async function checkWritable(path: string): Promise<void> {
  const target = await writeTarget(path);
  const { kind } = target;
  if (kind === 'stream') {
    try {
      await access(target.path, constants.W_OK);
    } catch (err) {
      throw cannotWrite(path, fileErrorReason(err));
    }
    return;
  }
  if (kind !== 'atomic') throw cannotWrite(path, `it is ${kind}`, kind === 'a folder' ? 'Give a file name, e.g. a path inside that folder.' : 'Choose another path.');
  const folder = dirname(target.path);
  try {
    const s = await stat(folder);
    if (!s.isDirectory()) throw cannotWrite(path, `${folder} is not a folder`);
    await access(folder, constants.W_OK);
  } catch (err) {
    if (err instanceof GradcamError) throw err;
    const reason = (err as NodeJS.ErrnoException)?.code === 'ENOENT' ? `no such folder: ${folder}` : fileErrorReason(err);
    throw cannotWrite(path, reason, 'Create the folder first, or choose another path.');
  }
}

/**
 * Creates a folder and the missing folders above it (mkdir -p), one level at a time from the
 * nearest existing folder: a bounded walk (one step per path component) that fails with the
 * errno of the level that cannot be made. Node's `mkdir(..., { recursive: true })` loops forever
 * where mkdir answers ENOENT although the parent exists (/proc).
 */
export async function makeFolders(dir: string): Promise<void> {
  const missing: string[] = [];
  let p = resolve(dir);
  for (;;) {
    let s: Stats | undefined;
    try {
      s = await stat(p);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err; // ENOTDIR: a file above, found on the way up
    }
    if (s) {
      if (!s.isDirectory()) throw new Error(`${p} is not a folder`);
      break;
    }
    missing.push(p);
    const parent = dirname(p);
    if (parent === p) break;
    p = parent;
  }
  for (const m of missing.reverse()) {
    try {
      await mkdir(m);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && (await stat(m).catch(() => undefined))?.isDirectory()) continue; // made meanwhile
      if (code === 'ENOENT') {
        // The parent exists (it was found or just made): this file system does not take new folders (/proc, /sys).
        throw Object.assign(new Error(`${dirname(m)} does not allow new folders`), { code: 'ENOENT_PARENT' });
      }
      throw err;
    }
  }
}
