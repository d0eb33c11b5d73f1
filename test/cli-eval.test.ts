/**
 * `gradcam eval` end to end (the built CLI as a child process) with a tiny known-answer model
 * (test/helpers/colour-squares.ts: GoogLeNet's known-answer colour path on a 32×32 input, three
 * stages), whose squares are the ground-truth boxes (VOC XML written next to the pictures): three
 * pictures whose boxes are their squares (one 300×200, so boxes scale from the map to the picture),
 * one whose box file puts the box in the opposite corner (a localisation that must count as wrong),
 * and one without a box file (its error line, exit code 1, the others still counted). Localisation
 * at the 32×32 layer 'opponent' (the colour response itself, to the pixel of the 32×32 input):
 * error 1 of 4 = 25 % top-1 and top-5. Average Drop ≥ 0 and no increase: the explanation input only
 * scales the colour square down on this model. The same localisation arithmetic on the real
 * known-answer GoogLeNet (at 224×224, through the API): test/metrics-known-answer.test.ts; the CLI's
 * default model: test/cli-explain.test.ts. (Until 2026-12-07 these ran on googlenet-known-answer:
 * 83 s of the suite, the CLI being the point here.)
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { METHODS } from '../src/gradcam/methods.ts';
import { annotationXml } from '../src/metrics/boxes.ts';
import { expectExit, gradcam, inParallel } from './helpers/cli.ts';
import { COLOUR_LAYERS, colourSquaresBytes } from './helpers/colour-squares.ts';

let dir: string;
const file = (name: string) => join(dir, name);
let model: string;

async function square(name: string, w: number, h: number, colour: 0 | 1 | 2, x: number, y: number, side: number, box = { x, y, side }): Promise<void> {
  const rgb = [20, 20, 20];
  rgb[colour] = 230;
  const data = Buffer.alloc(w * h * 3, 128);
  for (let j = y; j < y + side; j++) for (let i = x; i < x + side; i++) data.set(rgb, (j * w + i) * 3);
  await sharp(data, { raw: { width: w, height: h, channels: 3 } }).png().toFile(file(`pics/${name}.png`));
  const object = { name: ['red', 'green', 'blue'][colour], box: { xmin: box.x + 1, ymin: box.y + 1, xmax: box.x + box.side, ymax: box.y + box.side } };
  if (name !== 'e-nobox') await writeFile(file(`boxes/${name}.xml`), annotationXml({ filename: `${name}.png`, width: w, height: h, objects: [object] }));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gradcam-eval-'));
  await mkdir(file('pics'));
  await mkdir(file('boxes'));
  model = file('colour-squares.onnx');
  await writeFile(model, colourSquaresBytes());
  await square('a-red', 224, 224, 0, 40, 56, 128);
  await square('b-green', 300, 200, 1, 140, 40, 130);
  await square('c-blue', 224, 224, 2, 90, 80, 120);
  await square('d-red-wrong-box', 224, 224, 0, 20, 20, 120, { x: 150, y: 150, side: 70 });
  await square('e-nobox', 224, 224, 1, 50, 50, 120);
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('eval --boxes: localisation error 25 % (one wrong box of four), a missing box file on its own line, exit 1', async () => {
  const run = await gradcam(['eval', file('pics'), '--boxes', file('boxes'), '--model', model, '--layer', 'opponent',
    '--metrics', 'localisation,drop', '--json', file('eval.json')], 600_000);
  expectExit(run, 1);
  expect(run.stderr).toMatch(/^gradcam: .*e-nobox\.xml: no such file \(the box file for .*e-nobox\.png\)$/m);
  expect(run.stderr).toMatch(/^gradcam: 1 of 5 inputs failed/m);
  const doc = JSON.parse(await readFile(file('eval.json'), 'utf8'));
  expect(doc).toMatchObject({ model, layers: ['opponent'], methods: ['gradcam'], metrics: ['localisation', 'drop'],
    localisation: { threshold: 0.15, iou: 0.5 } });
  expect(doc.images.map((i: { input: string }) => i.input.split('/').pop())).toEqual(['a-red.png', 'b-green.png', 'c-blue.png', 'd-red-wrong-box.png']);
  const verdicts = doc.images.map((i: { methods: { localisation: { top1: boolean; top5: boolean } }[] }) => i.methods[0].localisation);
  expect(verdicts.map((v: { top1: boolean; top5: boolean }) => [v.top1, v.top5])).toEqual([[true, true], [true, true], [true, true], [false, false]]);
  expect(doc.images.map((i: { predictions: { class: number }[] }) => i.predictions[0].class)).toEqual([0, 1, 2, 0]);
  // b-green's box is in the 300×200 picture's pixels.
  const green = doc.images[1].methods[0].localisation.boxes[0].box;
  expect(green.xmax).toBeGreaterThan(224);
  expect(green.xmax).toBeLessThanOrEqual(300);
  const [s] = doc.summary;
  expect(s).toMatchObject({ method: 'gradcam', images: 4, increaseInConfidence: 0, localisation: { images: 4, top1Error: 25, top5Error: 25 } });
  expect(s.averageDrop).toBeGreaterThanOrEqual(0);
  expect(s.averageDrop).toBeLessThan(100);
  const table = run.stdout.trim().split('\n');
  expect(table[0]).toMatch(/^method +images +avg drop % +increase % +deletion AUC +insertion AUC +loc err top-1 % +top-5 %$/);
  expect(table[1]).toMatch(/^gradcam +4 +[\d.]+ +0\.00 +— +— +25\.00 +25\.00$/);
});

test('eval: usage errors before any work', async () => {
  const cases = [
    [['eval'], 'missing the pictures'],
    [['eval', file('pics'), '--method', 'gradcam,nope'], "--method takes gradcam"],
    [['eval', file('pics'), '--metrics', 'road', '--road-percentiles', '0,50'], "--road-percentiles takes numbers between 0 and 100 (exclusive), comma-separated, got '0,50'"],
    [['eval', file('pics'), '--road-percentiles', '50'], '--road-percentiles is for ROAD: add road to --metrics'],
    [['eval', file('pics'), '--method', 'gradcam,eigencam', '--eigen-smooth'], '--eigen-smooth does not apply to eigencam'],
    [['eval', file('pics'), '--metrics', 'localisation'], '--metrics localisation needs --boxes DIR'],
    [['eval', file('pics'), '--baseline', 'grey'], "--baseline must be 'zero' or 'blur', got 'grey'"],
    [['eval', file('pics'), '--steps', '0'], '--steps takes an integer ≥ 1'],
    // Shared with explain: an empty name is refused, not read as "the default method".
    // Every method of METHOD_SPECS is accepted (the guided ones and the input attributions by their display plane).
    [['eval', file('pics'), '--method', ''], `--method takes ${METHODS.join(', ')} (or several, comma-separated), got ''`],
    // Bounded by the model input's pixels (32 × 32 here), refused before any picture is read or the GPU starts.
    [['eval', file('pics'), '--model', model, '--steps', '1000000000'],
      "--steps takes an integer from 1 to 1024 (the model's input is 32×32 = 1024 pixels; each step changes at least one), got '1000000000'"],
  ] as const;
  // Each run ends before the GPU starts (Node processes, mostly on one core each): two side by side.
  const runs = await inParallel(cases, ([args]) => gradcam([...args]));
  for (const [i, run] of runs.entries()) {
    expectExit(run, 2);
    expect(run.stderr).toContain(cases[i][1]);
  }
});

/**
 * One run for hostile box files and the layer and method options. Localisation only (no perturbed
 * forward passes); two pictures are scored, the ones whose boxes are clipped, at every stage output.
 */
test('eval: a bad box file is its picture\'s error line (bad code point, infinite coordinate, unclosed tags, too big, box outside); boxes reaching out are clipped, said once; --layer all scores every block; --method gradcam,gradcam is one method', async () => {
  await mkdir(file('bad/pics'), { recursive: true });
  await mkdir(file('bad/boxes'), { recursive: true });
  const good = await readFile(file('boxes/a-red.xml'), 'utf8');
  const bodies: Record<string, string> = {
    'b-code-point': good.replace('<name>red</name>', '<name>&#99999999;</name>'),
    'c-infinite': good.replace(/<xmax>\d+<\/xmax>/, `<xmax>${'9'.repeat(400)}</xmax>`),
    'd-unclosed': `<annotation>${'<object>'.repeat(100_000)}`,
    'e-too-big': good.replace('</annotation>', `<!--${' '.repeat(2 ** 20)}--></annotation>`),
    'f-outside': good.replace(/<xmin>\d+<\/xmin>/, '<xmin>300</xmin>').replace(/<xmax>\d+<\/xmax>/, '<xmax>400</xmax>'),
    'g-clipped': good.replace(/<xmin>\d+<\/xmin>/, '<xmin>0</xmin>').replace(/<ymax>\d+<\/ymax>/, '<ymax>1000</ymax>'),
    'h-clipped': good.replace(/<ymin>\d+<\/ymin>/, '<ymin>-5</ymin>'),
  };
  for (const [name, xml] of Object.entries(bodies)) {
    await writeFile(file(`bad/boxes/${name}.xml`), xml);
    await writeFile(file(`bad/pics/${name}.png`), await readFile(file('pics/a-red.png')));
  }
  // Names that are not UTF-8 stay two inputs (not one 'i\ufffd.png' that opens neither): i\xfe's box file is bad, i\xff has none.
  const bytesName = (folder: string, byte: number, ext: string) => Buffer.concat([Buffer.from(file(`bad/${folder}/i`)), Buffer.from([byte]), Buffer.from(ext)]);
  await writeFile(bytesName('pics', 0xfe, '.png'), await readFile(file('pics/a-red.png')));
  await writeFile(bytesName('pics', 0xff, '.png'), await readFile(file('pics/a-red.png')));
  await writeFile(bytesName('boxes', 0xfe, '.xml'), bodies['b-code-point']);
  const run = await gradcam(['eval', file('bad/pics'), '--boxes', file('bad/boxes'), '--model', model, '--layer', 'all',
    '--method', 'gradcam,gradcam', '--metrics', 'localisation', '--json', file('bad.json')], 600_000);
  expectExit(run, 1);
  const line = (name: string) => run.stderr.split('\n').find((l) => l.includes(`${name}.xml`) && l.includes(`(the box file for ${file(`bad/pics/${name}.png`)})`));
  expect(line('b-code-point')).toMatch(/b-code-point\.xml:\d+:\d+: not well-formed XML: malformed character entity/);
  expect(line('c-infinite')).toMatch(/c-infinite\.xml: object 1 \('red'\) has no box .*<xmax> is '9{12}…' \(400 characters\), not a finite number/);
  expect(line('d-unclosed')).toMatch(/d-unclosed\.xml:\d+:\d+: not well-formed XML: unclosed tag: object/);
  expect(line('e-too-big')).toMatch(/e-too-big\.xml: 1\.0 MiB \(\d+ bytes\), more than the 1\.0 MiB limit for this file \(a box file is at most 1 MiB/);
  expect(line('f-outside')).toMatch(/f-outside\.xml: object 1 \('red'\): the box 300…400 × \d+…\d+ lies outside the 224×224 picture/);
  expect(line('i\\xfe')).toMatch(/i\\xfe\.xml:\d+:\d+: not well-formed XML: malformed character entity/);
  expect(line('i\\xff')).toMatch(/i\\xff\.xml: no such file/);
  expect(run.stderr).toMatch(/^gradcam: 7 of 9 inputs failed/m);
  const clipped = run.stderr.split('\n').filter((l) => /: clipped to it/.test(l));
  expect(clipped).toHaveLength(1);
  expect(clipped[0]).toMatch(/g-clipped\.xml: object 1 \('red'\): the box 0…\d+ × \d+…1000 reaches outside the 224×224 picture: clipped to it \(said once; other boxes are clipped alike\)/);
  const doc = JSON.parse(await readFile(file('bad.json'), 'utf8'));
  expect(doc.images.map((i: { input: string }) => i.input.split('/').pop())).toEqual(['g-clipped.png', 'h-clipped.png']);
  // --layer all: every block, each scored once per method (gradcam,gradcam is one method).
  expect(doc.methods).toEqual(['gradcam']);
  expect(doc.layers).toEqual([...COLOUR_LAYERS]);
  for (const image of doc.images) expect(image.methods.map((m: { layer: string; method: string }) => [m.layer, m.method])).toEqual(doc.layers.map((l: string) => [l, 'gradcam']));
  expect(doc.summary.map((r: { layer: string; method: string; images: number; localisation: { images: number } }) => [r.layer, r.method, r.images, r.localisation.images]))
    .toEqual(doc.layers.map((l: string) => [l, 'gradcam', 2, 2]));
  // The maps differ by layer: so do their boxes.
  expect(new Set(doc.images[0].methods.map((m: { localisation: { boxes: { box: unknown }[] } }) => JSON.stringify(m.localisation.boxes[0].box))).size).toBeGreaterThan(1);
  const table = run.stdout.trim().split('\n');
  expect(table[0]).toMatch(/^method +layer +images +avg drop %/);
  expect(table.slice(1).map((l) => l.split(/ +/).slice(0, 2))).toEqual(doc.layers.map((l: string) => ['gradcam', l]));
});
