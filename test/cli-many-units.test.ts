/**
 * The pieces of the many-inputs mode that need no GPU (src/cli/many.ts, src/cli/progress.ts): the
 * input list from files and folders, collision-safe output names, the JSONL on --resume (a line cut
 * short by an interrupted run is removed; inputs with a result line are skipped, error lines are
 * not), the loop's error handling, and the progress display on a terminal and in a log.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { Io } from '../src/cli/command.ts';
import { expandInputs, JsonlOutput, outputStems, overlayFileName, runMany } from '../src/cli/many.ts';
import { inputsProgress } from '../src/cli/progress.ts';
import { GradcamError } from '../src/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'gradcam-many-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function io(lines: string[] = [], info: string[] = []): Io {
  return { out: (l) => lines.push(l), info: (l) => info.push(l), progress: () => {}, isStdout: () => false };
}

describe('inputs', () => {
  test('files as named, folders as their pictures sorted by name, each path once', () => {
    const f = join(dir, 'pics');
    mkdirSync(f);
    for (const n of ['b.JPG', 'a.png', 'notes.txt', 'c.npy', 'd.webp']) writeFileSync(join(f, n), 'x');
    mkdirSync(join(f, 'sub.png')); // a folder inside is not a picture... but has the extension: listed, fails on its line
    expect(expandInputs([join(dir, 'missing.png'), f, join(f, 'a.png')])).toEqual([
      join(dir, 'missing.png'), join(f, 'a.png'), join(f, 'b.JPG'), join(f, 'c.npy'), join(f, 'd.webp'), join(f, 'sub.png'),
    ]);
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    expect(() => expandInputs([empty])).toThrow(/empty: the folder holds no \.png, \.jpg, \.jpeg, \.webp, \.npy files$/);
  });

  test('output stems: the base name, made safe, with -2, -3 for a name an earlier input has (case-insensitive)', () => {
    expect(outputStems(['x/a.png', 'y/a.jpg', 'z/A.webp', 'a-2.png', 'we ird:name.png', '.png'])).toEqual(['a', 'a-2', 'A-3', 'a-2-2', 'we_ird_name', '.png']);
    expect(overlayFileName('a-2', { layer: 'inception_4e/output_1', class: 7 })).toBe('a-2.inception_4e_output_1.class7.gradcam.png');
    expect(overlayFileName('a', { layer: '/x/y', class: 0, method: 'layercam', counterfactual: true })).toBe('a.x_y.class0.layercam-counterfactual.png');
  });
});

describe('JSONL', () => {
  test('--resume keeps complete lines, removes a line cut short, skips inputs with results only', async () => {
    const path = join(dir, 'r.jsonl');
    writeFileSync(path, `${JSON.stringify({ input: 'a.png', predictions: [] })}\n${JSON.stringify({ input: 'b.png', error: 'bad' })}\n{"input":"c.png","predic`);
    const out = await JsonlOutput.open(path, true, io());
    expect([...out.done]).toEqual(['a.png']);
    out.write({ input: 'c.png', predictions: [1] });
    out.close();
    expect(readFileSync(path, 'utf8').split('\n')).toEqual([
      '{"input":"a.png","predictions":[]}', '{"input":"b.png","error":"bad"}', '{"input":"c.png","predictions":[1]}', '',
    ]);
    // Without --resume the file starts anew.
    (await JsonlOutput.open(path, false, io())).close();
    expect(readFileSync(path, 'utf8')).toBe('');
    writeFileSync(path, 'not json\n');
    await expect(JsonlOutput.open(path, true, io())).rejects.toThrow(/r\.jsonl: line 1 is not JSON/);
  });

  test('the loop: read errors and run errors on their own lines in input order, a failed batch retried one by one, exit error at the end', async () => {
    const path = join(dir, 'loop.jsonl');
    const runs: string[][] = [];
    const lines: string[] = [];
    const done = runMany<string>({
      settings: { inputs: ['a', 'bad-read', 'b', 'bad-run', 'c'], batch: 2, jsonl: path, resume: false },
      io: io(lines),
      read: async (p) => {
        if (p === 'bad-read') throw new GradcamError(`${p}: not an image`);
        return p.toUpperCase();
      },
      run: async (batch) => {
        runs.push(batch.map((x) => x.input));
        if (batch.some((x) => x.path === 'bad-run')) throw new GradcamError('non-finite');
        return batch.map((x) => ({ value: x.input }));
      },
      describe: (p, r) => `${p} ${(r as { value: string }).value}`,
    });
    await expect(done).rejects.toThrow(/^2 of 5 inputs failed \(the first: bad-read: not an image\)$/);
    expect(runs).toEqual([['A'], ['B', 'BAD-RUN'], ['B'], ['BAD-RUN'], ['C']]);
    expect(readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      { input: 'a', value: 'A' }, { input: 'bad-read', error: 'bad-read: not an image' }, { input: 'b', value: 'B' },
      { input: 'bad-run', error: 'bad-run: non-finite' }, { input: 'c', value: 'C' },
    ]);
    // The error of an input run alone names it (the batch API's own message may not).
    expect(lines).toEqual(['a A', 'bad-read  error: bad-read: not an image', 'b B', 'bad-run  error: bad-run: non-finite', 'c C']);
  });

  test('JSONL to stdout (- or the file stdout goes to): the JSON lines only, no table', async () => {
    for (const jsonl of ['-', '/some/where/stdout-is.jsonl']) {
      const lines: string[] = [];
      const out: Io = { ...io(lines), isStdout: (p) => p === '/some/where/stdout-is.jsonl' };
      await runMany<string>({
        settings: { inputs: ['a', 'b'], batch: 2, jsonl, resume: false }, io: out,
        read: async (p) => p, run: async (batch) => batch.map((x) => ({ value: x.input })), describe: (p) => `TABLE ${p}`,
      });
      expect(lines).toEqual(['{"input":"a","value":"a"}', '{"input":"b","value":"b"}']);
    }
  });

  test('a bug (not a GradcamError) stops the loop', async () => {
    const done = runMany<string>({
      settings: { inputs: ['a', 'b'], batch: 1, resume: false }, io: io(),
      read: async (p) => p, run: async () => { throw new TypeError('bug'); }, describe: () => '',
    });
    await expect(done).rejects.toThrow(TypeError);
  });
});

describe('progress', () => {
  test('on a terminal: one line redrawn with the bar, count, images/s and time left', () => {
    let t = 0;
    const written: string[] = [];
    const p = inputsProgress(10, () => {}, { isTTY: true, columns: 80, write: (s) => written.push(s) }, { now: () => t });
    t = 2000;
    p.advance(2); // 1 image/s → 8 s left
    expect(written.at(-1)).toBe(`\r\x1b[K[${'#'.repeat(6).padEnd(30, '-')}] 2/10  1.0 images/s  0:08 left`);
    // A result line (stdout) on the same terminal: the bar is cleared first, then drawn again.
    const n = written.length;
    p.log('a.png  0 red', (l) => written.push(`OUT ${l}`));
    expect(written.slice(n)).toEqual(['\r\x1b[K', 'OUT a.png  0 red', written[n - 1]]);
    p.done();
    expect(written.at(-1)).toBe('\r\x1b[K');
  });

  test('in a log: a line every 10 s at most', () => {
    let t = 0;
    const info: string[] = [];
    const p = inputsProgress(100, (l) => info.push(l), { isTTY: false, write: () => { throw new Error('no drawing in a log'); } }, { now: () => t });
    for (let i = 0; i < 30; i++) {
      t += 1000;
      p.advance(1);
    }
    expect(info).toEqual(['gradcam: 10/100 inputs, 1.0 images/s, about 1:30 left', 'gradcam: 20/100 inputs, 1.0 images/s, about 1:20 left', 'gradcam: 30/100 inputs, 1.0 images/s, about 1:10 left']);
  });
});
