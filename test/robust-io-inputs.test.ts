/**
 * Inputs that must not hurt the CLI (the built dist/gradcam.mjs, as a user runs it):
 *
 * - endless or blocking files (/dev/zero, /dev/urandom, a FIFO without a writer) as a model or an
 *   input: refused at once (only regular files are read), not read until memory runs out;
 * - a model file over 2 GiB (a sparse file): refused by its size;
 * - text from a model file (producer, node names) with terminal control sequences: printed escaped
 *   by `info` and in error messages; an error about a 20,000-character node name or a .npy header of
 *   20,000 dimensions stays one short line;
 * - pictures over the pixel limit (--max-pixels; default 16383², sharp's): refused from the header,
 *   with the numbers and how to raise it;
 * - `--class -1`: says what --class takes.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { samplePath } from '../src/cli/assets.ts';
import { decodeImageFile } from '../src/image/decode-node.ts';
import { encodeNpy } from '../src/image/npy.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { generateModelBytes } from '../weights/generate/index.ts';
import { expectExit, expectUserError, gradcam, inParallel } from './helpers/cli.ts';

const CHELSEA = samplePath('chelsea.png');
const ESC = '\x1b';
const CSI = '\u009b';
/** Raw control characters other than the newline, as a terminal would act on them. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

let dir: string;
const file = (name: string) => join(dir, name);
let zoo: OnnxModel;

/** A PNG whose header says width × height; its pixel data is a few bytes (a decompression bomb's header). */
function pngHeader(width: number, height: number): Uint8Array {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), body.length + 4);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(64))), chunk('IEND', Buffer.alloc(0))]);
}

/** A version-1 .npy whose header lists `dims` dimensions of 1 (and 4 bytes of data). */
function npyWithDims(dims: number): Uint8Array {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${Array(dims).fill('1').join(', ')}), }`;
  const header = Buffer.from(dict + ' '.repeat((64 - ((10 + dict.length + 1) % 64)) % 64) + '\n', 'latin1');
  const out = Buffer.alloc(10 + header.length + 4);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(out);
  out.writeUInt16LE(header.length, 8);
  header.copy(out, 10);
  return out;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gradcam-robust-in-'));
  zoo = decodeOnnx(generateModelBytes('googlenet-zoo-seeded'));
  await writeFile(file('zoo.onnx'), encodeOnnx(zoo));
  await writeFile(file('x.npy'), encodeNpy([1, 3, 224, 224], new Float32Array(3 * 224 * 224)));
  await writeFile(file('ansi.onnx'), encodeOnnx({ ...zoo, producerName: `evil${ESC}[31mRED${ESC}[0m${CSI}2J\x7f`, graphName: 'bell\x07' }));
  const rename = (name: string) => encodeOnnx({
    ...zoo, nodes: zoo.nodes.map((n) => (n.name === 'inception_4c/relu_3x3' ? { ...n, name, opType: 'DeformConv' } : n)),
  });
  await writeFile(file('ansi-node.onnx'), rename(`${ESC}]0;pwned\x07${ESC}[2Jnode\nforged line`));
  await writeFile(file('long-node.onnx'), rename(`n${'x'.repeat(20_000)}`));
  await writeFile(file('bomb.png'), pngHeader(30_000, 30_000));
  // 20,000 dimensions need a header of 40 KB: a version-1 header (uint16 length) holds it.
  await writeFile(file('dims.npy'), npyWithDims(20_000));
  await writeFile(file('huge.onnx'), '');
  await truncate(file('huge.onnx'), 3 * 2 ** 30); // sparse: no disk used
  execFileSync('mkfifo', [file('fifo.onnx')]);
  await symlink('/dev/zero', file('zero.npy'));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('endless and blocking files are refused at once', () => {
  const cases: [string, () => string[], RegExp][] = [
    ['info /dev/zero', () => ['info', '/dev/zero'], /^gradcam: \/dev\/zero: a character device, not a regular file$/],
    ['info /dev/urandom', () => ['info', '/dev/urandom'], /^gradcam: \/dev\/urandom: a character device, not a regular file$/],
    ['classify /dev/zero (the input)', () => ['classify', '/dev/zero', '--model', file('zoo.onnx')], /^gradcam: \/dev\/zero: a character device, not a regular file$/],
    ['classify with --model /dev/urandom', () => ['classify', file('x.npy'), '--model', '/dev/urandom'], /^gradcam: \/dev\/urandom: a character device, not a regular file$/],
    ['classify a .npy that links to /dev/zero', () => ['classify', file('zero.npy'), '--model', file('zoo.onnx')], /^gradcam: .*zero\.npy: a character device, not a regular file$/],
    ['info on a FIFO that nobody writes', () => ['info', file('fifo.onnx')], /^gradcam: .*fifo\.onnx: a FIFO \(named pipe\), not a regular file$/],
    ['info on a folder', () => ['info', dir], /^gradcam: .*: a folder, not a regular file$/],
    ['a model over 2 GiB (sparse)', () => ['info', file('huge.onnx')],
      /^gradcam: .*huge\.onnx: 3\.0 GiB \(3221225472 bytes\), more than the 2\.0 GiB limit for this file \(an ONNX file is one protobuf message, which holds at most 2 GiB\)$/],
  ];
  for (const [what, args, message] of cases) {
    test(what, async () => {
      const t0 = Date.now();
      const run = await gradcam(args(), 20_000);
      expectUserError(run, message);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(run.stderr).not.toContain('SwiftShader');
    });
  }
});

describe('text from a model file is printed escaped, and error lines stay short', () => {
  test('info: the producer and graph name with ANSI escapes, C1 and DEL are shown escaped', async () => {
    const run = await gradcam(['info', file('ansi.onnx')]);
    expectExit(run, 0);
    expect(run.stdout).not.toMatch(RAW_CONTROL);
    expect(run.stdout).toContain("producer   evil\\x1b[31mRED\\x1b[0m\\u009b2J\\x7f; IR version 7, opset 12; graph 'bell\\x07'");
    // The JSON keeps the exact text (escaped the JSON way), also on stdout.
    const json = await gradcam(['info', file('ansi.onnx'), '--json', '-']);
    expectExit(json, 0);
    expect(json.stdout).not.toMatch(RAW_CONTROL);
    expect(JSON.parse(json.stdout).producer).toBe(`evil${ESC}[31mRED${ESC}[0m${CSI}2J\x7f`);
  });

  test('an error naming a node with escapes and a newline: one line, escaped', async () => {
    const run = await gradcam(['info', file('ansi-node.onnx')]);
    expectExit(run, 2); // an unsupported op type
    expect(run.stderr).not.toMatch(RAW_CONTROL);
    const line = run.stderr.split('\n').find((l) => l.startsWith('gradcam: '))!;
    expect(line).toMatch(/ansi-node\.onnx: node '\\x1b\]0;pwned\\x07\\x1b\[2Jnode\\x0aforged line' \(DeformConv\): op type DeformConv is not supported/);
    expect(run.stderr).not.toMatch(/^forged line/m);
  });

  test('an error about a 20,000-character node name: every line at most 400 characters', async () => {
    const run = await gradcam(['info', file('long-node.onnx')]);
    expectExit(run, 2); // an unsupported op type
    const lines = run.stderr.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(400);
    // The start and the end of the message, the middle left out.
    expect(lines[0]).toMatch(/^gradcam: .*long-node\.onnx: node 'nx+…[^']*$/);
    expect(lines[0].length).toBe(400);
  });

  test('a .npy header of 20,000 dimensions: a short message that counts them', async () => {
    const run = await gradcam(['classify', file('dims.npy'), '--model', file('zoo.onnx')]);
    expectUserError(run, /^gradcam: .*dims\.npy: not a valid \.npy shape \(20000 dimensions; numpy arrays have at most 64\)$/);
    expect(run.stderr.length).toBeLessThan(300);
  });
});

describe('the picture size limit', () => {
  test('a decompression bomb (a 30000×30000 PNG header): refused from the header with the default limit, before the GPU', async () => {
    const t0 = Date.now();
    const run = await gradcam(['classify', file('bomb.png'), '--model', file('zoo.onnx')]);
    expectUserError(run, /^gradcam: .*bomb\.png: 30000×30000 pixels \(900 megapixels\), more than the limit of 268402689 pixels \(268\.4 megapixels\)$/);
    expect(run.stderr).toContain('hint: Shrink the picture, or raise the limit with --max-pixels 900000000 (decoding takes 4 bytes per pixel of memory).');
    expect(run.stderr).not.toContain('SwiftShader');
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  test('--max-pixels lowers it (explain and classify); a bad value is a usage error', async () => {
    const commands = ['classify', 'explain'];
    for (const run of await inParallel(commands, (command) => gradcam([command, CHELSEA, '--model', file('zoo.onnx'), '--max-pixels', '100000']))) {
      expectUserError(run, /^gradcam: .*chelsea\.png: 451×300 pixels \(0\.1 megapixels\), more than the limit of 100000 pixels \(0\.1 megapixels\)$/);
      expect(run.stderr).toContain('--max-pixels 135300');
    }
    const bads = ['0', '-5', 'lots'];
    for (const [i, run] of (await inParallel(bads, (bad) => gradcam(['classify', CHELSEA, '--max-pixels', bad]))).entries()) {
      const bad = bads[i];
      expectExit(run, 2);
      expect(run.stderr).toContain(`gradcam: --max-pixels takes a number of pixels (width × height)`);
      expect(run.stderr).toContain(`got '${bad}'`);
    }
  });

  test('decodeImageFile: exactly at the limit decodes, one pixel less is refused', async () => {
    const img = await decodeImageFile(CHELSEA, { maxPixels: 451 * 300 });
    expect([img.width, img.height]).toEqual([451, 300]);
    await expect(decodeImageFile(CHELSEA, { maxPixels: 451 * 300 - 1 })).rejects.toThrow(/451×300 pixels .* more than the limit of 135299 pixels/);
  });
});

describe('option values that start with a dash', () => {
  test("--class -1 says what --class takes (not 'ambiguous'); so do --class=-1 and --top -3", async () => {
    const base = ['explain', file('x.npy'), '--model', file('zoo.onnx')];
    const runs = await inParallel([[...base, '--class', '-1'], [...base, '-c', '-1'], [...base, '--class=-1'], ['classify', file('x.npy'), '--top', '-3'],
      ['info', file('zoo.onnx'), '--json', '--model']], (args) => gradcam(args));
    for (const run of runs.slice(0, 3)) {
      expectExit(run, 2);
      expect(run.stderr).toMatch(/^gradcam: --class takes a class index ≥ 0, 'top' or 'topK', got '-1'\nusage: gradcam explain /);
    }
    const [top, json] = runs.slice(3);
    expectExit(top, 2);
    expect(top.stderr).toMatch(/^gradcam: --top takes an integer ≥ 1, got '-3'\n/);
    expectExit(json, 2);
    expect(json.stderr).toMatch(/^gradcam: --json takes a file name \('-': stdout\), got the option '--model' instead \(write --json=--model for a value that starts with '-'\)\n/);
  });
});
