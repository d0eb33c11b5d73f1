/**
 * `gradcam explain` end to end (the built CLI as a child process): the default model and input, the
 * JSON and the overlays of `--layer all --class top3`, bad requests (refused before the GPU starts)
 * and atomic output files.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { encodeNpy } from '../src/image/npy.ts';
import { Rng } from '../weights/generate/random.ts';
import { expectExit, expectUserError, gradcam, inParallel, type Run } from './helpers/cli.ts';

let dir: string;
const file = (name: string) => join(dir, name);
const BLOCKS = ['3a', '3b', '4a', '4b', '4c', '4d', '4e', '5a', '5b'];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gradcam-explain-'));
  const rng = new Rng(9);
  await writeFile(file('x.npy'), encodeNpy([1, 3, 224, 224], Float32Array.from({ length: 3 * 224 * 224 }, () => rng.normal() * 50)));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('explain', () => {
  /** The two GPU runs, started together (each mostly Node, Dawn and shader compiles on one core); each test awaits its own. */
  let runs: Promise<[Run, Run]>;
  beforeAll(() => {
    runs = Promise.all([
      // An empty cache: no real weights, so the demonstration model is the default.
      gradcam(['explain'], 180_000, { ...process.env, GRADCAM_CACHE: file('empty-cache') }),
      gradcam(['explain', file('x.npy'), '--model', 'googlenet-zoo-seeded', '--layer', 'all', '--class', 'top3',
        '--json', file('all.json'), '--out', file('cam.png')], 300_000),
    ]);
    runs.catch(() => undefined); // (a failure is reported by the tests that await it)
  });

  test('no arguments: the sample photo with the demonstration model, announced in one line', async () => {
    const [run] = await runs;
    expectExit(run, 0);
    const notices = run.stderr.split('\n').filter((l) => l.includes('demonstration model'));
    expect(notices).toEqual([expect.stringMatching(/^gradcam: using the demonstration model googlenet-known-answer .*gradcam fetch googlenet-12/)]);
    expect(run.stdout).toMatch(/^inception_5b\/output_1 +gradcam +\d+ +(red|green|blue) /m);
    expect(run.stdout).toMatch(/^timings \((GPU timestamps|CPU clock), .+\): forward [\d.]+ ms, backward [\d.]+ ms, maps [\d.]+ ms, total [\d.]+ ms$/mi);
  });

  test('--layer all --class top3: 27 maps from one pass in the JSON, one overlay PNG per map at the input size', async () => {
    const [, run] = await runs;
    expectExit(run, 0);
    const doc = JSON.parse(await readFile(file('all.json'), 'utf8'));
    const top3 = doc.predictions.slice(0, 3).map((p: { class: number }) => p.class);
    expect(doc.maps).toHaveLength(27);
    for (const [i, b] of BLOCKS.entries()) {
      const maps = doc.maps.slice(3 * i, 3 * i + 3);
      expect(maps.map((m: { layer: string }) => m.layer)).toEqual(Array(3).fill(`inception_${b}/output_1`));
      expect(maps.map((m: { class: number }) => m.class)).toEqual(top3);
      for (const m of maps) {
        expect(m.reduction).toBe('logit');
        expect(m.raw).toHaveLength(m.shape[0] * m.shape[1]);
        expect(Math.min(...m.raw)).toBeGreaterThanOrEqual(0);
        expect(m.max).toBe(Math.max(...m.raw));
      }
    }
    expect(doc.maps[0].shape).toEqual([28, 28]);
    expect(doc.maps[26].shape).toEqual([7, 7]);
    expect(doc.logits).toHaveLength(1000);
    expect(doc.adapter).toMatchObject({ vendor: expect.any(String), architecture: expect.any(String), isSoftware: expect.any(Boolean) });
    expect(doc.timings.forwardMs).toBeGreaterThan(0);
    expect(doc.timings.backwardMs).toBeGreaterThan(0);
    expect(doc.timings.totalMs).toBeGreaterThanOrEqual(doc.timings.forwardMs);
    const pngs = readdirSync(dir).filter((f) => f.startsWith('cam.') && f.endsWith('.png')).sort();
    expect(pngs).toHaveLength(27);
    expect(pngs).toContain(`cam.inception_4e_output_1.class${top3[1]}.png`);
    const meta = await sharp(file(`cam.inception_5b_output_1.class${top3[0]}.png`)).metadata();
    expect([meta.width, meta.height]).toEqual([224, 224]);
  });

  test('bad requests are refused before the GPU starts', async () => {
    const base = ['explain', file('x.npy'), '--model', 'googlenet-zoo-seeded'];
    // Each run ends before the GPU starts (Node start-ups and the model's decoding, mostly one core each): side by side.
    const [classRange, top, after, unknown, usage] = await inParallel([['--class', '1000'], ['--class', 'top1001'], ['--layer', 'prob_1'], ['--layer', 'inception_9z'],
      ['--reduction', 'entropy']], (args) => gradcam([...base, ...args]));
    expectUserError(classRange, /^gradcam: class index 1000 is out of range: the model has classes 0 … 999$/);
    expectUserError(top, /^gradcam: top1001 asks for 1001 classes, but the model has 1000$/);
    expectUserError(after, /^gradcam: layer 'prob_1' comes after the reduction layer 'loss3\/classifier_1'/);
    expectUserError(unknown, /^gradcam: unknown layer 'inception_9z'$/);
    expectExit(usage, 2);
    expect(usage.stderr).toContain("--reduction must be 'logit' or 'softmax', got 'entropy'");
    for (const run of [classRange, top, after, unknown, usage]) expect(run.stderr).not.toContain('SwiftShader');
  });

  test('an output that cannot be written is an error before the work starts, and no partial file is left', async () => {
    const out = join(dir, 'no-such-folder', 'cam.png');
    const run = await gradcam(['explain', file('x.npy'), '--model', 'googlenet-zoo-seeded', '--out', out, '--json', file('partial.json')]);
    expectUserError(run, /^gradcam: .*no-such-folder\/cam\.png: cannot write \(no such folder: .*no-such-folder\)$/);
    expect(run.stderr).not.toContain('SwiftShader');
    expect(existsSync(file('partial.json'))).toBe(false);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  });
});
