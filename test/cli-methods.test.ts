/**
 * `gradcam explain --method … --counterfactual` end to end (the built CLI as a child process): the
 * methods of one request in one run, their JSON fields and overlay file names; a bad method name is a
 * usage error (exit 2) that lists the valid names, before the GPU starts. The method runs use the
 * small model of test/helpers/small-model.ts (an inception-like concat 'cat', 16×12 input): their
 * point is the command (the methods' values on GoogLeNet: cam-methods-googlenet and
 * guided-googlenet); --inspect runs on googlenet-zoo-seeded, whose inception branches it reports.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { encodeNpy } from '../src/image/npy.ts';
import { METHODS } from '../src/gradcam/methods.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { Rng } from '../weights/generate/random.ts';
import { expectExit, gradcam } from './helpers/cli.ts';
import { SMALL_SHAPE, smallModel } from './helpers/small-model.ts';

let dir: string;
const file = (name: string) => join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gradcam-methods-'));
  const rng = new Rng(9);
  await writeFile(file('x.npy'), encodeNpy([1, 3, 224, 224], Float32Array.from({ length: 3 * 224 * 224 }, () => rng.normal() * 50)));
  await writeFile(file('small.onnx'), encodeOnnx(smallModel(5, 'flatten')));
  await writeFile(file('s.npy'), encodeNpy(SMALL_SHAPE, Float32Array.from({ length: 3 * 16 * 12 }, () => rng.normal())));
});
/** The small model: its input 'x' [1, 3, 16, 12], its default layer (the last before the pooling) 'a3', 8×6. */
const SMALL = () => [file('s.npy'), '--model', file('small.onnx')];
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('--method a,b --method c --counterfactual: every map has its method in the JSON, the table and the overlay name', async () => {
  const run = await gradcam(['explain', ...SMALL(), '--class', 'top2',
    '--method', 'gradcam,eigencam', '--method', 'layercam', '--counterfactual', '--json', file('m.json'), '--out', file('cam.png')], 300_000);
  expectExit(run, 0);
  const doc = JSON.parse(await readFile(file('m.json'), 'utf8'));
  expect(doc.maps.map((m: { method: string }) => m.method)).toEqual(['gradcam', 'gradcam', 'eigencam', 'eigencam', 'layercam', 'layercam']);
  // The counterfactual negates gradients: eigencam has none.
  expect(doc.maps.map((m: { counterfactual: boolean }) => m.counterfactual)).toEqual([true, true, false, false, true, true]);
  const eigen = doc.maps.find((m: { method: string }) => m.method === 'eigencam');
  expect(eigen.eigen.converged).toBe(true);
  expect(eigen.eigen.iterations).toBeGreaterThan(1);
  expect(run.stdout).toMatch(/^a3 +gradcam \(cf\) +\d+ /m);
  expect(run.stdout).toMatch(/^a3 +eigencam +\d+ /m);
  for (const m of doc.maps) {
    const name = `cam.a3.class${m.class}.${m.method}${m.counterfactual ? '-counterfactual' : ''}.png`;
    expect(existsSync(file(name)), name).toBe(true);
  }
});

test('a bad method name is a usage error listing the valid names, before the GPU starts', async () => {
  const run = await gradcam(['explain', ...SMALL(), '--method', 'gradcam,fullgrad']);
  expectExit(run, 2);
  expect(run.stderr).toContain(`--method takes ${METHODS.join(', ')} (or several, comma-separated), got 'fullgrad'`);
  expect(run.stderr).not.toContain('SwiftShader');
});

test('--inspect: a diagnosis line per map in the table; the inspection in the JSON (weights, channels, branches, CAM identity)', async () => {
  const run = await gradcam(['explain', file('x.npy'), '--model', 'googlenet-zoo-seeded', '--inspect', '--json', file('i.json')], 300_000);
  expectExit(run, 0);
  expect(run.stdout).toMatch(/^ {2}The map is (positive at \d+ of 49 positions|all zero because)/m);
  const [m] = JSON.parse(await readFile(file('i.json'), 'utf8')).maps;
  expect(m.layer).toBe('inception_5b/output_1');
  const i = m.inspection;
  expect(i.weights).toHaveLength(1024);
  expect(i.contributions).toHaveLength(1024);
  expect(i.signed).toHaveLength(49);
  expect(i.topChannels[0].activation).toHaveLength(49);
  expect(i.topChannels[0].gradient).toHaveLength(49);
  expect(i.branches.map((b: { kind: string }) => b.kind)).toEqual(['1×1', '3×3', '5×5', 'pool proj']);
  expect(i.branches[3].channels[1]).toBe(1024);
  expect(i.camIdentity.applies).toBe(true);
  expect(i.diagnosis).toBe(run.stdout.split('\n').find((l) => l.startsWith('  The map'))!.trim());
});

test('--method guided-backprop,guided-gradcam: [3, H, W] maps in the JSON, an overlay each', async () => {
  const run = await gradcam(['explain', ...SMALL(), '--method', 'guided-backprop,guided-gradcam',
    '--json', file('g.json'), '--out', file('g.png')], 300_000);
  expectExit(run, 0);
  const doc = JSON.parse(await readFile(file('g.json'), 'utf8'));
  expect(doc.maps.map((m: { method: string }) => m.method)).toEqual(['guided-backprop', 'guided-gradcam']);
  expect(doc.maps[0].layer).toBe('x');
  expect(doc.maps[1].layer).toBe('a3');
  for (const m of doc.maps) {
    expect(m.shape).toEqual([3, 16, 12]);
    expect(m.raw).toHaveLength(3 * 16 * 12);
  }
  expect(existsSync(file('g.x.class' + doc.maps[0].class + '.guided-backprop.png'))).toBe(true);
  expect(existsSync(file('g.a3.class' + doc.maps[1].class + '.guided-gradcam.png'))).toBe(true);
});
