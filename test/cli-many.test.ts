/**
 * `gradcam explain` and `classify` over many inputs, end to end (the built CLI as a child process)
 * with a tiny known-answer model (test/helpers/colour-squares.ts: the demonstration model
 * googlenet-known-answer's colour path on a 32×32 input; the point here is the many-input plumbing,
 * and the demonstration model itself runs in test/cli-explain.test.ts): a folder of three good
 * pictures (a red, a green and a blue square on grey, one of them 300×200) and one broken file.
 *
 * - explain: three result lines and one error line in the JSONL, in input order; exit code 1 at the
 *   end; one overlay per map in --out-dir named <stem>.<layer>.class<C>.<method>.png, at the
 *   picture's size; each picture's top-1 is its square's colour (the model's known answer);
 * - --resume after an interrupted run (two result lines and half a third kept): the half line is
 *   removed, only the missing inputs run, every input ends with exactly one line;
 * - classify with --jsonl -: the JSON lines on stdout; its batch [d-blue, a-red] gives bitwise the
 *   predictions explain gave them in other batches.
 * - --batch 2: the lines say which inputs ran together (`batch`).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { expectExit, gradcam, inParallel } from './helpers/cli.ts';
import { COLOUR_LAYERS, colourSquaresBytes } from './helpers/colour-squares.ts';

/** --model and the model file (written in beforeAll). */
let MODEL: string[];
/** The default layer: the last before the global pooling, 8×8. */
const LAYER = COLOUR_LAYERS[2];
let dir: string;
let pics: string;
const file = (name: string) => join(dir, name);
const pic = (name: string) => join(pics, name);

/** A grey picture with one square of `rgb`. */
async function square(path: string, w: number, h: number, rgb: number[], x: number, y: number, side: number): Promise<void> {
  const data = Buffer.alloc(w * h * 3, 128);
  for (let j = y; j < y + side; j++) for (let i = x; i < x + side; i++) data.set(rgb, (j * w + i) * 3);
  await sharp(data, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path);
}

interface Line { input: string; error?: string; predictions?: { class: number }[]; maps?: { layer: string; class: number; overlay?: string; raw: number[] }[] }
const lines = (text: string): Line[] => text.split('\n').filter(Boolean).map((l) => JSON.parse(l));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gradcam-many-'));
  pics = file('pics');
  await mkdir(pics);
  MODEL = ['--model', file('colour-squares.onnx')];
  await writeFile(MODEL[1], colourSquaresBytes());
  await square(pic('a-red.png'), 224, 224, [230, 20, 20], 40, 60, 80);
  await square(pic('b-green.png'), 300, 200, [20, 220, 30], 150, 50, 90);
  await writeFile(pic('c-broken.png'), 'this is not a PNG');
  await square(pic('d-blue.png'), 224, 224, [10, 30, 240], 100, 100, 70);
  await writeFile(pic('notes.txt'), 'not an input: no picture extension');
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const GOOD = { 'a-red': 0, 'b-green': 1, 'd-blue': 2 } as Record<string, number>;

describe('many inputs', () => {
  test('explain a folder: 3 results + 1 error line, exit 1, overlays named as documented', async () => {
    const run = await gradcam(['explain', pics, ...MODEL, '--out-dir', file('out'), '--jsonl', file('r.jsonl'), '--batch', '2'], 300_000);
    expectExit(run, 1);
    expect(run.stderr).toMatch(/^gradcam: .*c-broken\.png: not an image sharp can read/m);
    expect(run.stderr).toMatch(/^gradcam: 1 of 4 inputs failed \(the first: .*c-broken\.png: /m);
    const got = lines(await readFile(file('r.jsonl'), 'utf8'));
    expect(got.map((l) => l.input)).toEqual(['a-red', 'b-green', 'c-broken', 'd-blue'].map((n) => pic(`${n}.png`)));
    expect(got[2]).toEqual({ input: pic('c-broken.png'), error: expect.stringMatching(/c-broken\.png: not an image sharp can read/), hint: expect.any(String) });
    for (const l of [got[0], got[1], got[3]]) {
      const stem = l.input.split('/').pop()!.replace('.png', '');
      expect(l.predictions![0].class, l.input).toBe(GOOD[stem]);
      expect(l.maps).toHaveLength(1);
      expect(l.maps![0]).toMatchObject({ layer: LAYER, class: GOOD[stem], overlay: join(file('out'), `${stem}.${LAYER}.class${GOOD[stem]}.gradcam.png`) });
      expect(l.maps![0].raw).toHaveLength(64);
      expect(Math.max(...l.maps![0].raw)).toBeGreaterThan(0);
    }
    expect(readdirSync(file('out')).sort()).toEqual([
      `a-red.${LAYER}.class0.gradcam.png`, `b-green.${LAYER}.class1.gradcam.png`, `d-blue.${LAYER}.class2.gradcam.png`,
    ]);
    const meta = await sharp(file(`out/b-green.${LAYER}.class1.gradcam.png`)).metadata();
    expect([meta.width, meta.height]).toEqual([300, 200]);
    // --batch 2: a-red and b-green ran as one GPU batch; d-blue alone (c-broken, its batch mate, could not be read).
    expect([got[0], got[1], got[3]].map((l) => (l as { batch?: { images: number; index: number } }).batch)).toEqual([
      expect.objectContaining({ images: 2, index: 0 }), expect.objectContaining({ images: 2, index: 1 }), expect.objectContaining({ images: 1, index: 0 }),
    ]);
    // stdout: one line per input, in order.
    expect(run.stdout.split('\n').filter(Boolean).map((l) => l.split('  ')[0])).toEqual(got.map((l) => l.input));
  });

  test('--resume after an interrupted run: the cut line removed, only the missing inputs run', async () => {
    const first = (await readFile(file('r.jsonl'), 'utf8')).split('\n');
    // An interrupted run: a-red and b-green done, d-blue's line cut short; c-broken never reached.
    await writeFile(file('resume.jsonl'), `${first[0]}\n${first[1]}\n${first[3].slice(0, 40)}`);
    const before = statSync(file(`out/a-red.${LAYER}.class0.gradcam.png`)).mtimeMs;
    const run = await gradcam(['explain', pics, ...MODEL, '--out-dir', file('out'), '--jsonl', file('resume.jsonl'), '--resume'], 300_000);
    expectExit(run, 1);
    expect(run.stderr).toContain(`gradcam: 2 of 4 inputs have results in ${file('resume.jsonl')} already (--resume): 2 to go`);
    expect(run.stdout.split('\n').filter(Boolean).map((l) => l.split('  ')[0])).toEqual([pic('c-broken.png'), pic('d-blue.png')]);
    const got = lines(await readFile(file('resume.jsonl'), 'utf8'));
    expect(got.map((l) => l.input)).toEqual(['a-red', 'b-green', 'c-broken', 'd-blue'].map((n) => pic(`${n}.png`)));
    expect(got[3].predictions![0].class).toBe(2);
    expect(statSync(file(`out/a-red.${LAYER}.class0.gradcam.png`)).mtimeMs).toBe(before);
    expect(readdirSync(file('out')).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  test('classify several files with --jsonl -: JSON lines on stdout, exit 1 for the broken one', async () => {
    const run = await gradcam(['classify', pic('d-blue.png'), pic('c-broken.png'), pic('a-red.png'), ...MODEL, '--jsonl', '-', '--top', '2', '--batch', '3'], 300_000);
    expectExit(run, 1);
    const got = lines(run.stdout);
    expect(got.map((l) => [l.input.split('/').pop(), l.error === undefined ? l.predictions!.map((p) => p.class) : 'error'])).toEqual([
      ['d-blue.png', [2, 0]], ['c-broken.png', 'error'], ['a-red.png', [0, 1]],
    ]);
    // d-blue and a-red ran as one batch here, each in another batch (or alone) under explain: the same
    // logits and probabilities to the last bit (printed as the shortest decimal of each float32).
    const explained = lines(await readFile(file('r.jsonl'), 'utf8'));
    for (const name of ['d-blue', 'a-red']) {
      const c = got.find((l) => l.input === pic(`${name}.png`))!;
      const e = explained.find((l) => l.input === pic(`${name}.png`))!;
      expect(c.predictions, name).toEqual(e.predictions!.slice(0, 2));
    }
  });

  test('usage: --out and --json are for one input, --resume needs --jsonl', async () => {
    const cases = [
      [['explain', pics, '--out', file('x.png')], '--out is for one input; with several, use --out-dir DIR'],
      [['classify', pics, '--json', file('x.json')], '--json is for one input; with several, use --jsonl FILE'],
      [['explain', pics, '--resume'], '--resume needs --jsonl FILE'],
      [['classify', pics, '--batch', '0'], '--batch takes an integer ≥ 1'],
    ] as const;
    const runs = await inParallel(cases, ([args]) => gradcam([...args, ...MODEL]));
    for (const [i, run] of runs.entries()) {
      expectExit(run, 2);
      expect(run.stderr).toContain(cases[i][1]);
    }
    expect(existsSync(file('x.png'))).toBe(false);
  });
});
