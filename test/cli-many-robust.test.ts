/**
 * The many-inputs CLI against careless and hostile use (issue 17), on the small generated model of
 * test/helpers/small-model.ts (input 16×12, 10 classes: a run takes seconds on SwiftShader):
 *
 * - an output that is also an input (the same file by device and inode: named twice, through a
 *   symbolic link, a hard link) is a usage error before any work, and the input is untouched;
 * - --resume validates the whole JSONL first and changes nothing when it refuses (a picture, a
 *   corrupt line in the middle, text without a newline); only a cut-off last line is dropped, at its
 *   byte offset (invalid UTF-8 in an earlier line does not move it), and stderr says so;
 * - --jsonl /dev/full: "no space left on the device" (a GradcamError: exit 1, never a crash, exit 3), and
 *   stdout on /dev/full the same;
 * - temporary names stay within NAME_MAX for a 255-byte final name; an overlay name that would pass
 *   255 bytes is shortened with a hash, and the JSONL names the file written;
 * - file names that are not UTF-8 (a\xfe.png, a\xff.png) stay two inputs, shown with \xHH escapes;
 * - a NaN .npy among pictures fails on its own line, naming the file;
 * - the default batch is bounded by decoded bytes, and each batch is decoded only when it runs.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, linkSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { classify } from '../src/cli/classify.ts';
import { type Io, parseCommandArgs, UsageError } from '../src/cli/command.ts';
import { explain } from '../src/cli/explain.ts';
import { JsonlOutput, runMany } from '../src/cli/many.ts';
import { overlayFileName } from '../src/gradcam/json.ts';
import { GradcamError } from '../src/errors.ts';
import { encodeNpy } from '../src/image/npy.ts';
import { writeFileAtomic } from '../src/node/files.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { CLI, expectExit, gradcam, ROOT, type Run } from './helpers/cli.ts';
import { SMALL_SHAPE, smallModel } from './helpers/small-model.ts';

const dir = mkdtempSync(join(tmpdir(), 'gradcam-many-robust-'));
const file = (...names: string[]) => join(dir, ...names);
const MODEL = file('small.onnx');
let a: string;
let b: string;

/** A picture of one colour. */
async function picture(path: string, rgb: number[], w = 24, h = 20): Promise<void> {
  const data = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) data.set(rgb, i * 3);
  await sharp(data, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path);
}

function io(info: string[] = [], out: string[] = []): Io {
  return { out: (l) => out.push(l), info: (l) => info.push(l), progress: () => {}, isStdout: () => false };
}

/** A usage error before any work: exit 2, the message, no GPU started, nothing on stdout. */
function expectUsage(run: Run, message: RegExp): void {
  expectExit(run, 2);
  expect(run.stderr).toMatch(message);
  expect(run.stderr).not.toContain('SwiftShader');
  expect(run.stdout).toBe('');
}

beforeAll(async () => {
  writeFileSync(MODEL, encodeOnnx(smallModel(1, 'flatten')));
  a = file('a.png');
  b = file('b.png');
  await picture(a, [220, 30, 30]);
  await picture(b, [30, 30, 220]);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A command run in process (parsed as the CLI parses it): the usage error it throws before any work. */
async function usageError(argv: string[]): Promise<string> {
  const command = { classify, explain }[argv[0] as 'classify' | 'explain'];
  const err = await command.run(parseCommandArgs(command, argv.slice(1)), io()).then(() => undefined, (e: unknown) => e);
  expect(err, argv.join(' ')).toBeInstanceOf(UsageError);
  return (err as Error).message;
}

describe('an output that is also an input', () => {
  test('the CLI: classify a.png b.png --jsonl b.png is a usage error (exit 2) before any work, b.png untouched', async () => {
    const bBytes = readFileSync(b);
    const run = await gradcam(['classify', a, b, '--model', MODEL, '--jsonl', b]);
    expectUsage(run, new RegExp(`^gradcam: --jsonl ${b.replace(/[.]/g, '\\.')} is the input ${b.replace(/[.]/g, '\\.')} too \\(the same file\\)$`, 'm'));
    expect(readFileSync(b).equals(bBytes)).toBe(true);
  });

  test('through links, with --resume, for --json, --out, --save-input, --out-dir names and the model: usage errors, nothing changed', async () => {
    const bBytes = readFileSync(b);
    symlinkSync(b, file('link-to-b.jsonl'));
    linkSync(b, file('hard-b.jsonl'));
    for (const jsonl of [file('link-to-b.jsonl'), file('hard-b.jsonl')]) {
      expect(await usageError(['classify', a, b, '--model', MODEL, '--jsonl', jsonl])).toBe(`--jsonl ${jsonl} is the input ${b} too (the same file)`);
    }
    expect(await usageError(['explain', a, b, '--model', MODEL, '--jsonl', b, '--resume'])).toBe(`--jsonl ${b} is the input ${b} too (the same file)`);
    expect(readFileSync(b).equals(bBytes)).toBe(true);
    const aBytes = readFileSync(a);
    symlinkSync(a, file('link-to-a.png'));
    for (const [cmd, option] of [['classify', '--json'], ['classify', '--save-input'], ['explain', '--out'], ['explain', '--json']]) {
      expect(await usageError([cmd, a, '--model', MODEL, option, file('link-to-a.png')])).toBe(`${option} ${file('link-to-a.png')} is the input ${a} too (the same file)`);
    }
    expect(readFileSync(a).equals(aBytes)).toBe(true);
    const model = readFileSync(MODEL);
    expect(await usageError(['classify', a, b, '--model', MODEL, '--jsonl', MODEL])).toBe(`--jsonl ${MODEL} is the model file ${MODEL} too (the same file)`);
    expect(readFileSync(MODEL).equals(model)).toBe(true);
    // An input in --out-dir with the name of an overlay of another input (any class: the top one is not known yet).
    const od = file('od');
    mkdirSync(od);
    writeFileSync(join(od, 'x.png'), aBytes);
    linkSync(b, join(od, 'x.a3.class7.gradcam.png'));
    expect(await usageError(['explain', od, '--model', MODEL, '--out-dir', od]))
      .toBe(`--out-dir ${od}: an overlay could be named x.a3.class7.gradcam.png, which is the input ${join(od, 'x.a3.class7.gradcam.png')} too (the same file)`);
    // explain x.png --out x.png with several maps writes x.<layer>.class<C>.png next to it.
    linkSync(a, join(od, 'y.a3.class1.png'));
    expect(await usageError(['explain', join(od, 'y.a3.class1.png'), '--model', MODEL, '--out', join(od, 'y.png'), '--class', '1', '--class', '2']))
      .toBe(`--out ${od}: an overlay could be named y.a3.class1.png, which is the input ${join(od, 'y.a3.class1.png')} too (the same file)`);
    expect(readFileSync(join(od, 'x.a3.class7.gradcam.png')).equals(bBytes)).toBe(true);
  });
});

describe('--resume', () => {
  test('a file that is not JSONL, or a corrupt line in the middle: refused, the file unchanged', async () => {
    const cases: [string, Buffer, RegExp][] = [
      ['photo.png', readFileSync(a), /photo\.png: line 1 is not JSON/],
      ['middle.jsonl', Buffer.from('{"input":"a.png","predictions":[]}\nGARBAGE\n{"input":"b.png","predictions":[]}\n{"inp'), /middle\.jsonl: line 2 is not JSON/],
      ['text.txt', Buffer.from('my notes, no newline'), /text\.txt: .*not a JSONL file that gradcam wrote/],
      ['no-input.jsonl', Buffer.from('{"x":1}\n'), /no-input\.jsonl: line 1 has no "input"/],
    ];
    for (const [name, bytes, message] of cases) {
      const path = file(name);
      writeFileSync(path, bytes);
      await expect(JsonlOutput.open(path, true, io()), name).rejects.toThrow(message);
      expect(readFileSync(path).equals(bytes), name).toBe(true);
    }
  });

  test('the CLI refuses a picture as the JSONL to resume before any work, and leaves it as it was', async () => {
    const photo = file('photo-cli.png');
    await picture(photo, [1, 2, 3], 300, 200);
    const bytes = readFileSync(photo);
    const run = await gradcam(['classify', a, b, '--model', MODEL, '--jsonl', photo, '--resume']);
    expectExit(run, 1);
    expect(run.stderr).toMatch(/^gradcam: .*photo-cli\.png: line 1 is not JSON/m);
    expect(run.stderr).not.toContain('SwiftShader');
    expect(readFileSync(photo).equals(bytes)).toBe(true);
  });

  test('a cut-off last line is removed at its byte offset (invalid UTF-8 before it), and stderr says so', async () => {
    const path = file('bytes.jsonl');
    const first = Buffer.from('{"input":"a.png","x":"\xff"}\n', 'latin1'); // \xff: not UTF-8
    writeFileSync(path, Buffer.concat([first, Buffer.from('{"inp')]));
    const info: string[] = [];
    const out = await JsonlOutput.open(path, true, io(info));
    expect([...out.done]).toEqual(['a.png']);
    out.write({ input: 'b.png', predictions: [] });
    out.close();
    expect(readFileSync(path).equals(Buffer.concat([first, Buffer.from('{"input":"b.png","predictions":[]}\n')]))).toBe(true);
    expect(info).toEqual([`gradcam: ${path}: its last line was cut short (an interrupted run): removed, 5 bytes; that input runs again`]);
  });
});

describe('write errors and long names', () => {
  test('--jsonl /dev/full: a GradcamError "no space left on the device" (exit 1, not 3) that stops the run', async () => {
    const runs: string[] = [];
    const err = await runMany<string>({
      settings: { inputs: ['a', 'b'], batch: 1, jsonl: '/dev/full', resume: false }, io: io(),
      read: async (p) => p, run: async (batch) => batch.map((x) => (runs.push(x.input), {})), describe: () => '',
    }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(GradcamError);
    expect((err as Error).message).toBe('/dev/full: cannot write (no space left on the device)');
    expect(runs).toEqual(['a']); // nothing more is run once the results cannot be kept
  });

  test('writeFileAtomic: a final name of 255 bytes gets a temporary name within NAME_MAX', async () => {
    const sub = file('long');
    mkdirSync(sub);
    const name = `${'é'.repeat(100)}${'x'.repeat(51)}.png`; // 200 + 51 + 4 = 255 bytes
    expect(Buffer.byteLength(name)).toBe(255);
    await writeFileAtomic(join(sub, name), 'data');
    expect(readdirSync(sub)).toEqual([name]);
  });

  test('overlay names: at most 255 bytes, readable (stem, layer, class, method kept), distinct for distinct names', () => {
    const map = { layer: 'inception_4e/output_1', class: 7, method: 'gradcam' };
    const short = overlayFileName('a', map);
    expect(short).toBe('a.inception_4e_output_1.class7.gradcam.png');
    const long1 = overlayFileName(`${'x'.repeat(240)}1`, map);
    const long2 = overlayFileName(`${'x'.repeat(240)}2`, map);
    for (const n of [long1, long2]) {
      expect(Buffer.byteLength(n)).toBeLessThanOrEqual(255);
      expect(n).toMatch(/^x{100,}.*\.class7\.gradcam\.png$/);
    }
    expect(long1).not.toBe(long2);
    expect(overlayFileName(`${'x'.repeat(240)}1`, map)).toBe(long1);
  });
});

describe('a folder with awkward names: explain --out-dir --jsonl', () => {
  test('non-UTF-8 names stay distinct, long names are written (shortened when needed), a NaN .npy names itself', async () => {
    const pics = file('pics');
    mkdirSync(pics);
    const fe = Buffer.concat([Buffer.from(`${pics}/a`), Buffer.from([0xfe]), Buffer.from('.png')]);
    const ff = Buffer.concat([Buffer.from(`${pics}/a`), Buffer.from([0xff]), Buffer.from('.png')]);
    writeFileSync(fe, readFileSync(a));
    writeFileSync(ff, readFileSync(b));
    const long220 = `${'l'.repeat(216)}.png`;
    const long250 = `${'m'.repeat(246)}.png`;
    writeFileSync(join(pics, long220), readFileSync(a));
    writeFileSync(join(pics, long250), readFileSync(b));
    const nan = new Float32Array(SMALL_SHAPE.reduce((x, y) => x * y));
    nan[5] = NaN;
    writeFileSync(join(pics, 'nan.npy'), encodeNpy(SMALL_SHAPE, nan));
    const out = file('overlays');
    const run = await gradcam(['explain', pics, '--model', MODEL, '--out-dir', out, '--jsonl', file('pics.jsonl')], 180_000);
    expectExit(run, 1);
    const lines = readFileSync(file('pics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.input)).toEqual([`${pics}/a\\xfe.png`, `${pics}/a\\xff.png`, join(pics, long220), join(pics, long250), join(pics, 'nan.npy')]);
    for (const l of lines.slice(0, 4)) {
      expect(l.error, l.input).toBeUndefined();
      for (const m of l.maps) {
        expect(existsSync(m.overlay), m.overlay).toBe(true);
        expect(Buffer.byteLength(m.overlay.split('/').pop())).toBeLessThanOrEqual(255);
      }
    }
    expect(lines[0].maps[0].overlay).not.toBe(lines[1].maps[0].overlay);
    expect(lines[2].maps[0].overlay).toBe(join(out, overlayFileName('l'.repeat(216), lines[2].maps[0])));
    expect(lines[3].maps[0].overlay.split('/').pop()).toMatch(/^m{100,}.*\.gradcam\.png$/);
    expect(lines[4].error).toMatch(new RegExp(`^${join(pics, 'nan.npy').replace(/[.]/g, '\\.')}: .*non-finite values \\(NaN\\)`));
    expect(lines[4].error).not.toMatch(/input 0 of 1/);
    expect(readdirSync(out).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});

describe('bounded memory', () => {
  test('the default batch holds at most batchBytes of decoded inputs, each decoded only when its batch runs', async () => {
    const events: string[] = [];
    await runMany<string>({
      settings: { inputs: ['a', 'b', 'c', 'd', 'e'], resume: false, batchBytes: 100 }, io: io(),
      cost: async (p) => (p === 'c' ? 150 : 40),
      read: async (p) => {
        events.push(`read ${p}`);
        return p;
      },
      run: async (batch) => {
        events.push(`run ${batch.map((x) => x.input).join('')}`);
        return batch.map(() => ({}));
      },
      describe: () => '',
    });
    // 40 + 40 ≤ 100; c alone (150: more than the bound, but at least one input runs); d and e.
    expect(events).toEqual(['read a', 'read b', 'run ab', 'read c', 'run c', 'read d', 'read e', 'run de']);
  });
});

describe('stdout on a full disk', () => {
  test('info and classify (its results go through the parent) with stdout on /dev/full: exit 1, "stdout: cannot write (no space left on the device)"', () => {
    for (const args of [['info', MODEL], ['classify', a, '--model', MODEL]]) {
      const full = openSync('/dev/full', 'w');
      try {
        const run = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', full, 'pipe'], encoding: 'utf8', timeout: 120_000 });
        expect(run.status, `${args[0]}: ${run.stderr}`).toBe(1);
        expect(run.stderr).toMatch(/^gradcam: stdout: cannot write \(no space left on the device\)$/m);
        expect(run.stderr).not.toMatch(/\n\s+at |this is a bug/);
      } finally {
        closeSync(full);
      }
    }
  }, 240_000);
});
