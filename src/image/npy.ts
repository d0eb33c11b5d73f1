/**
 * NumPy .npy files holding one float32 array in C order (what `np.save('x.npy', x.astype(np.float32))`
 * writes): the way to give the engine an input tensor exactly, with no image decoding or recipe.
 *
 * Format (numpy.lib.format): the magic "\x93NUMPY", a major and minor version byte, the header
 * length (uint16 little-endian in version 1, uint32 in versions 2 and 3), the header (a Python dict
 * literal such as `{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 224, 224), }`, padded
 * with spaces and a newline so the data starts at a multiple of 64 bytes; latin-1 in versions 1 and 2,
 * UTF-8 in version 3), then the raw values. Works on bytes only, so the browser can use it too.
 */
import { GradcamError } from '../errors.ts';

export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const KINDS: Record<string, string> = { f: 'float', i: 'int', u: 'uint', b: 'bool', c: 'complex', U: 'unicode string', S: 'byte string', O: 'Python object', M: 'datetime', m: 'timedelta', V: 'void' };

/** The most dimensions numpy gives an array (NPY_MAXDIMS in numpy 2; 32 in numpy 1). */
const MAX_DIMS = 64;

/**
 * A shape for a message, short whatever its rank: [1,3,224,224]; beyond 8 dimensions the first
 * six and the count, [1,1,1,1,1,1,…] (20000 dimensions).
 */
export function describeShape(shape: readonly number[]): string {
  if (shape.length <= 8) return `[${shape.join(',')}]`;
  return `[${shape.slice(0, 6).join(',')},…] (${shape.length} dimensions)`;
}

/** Header text for a message: at most 60 characters. */
const excerpt = (s: string) => (s.length > 60 ? `${s.slice(0, 59)}…` : s);

/** A numpy dtype string in words: '<f8' → 'float64', '>f4' → 'big-endian float32'. */
function describeDtype(descr: string): string {
  const m = /^([<>|=])([a-zA-Z])(\d+)$/.exec(descr);
  if (!m || !KINDS[m[2]]) return `'${excerpt(descr)}'`;
  const [, order, kind, size] = m;
  const bits = ['f', 'i', 'u', 'c'].includes(kind) ? `${Number(size) * 8}` : '';
  return `${order === '>' ? 'big-endian ' : ''}${KINDS[kind]}${bits}`;
}

function parseHeader(text: string): { descr: string; fortran: boolean; shape: number[] } {
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(text);
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text);
  const shape = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text);
  if (/['"]descr['"]\s*:\s*\[/.test(text)) throw new GradcamError("a structured (record) array; expected a plain float32 array ('<f4')");
  if (!descr || !fortran || !shape) throw new GradcamError(`not a valid .npy header (${JSON.stringify(text.trim().slice(0, 120))})`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (dims.length > MAX_DIMS) throw new GradcamError(`not a valid .npy shape (${dims.length} dimensions; numpy arrays have at most ${MAX_DIMS})`);
  if (dims.some((d) => !/^\d+$/.test(d))) throw new GradcamError(`not a valid .npy shape (${excerpt(shape[1])})`);
  return { descr: descr[1], fortran: fortran[1] === 'True', shape: dims.map(Number) };
}

/** Parses a .npy file holding a float32 C-order array. Throws GradcamError naming what is wrong. */
export function decodeNpy(bytes: Uint8Array): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new GradcamError('not a NumPy .npy file (it does not start with "\\x93NUMPY")', 'Save the tensor with numpy.save, e.g. np.save("x.npy", x.astype(np.float32)).');
  }
  const major = bytes[6];
  if (major < 1 || major > 3) throw new GradcamError(`.npy format version ${major}.${bytes[7]} is not supported (only 1, 2 and 3)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) throw new GradcamError('truncated .npy file (the header is incomplete)');
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lenBytes + headerLen;
  if (bytes.length < start) throw new GradcamError(`truncated .npy file (the header says it is ${headerLen} bytes long, the file ends before)`);
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(8 + lenBytes, start));
  const { descr, fortran, shape } = parseHeader(text);

  if (descr !== '<f4') {
    const hint = 'Convert it with x.astype(np.float32) before np.save.';
    if (descr === '>f4') throw new GradcamError(`dtype big-endian float32 ('>f4'); expected little-endian float32 ('<f4')`, hint);
    throw new GradcamError(`dtype ${describeDtype(descr)} ('${excerpt(descr)}'); expected float32 ('<f4')`, hint);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (fortran && shape.filter((d) => d > 1).length > 1) {
    throw new GradcamError(`the array is in Fortran (column-major) order; expected C order`, 'Save np.ascontiguousarray(x) instead.');
  }
  const want = count * 4;
  const have = bytes.length - start;
  if (have < want) throw new GradcamError(`truncated .npy file: shape ${describeShape(shape)} needs ${want} bytes of float32 data, the file holds ${have}`);
  if (have > want) throw new GradcamError(`the .npy file holds ${have - want} bytes more than its shape ${describeShape(shape)} needs (corrupt?)`);
  // Copied into a fresh, aligned buffer (a Node Buffer's slice() would be a view, not a copy).
  // .npy '<f4' is little-endian, like every WebGPU host.
  const data = new Float32Array(count);
  new Uint8Array(data.buffer).set(bytes.subarray(start, start + want));
  return { shape, data };
}

/** Encodes a float32 C-order array as .npy (version 1 unless the header needs more, or `version` says). */
export function encodeNpy(shape: readonly number[], data: Float32Array, version?: 1 | 2 | 3): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (shape.some((d) => !Number.isInteger(d) || d < 0) || count !== data.length) {
    throw new Error(`encodeNpy: shape [${shape}] does not match ${data.length} values`);
  }
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  const major = version ?? (dict.length + 11 > 0xffff ? 2 : 1);
  const prefix = major === 1 ? 10 : 12;
  // Pad with spaces so that the data starts at a multiple of 64 bytes; the header ends in '\n'.
  dict += ' '.repeat((64 - ((prefix + dict.length + 1) % 64)) % 64) + '\n';
  const header = new TextEncoder().encode(dict); // ASCII: the same bytes in latin-1 and UTF-8
  const out = new Uint8Array(prefix + header.length + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(header, prefix);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), prefix + header.length);
  return out;
}
