/**
 * File names as the file system has them: bytes. Linux allows any bytes but '/' and NUL in a name,
 * and Node decodes string names as UTF-8, replacing what is not UTF-8 with U+FFFD: `a\xfe.png`
 * and `a\xff.png` would both become `a\ufffd.png`, one name that opens neither file. So a folder is
 * listed as bytes, and a name that is not UTF-8 stays a Buffer (Node's fs takes Buffer paths); it
 * is turned into text only to be shown or written to JSON (`displayPath`: each byte that is not
 * part of UTF-8 as `\xHH`).
 */
import { readdirSync } from 'node:fs';
import { extname, join } from 'node:path';

/** A path as text (valid UTF-8) or as the bytes of the file system (not UTF-8). */
export type InputPath = string | Buffer;

const DECODER = new TextDecoder('utf-8', { fatal: true });

/** The bytes as text when they are UTF-8; undefined otherwise. */
function utf8(bytes: Uint8Array): string | undefined {
  try {
    return DECODER.decode(bytes);
  } catch {
    return undefined;
  }
}

/** A path as text for messages, the table and the JSON: UTF-8 as it is, other bytes as `\xHH`. */
export function displayPath(p: InputPath): string {
  if (typeof p === 'string') return p;
  const text = utf8(p);
  if (text !== undefined) return text;
  let out = '';
  for (let i = 0; i < p.length;) {
    const n = utf8Length(p, i);
    out += n ? p.toString('utf8', i, i + n) : `\\x${p[i].toString(16).padStart(2, '0')}`;
    i += n || 1;
  }
  return out;
}

/** The length of the UTF-8 sequence at `i` (1–4 bytes), or 0 when the bytes there are not one. */
function utf8Length(b: Buffer, i: number): number {
  const c = b[i];
  if (c < 0x80) return 1;
  const n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  return n && i + n <= b.length && utf8(b.subarray(i, i + n)) !== undefined ? n : 0;
}

/** The path joined with a name of the folder, as text when both are UTF-8, else as bytes. */
export function joinName(folder: string, name: Buffer): InputPath {
  const text = utf8(name);
  if (text !== undefined) return join(folder, text);
  return Buffer.concat([Buffer.from(join(folder, '/')), name]);
}

/** The file name of a path without its folder and its extension, as bytes ('x/a\xff.png' → 'a\xff'). */
export function stemBytes(p: InputPath): Buffer {
  const b = typeof p === 'string' ? Buffer.from(p) : p;
  const name = b.subarray(b.lastIndexOf(0x2f) + 1);
  const dot = name.lastIndexOf(0x2e);
  return dot > 0 ? name.subarray(0, dot) : name;
}

/** The names in a folder, as bytes (readdir with encoding 'buffer'). */
export function listFolderNames(folder: string): Buffer[] {
  return readdirSync(folder, { encoding: 'buffer' });
}

/** The extension of a name or path, lower case ('.png'), from its displayed form. */
export function extensionOf(p: InputPath): string {
  return extname(displayPath(p)).toLowerCase();
}

/** Compares names by their bytes (the order `ls` gives in the C locale). */
export function compareNames(a: Buffer, b: Buffer): number {
  return Buffer.compare(a, b);
}
