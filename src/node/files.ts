/**
 * File reading and writing for the Node entry points, with the errors a user can act on:
 * "model.onnx: no such file" instead of an ENOENT stack trace, and writes that never leave a
 * half-written file behind.
 */
import { constants } from 'node:fs';
import { access, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { GradcamError } from '../errors.ts';

/** The reason of a failed file operation, in words ("no such file", "permission denied", ...). */
export function fileErrorReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  switch (code) {
    case 'ENOENT': return 'no such file';
    case 'EISDIR': return 'is a folder, not a file';
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'ENOTDIR': return 'a part of the path is not a folder';
    case 'ENOSPC': return 'no space left on the device';
    default: return (err as Error)?.message ?? String(err);
  }
}

/** Reads a whole file; errors become GradcamError("<path>: no such file"). */
export async function readFileOrFail(path: string): Promise<Uint8Array> {
  try {
    const buf = await readFile(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (err) {
    throw new GradcamError(`${path}: ${fileErrorReason(err)}`);
  }
}

/**
 * Writes `data` to `path` through a temporary file in the same folder and a rename (atomic on one
 * file system), so a reader never sees half a file at `path`, even if the process dies mid-write.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    const reason = (err as NodeJS.ErrnoException)?.code === 'ENOENT' ? 'no such folder' : fileErrorReason(err);
    throw new GradcamError(`${path}: cannot write (${reason})`);
  }
}

/** Fails early (before long work) when `path` cannot be created: its folder is missing or not writable. */
export async function checkWritable(path: string): Promise<void> {
  const folder = dirname(path);
  try {
    const s = await stat(folder);
    if (!s.isDirectory()) throw new GradcamError(`${path}: cannot write (${folder} is not a folder)`);
    await access(folder, constants.W_OK);
  } catch (err) {
    if (err instanceof GradcamError) throw err;
    const reason = (err as NodeJS.ErrnoException)?.code === 'ENOENT' ? `no such folder: ${folder}` : fileErrorReason(err);
    throw new GradcamError(`${path}: cannot write (${reason})`, 'Create the folder first, or choose another path.');
  }
}
