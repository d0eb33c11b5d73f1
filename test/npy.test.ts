/**
 * .npy reading and writing (src/image/npy.ts): byte-exact round trips in the three header versions
 * (the bytes below are what numpy 1.x/2.x `np.save` writes), and a specific refusal for every kind
 * of file the engine cannot take as a float32 C-order tensor.
 */
import { describe, expect, test } from 'vitest';
import { GradcamError } from '../src/errors.ts';
import { decodeNpy, describeShape, encodeNpy } from '../src/image/npy.ts';

/** A .npy file with a hand-written header dict, as numpy lays it out (padded to 64 bytes, '\n'). */
function npyWithHeader(dict: string, payload: Uint8Array, major = 1): Uint8Array {
  const prefix = major === 1 ? 10 : 12;
  const pad = (64 - ((prefix + dict.length + 1) % 64)) % 64;
  const header = new TextEncoder().encode(dict + ' '.repeat(pad) + '\n');
  const out = new Uint8Array(prefix + header.length + payload.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(header, prefix);
  out.set(payload, prefix + header.length);
  return out;
}

const dict = (descr: string, shape: string, fortran = 'False') => `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
const f32bytes = (v: number[]) => new Uint8Array(Float32Array.from(v).buffer);

function refusal(bytes: Uint8Array): string {
  try {
    decodeNpy(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(GradcamError);
    return (err as Error).message;
  }
  throw new Error('decodeNpy accepted the file');
}

describe('encodeNpy / decodeNpy', () => {
  test('round trip of shapes of rank 0 to 4, values exact', () => {
    for (const shape of [[], [5], [2, 3], [1, 3, 4, 5], [2, 0, 3]]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = Float32Array.from({ length: n }, (_, i) => (i - 7) * 0.37 + 1e-30 * i);
      const back = decodeNpy(encodeNpy(shape, data));
      expect(back.shape).toEqual(shape);
      expect(back.data).toEqual(data);
    }
  });

  // np.save of np.arange(6, dtype=np.float32).reshape(2, 3) (numpy 2.4), and the same array written
  // by numpy.lib.format.write_array with version=(2, 0) and (3, 0).
  const NUMPY_FILES = {
    1: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAACAPwAAAEAAAEBAAACAQAAAoEA=',
    2: 'k05VTVBZAgB0AAAAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAACAPwAAAEAAAEBAAACAQAAAoEA=',
    3: 'k05VTVBZAwB0AAAAeydkZXNjcic6ICc8ZjQnLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAACAPwAAAEAAAEBAAACAQAAAoEA=',
  } as const;
  const arange6 = Float32Array.from([0, 1, 2, 3, 4, 5]);

  for (const major of [1, 2, 3] as const) {
    test(`version ${major} header: decodes numpy's file, and encodes the same bytes`, () => {
      const file = new Uint8Array(Buffer.from(NUMPY_FILES[major], 'base64'));
      expect(file[6]).toBe(major);
      expect(decodeNpy(file)).toEqual({ shape: [2, 3], data: arange6 });
      expect(encodeNpy([2, 3], arange6, major)).toEqual(file);
    });
  }

  test('encodeNpy picks version 1, pads the header so that the data starts at a multiple of 64', () => {
    for (const shape of [[5], [3, 1], [1, 3, 224, 224]]) {
      const bytes = encodeNpy(shape, new Float32Array(shape.reduce((a, b) => a * b, 1)));
      const start = 10 + new DataView(bytes.buffer).getUint16(8, true);
      expect([bytes[6], start % 64, bytes[start - 1]]).toEqual([1, 0, 0x0a]);
    }
    const five = dict('<f4', '(5,)');
    expect(new TextDecoder().decode(encodeNpy([5], new Float32Array(5)).subarray(10, 10 + five.length))).toBe(five);
  });

  test('a hand-written version 2 file (as numpy writes for very long headers) decodes', () => {
    expect(decodeNpy(npyWithHeader(dict('<f4', '(2,)'), f32bytes([7, 8]), 2)).data).toEqual(Float32Array.from([7, 8]));
  });

  test('a file read into an unaligned buffer still decodes', () => {
    const bytes = encodeNpy([3], Float32Array.from([1, 2, 3]));
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    expect(decodeNpy(shifted.subarray(1)).data).toEqual(Float32Array.from([1, 2, 3]));
  });

  test('refuses other dtypes, naming them', () => {
    expect(refusal(npyWithHeader(dict('<f8', '(2,)'), new Uint8Array(16)))).toBe("dtype float64 ('<f8'); expected float32 ('<f4')");
    expect(refusal(npyWithHeader(dict('<i8', '(2,)'), new Uint8Array(16)))).toBe("dtype int64 ('<i8'); expected float32 ('<f4')");
    expect(refusal(npyWithHeader(dict('<f2', '(2,)'), new Uint8Array(4)))).toBe("dtype float16 ('<f2'); expected float32 ('<f4')");
    expect(refusal(npyWithHeader(dict('|u1', '(2,)'), new Uint8Array(2)))).toBe("dtype uint8 ('|u1'); expected float32 ('<f4')");
    expect(refusal(npyWithHeader(dict('|b1', '(2,)'), new Uint8Array(2)))).toBe("dtype bool ('|b1'); expected float32 ('<f4')");
    const structured = npyWithHeader("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", new Uint8Array(8));
    expect(refusal(structured)).toMatch(/structured \(record\) array/);
  });

  test('refuses big-endian float32', () => {
    expect(refusal(npyWithHeader(dict('>f4', '(2,)'), new Uint8Array(8)))).toBe("dtype big-endian float32 ('>f4'); expected little-endian float32 ('<f4')");
  });

  test('refuses Fortran order (but not for a shape where it makes no difference)', () => {
    expect(refusal(npyWithHeader(dict('<f4', '(2, 3)', 'True'), new Uint8Array(24)))).toMatch(/Fortran \(column-major\) order; expected C order/);
    expect(decodeNpy(npyWithHeader(dict('<f4', '(1, 3)', 'True'), f32bytes([1, 2, 3]))).data).toEqual(Float32Array.from([1, 2, 3]));
  });

  test('refuses a bad magic, an unknown version, a broken header', () => {
    expect(refusal(new TextEncoder().encode('{"not": "npy"} and more bytes'))).toMatch(/^not a NumPy \.npy file/);
    const v9 = encodeNpy([1], new Float32Array(1));
    v9[6] = 9;
    expect(refusal(v9)).toBe('.npy format version 9.0 is not supported (only 1, 2 and 3)');
    expect(refusal(npyWithHeader("{'descr': '<f4', 'shape': (2,), }", new Uint8Array(8)))).toMatch(/^not a valid \.npy header/);
    expect(refusal(npyWithHeader(dict('<f4', '(2, x)'), new Uint8Array(8)))).toMatch(/^not a valid \.npy shape/);
  });

  test('refuses truncated files (in the header and in the data) and trailing bytes', () => {
    const good = encodeNpy([2, 3], Float32Array.from([0, 1, 2, 3, 4, 5]));
    expect(refusal(good.subarray(0, 9))).toMatch(/^not a NumPy \.npy file/);
    expect(refusal(good.subarray(0, 60))).toBe('truncated .npy file (the header says it is 118 bytes long, the file ends before)');
    expect(refusal(good.subarray(0, good.length - 1))).toBe('truncated .npy file: shape [2,3] needs 24 bytes of float32 data, the file holds 23');
    const longer = new Uint8Array(good.length + 4);
    longer.set(good);
    expect(refusal(longer)).toMatch(/holds 4 bytes more than its shape \[2,3\] needs/);
  });
});

describe('messages stay short whatever the header says', () => {
  test('20,000 dimensions: refused by counting them (numpy has at most 64), not by listing them', () => {
    const dims = Array(20_000).fill('1').join(', ');
    const message = refusal(npyWithHeader(dict('<f4', `(${dims})`), f32bytes([1])));
    expect(message).toBe('not a valid .npy shape (20000 dimensions; numpy arrays have at most 64)');
  });

  test('more than 8 dimensions are summarised; a long dtype or shape text is cut', () => {
    const shape = Array(40).fill(1);
    shape[0] = 2;
    const message = refusal(npyWithHeader(dict('<f4', `(${shape.join(', ')})`), f32bytes([1])));
    expect(message).toBe('truncated .npy file: shape [2,1,1,1,1,1,…] (40 dimensions) needs 8 bytes of float32 data, the file holds 4');
    expect(describeShape([1, 3, 224, 224])).toBe('[1,3,224,224]');
    expect(refusal(npyWithHeader(dict(`<${'f'.repeat(5000)}`, '(2,)'), f32bytes([1, 2]))).length).toBeLessThan(200);
    expect(refusal(npyWithHeader(dict('<f4', `(${'x'.repeat(5000)},)`), f32bytes([1]))).length).toBeLessThan(120);
  });
});

test('decodes from a Node Buffer (whose slice() is a view, not a copy)', () => {
  const bytes = Buffer.concat([Buffer.from('padding'), Buffer.from(encodeNpy([2], Float32Array.from([4, 5])))]).subarray(7);
  expect(decodeNpy(bytes)).toEqual({ shape: [2], data: Float32Array.from([4, 5]) });
});
