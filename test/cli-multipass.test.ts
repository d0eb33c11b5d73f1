/**
 * The CLI's multi-pass methods (issue 20): `gradcam explain --method scorecam,ablationcam` on a small
 * model file writes both maps (JSON and overlays); --pass-batch and --skip-zero; their usage errors;
 * and Ctrl-C mid-run (SIGINT to the command, which forwards it to its GPU child process): exit 130,
 * 'cancelled (Ctrl-C)', no output file and no temporary file left.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { encodeNpy } from '../src/image/npy.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { CLI, expectExit, gradcam, ROOT } from './helpers/cli.ts';
import { SMALL_SHAPE, smallModel } from './helpers/small-model.ts';
import { buildModel, int, ints, node, weight } from './reference/models.ts';
import { randomTensor, rng } from './reference/tensor.ts';

const dir = mkdtempSync(join(tmpdir(), 'gradcam-multipass-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => join(dir, name);

const r = rng(4);
writeFileSync(file('small.onnx'), encodeOnnx(smallModel(2, 'flatten')));
writeFileSync(file('x.npy'), encodeNpy(SMALL_SHAPE, Float32Array.from(randomTensor(SMALL_SHAPE, r).data)));
/** x [1, 3, 8, 8] → conv 3×3 to 256 channels + ReLU → GAP → Gemm (5 classes): 256 cheap passes at 'a'. */
writeFileSync(file('wide.onnx'), encodeOnnx(buildModel({
  inputs: { x: [1, 3, 8, 8] },
  outputs: ['logits'],
  weights: [weight('w', randomTensor([256, 3, 3, 3], r)), weight('fc', randomTensor([5, 256], r)), weight('fcb', randomTensor([5], r))],
  nodes: [
    node('Conv', ['x', 'w'], ['c'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }), node('Relu', ['c'], ['a']),
    node('GlobalAveragePool', ['a'], ['g']), node('Flatten', ['g'], ['flat']), node('Gemm', ['flat', 'fc', 'fcb'], ['logits'], { transB: int(1) }),
  ],
})));
writeFileSync(file('w.npy'), encodeNpy([1, 3, 8, 8], Float32Array.from(randomTensor([1, 3, 8, 8], r).data)));

test('explain --method scorecam,ablationcam: both maps in the JSON and as overlays; --pass-batch, --skip-zero', async () => {
  const run = await gradcam(['explain', file('x.npy'), '--model', file('small.onnx'), '--method', 'scorecam,ablationcam', '--layer', 'cat', '--class', '3',
    '--pass-batch', '5', '--skip-zero', '--json', file('out.json'), '--out', file('o.png')]);
  expectExit(run, 0);
  // 16 channels for scorecam, and for ablationcam those not all zero.
  const passes = Number(/gradcam: (\d+) passes \(scorecam first\); Ctrl-C stops cleanly/.exec(run.stderr)?.[1]);
  expect(passes).toBeGreaterThan(16);
  expect(passes).toBeLessThanOrEqual(32);
  expect(run.stdout).toMatch(/passes [\d.]+ ms \(CPU clock\)/);
  const doc = JSON.parse(readFileSync(file('out.json'), 'utf8')) as { maps: { method: string; layer: string; class: number }[] };
  expect(doc.maps.map((m) => `${m.method} ${m.layer} ${m.class}`)).toEqual(['scorecam cat 3', 'ablationcam cat 3']);
  for (const m of ['scorecam', 'ablationcam']) expect(existsSync(file(`o.cat.class3.${m}.png`)), m).toBe(true);
});

test('--skip-zero without ablationcam and --pass-batch without a multi-pass method are usage errors', async () => {
  const a = await gradcam(['explain', file('x.npy'), '--model', file('small.onnx'), '--method', 'scorecam', '--skip-zero']);
  expectExit(a, 2);
  expect(a.stderr).toContain('gradcam: --skip-zero applies to --method ablationcam');
  const b = await gradcam(['explain', file('x.npy'), '--model', file('small.onnx'), '--pass-batch', '4']);
  expectExit(b, 2);
  expect(b.stderr).toMatch(/gradcam: --pass-batch applies to --method [^\n]*\bscorecam\b/);
  expect(b.stderr).toMatch(/gradcam: --pass-batch applies to --method [^\n]*\bablationcam\b/);
});

test('Ctrl-C mid-run: exit 130, cancelled, nothing written and no temporary file left', async () => {
  const out = join(dir, 'cancel');
  rmSync(out, { recursive: true, force: true });
  const child = spawn(process.execPath, [CLI, 'explain', file('w.npy'), '--model', file('wide.onnx'), '--method', 'scorecam', '--pass-batch', '1', '--json', join(dir, 'cancel.json'), '--out', join(dir, 'cancel.png')],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000, killSignal: 'SIGKILL' });
  let stderr = '';
  let sent = false;
  child.stderr.on('data', (d) => {
    stderr += d;
    // The first batch of passes is done (256 to go, one per batch): interrupt, as a terminal's Ctrl-C would.
    if (!sent && stderr.includes('passes (scorecam first)')) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  expect(sent, stderr).toBe(true);
  expect(signal, stderr).toBeNull();
  expect(code, stderr).toBe(130);
  expect(stderr).toContain('gradcam: cancelled (Ctrl-C)');
  expect(stderr).toContain('hint: Nothing was written.');
  expect(readdirSync(dir).filter((f) => f.startsWith('cancel') || f.endsWith('.tmp'))).toEqual([]);
}, 120_000);
