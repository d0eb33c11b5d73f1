/**
 * The CLI's multi-pass methods (issue 20): `gradcam explain --method scorecam,ablationcam` on a small
 * model file writes both maps (JSON and overlays); --pass-batch and --skip-zero; their usage errors;
 * and Ctrl-C mid-run (SIGINT to the command, which forwards it to its GPU child process; under
 * --aug-smooth, six times the passes): exit 130, 'cancelled (Ctrl-C)', no output file and no
 * temporary file left, nor after an exit in the middle of a write (a second Ctrl-C). With several inputs: one bar of
 * passes over all of them (src/cli/passes.ts, driven here with a fake terminal and clock), and
 * Ctrl-C keeps the inputs finished before it whole (overlays, JSONL lines), writes nothing of the one
 * in flight, and --resume then takes the JSONL as it is.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { resumeState } from '../src/cli/jsonl.ts';
import { manyPassesSession } from '../src/cli/passes.ts';
import { removeTemporaries, writeFileAtomic } from '../src/node/files.ts';
import { AbortError } from '../src/errors.ts';
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
mkdirSync(file('inputs'));
for (const name of ['a', 'b', 'c']) writeFileSync(join(dir, 'inputs', `${name}.npy`), encodeNpy([1, 3, 8, 8], Float32Array.from(randomTensor([1, 3, 8, 8], r).data)));

/** Resolves with the exit code and signal of a child process, and everything it wrote. */
function ended(child: ChildProcess, onData: (stdout: string, stderr: string) => void = () => {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  let stdout = '', stderr = '';
  child.stdout!.on('data', (d) => { stdout += d; onData(stdout, stderr); });
  child.stderr!.on('data', (d) => { stderr += d; onData(stdout, stderr); });
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

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

test('Ctrl-C mid-run under --aug-smooth: the bar counts six times the passes; exit 130, cancelled, nothing written and no temporary file left', async () => {
  const out = join(dir, 'cancel');
  rmSync(out, { recursive: true, force: true });
  const child = spawn(process.execPath, [CLI, 'explain', file('w.npy'), '--model', file('wide.onnx'), '--method', 'scorecam', '--aug-smooth', '--pass-batch', '1', '--json', join(dir, 'cancel.json'), '--out', join(dir, 'cancel.png')],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000, killSignal: 'SIGKILL' });
  let stderr = '';
  let sent = false;
  child.stderr.on('data', (d) => {
    stderr += d;
    // The first batch of passes is done (6 × 256 to go, one per batch): interrupt, as a terminal's Ctrl-C would.
    if (!sent && stderr.includes('passes (scorecam first)')) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  expect(sent, stderr).toBe(true);
  // The 256 channel passes of each of the six augmented copies (without --aug-smooth: 256, as the many-inputs run below counts
  // per input); the shared first pass, one batch of the six, is not in the bar either way (METHOD_SPECS' passes, 6 · (256 + 1), counts it).
  expect(stderr).toContain(`gradcam: ${6 * 256} passes (scorecam first); Ctrl-C stops cleanly`);
  expect(signal, stderr).toBeNull();
  expect(code, stderr).toBe(130);
  expect(stderr).toContain('gradcam: cancelled (Ctrl-C)');
  expect(stderr).toContain('hint: Nothing was written.');
  expect(readdirSync(dir).filter((f) => f.startsWith('cancel') || f.endsWith('.tmp'))).toEqual([]);
}, 120_000);

test('a process that exits mid-write (a second Ctrl-C quits at once) leaves no temporary file: the exit handler removes it', async () => {
  const folder = join(dir, 'exit-mid-write');
  mkdirSync(folder);
  const temporaries = () => readdirSync(folder).filter((f) => f.endsWith('.tmp'));
  // 16 MiB: fs's writeFile writes it in 512 KiB chunks, the event loop turning between them, so the test sees the
  // temporary file while it is being written (tried again should the write ever finish first).
  const data = new Uint8Array(16 << 20);
  let seen = false;
  for (let attempt = 0; attempt < 5 && !seen; attempt++) {
    const target = join(folder, `overlay${attempt}.png`);
    const write = writeFileAtomic(target, data).then(() => 'written', (e: Error) => e.message);
    let done = false;
    void write.then(() => (done = true));
    while (!done && !temporaries().length) await new Promise((r) => setImmediate(r));
    if (done) continue;
    seen = true;
    expect(process.listeners('exit')).toContain(removeTemporaries);
    removeTemporaries(); // what process.exit(130) runs on its way out
    expect(temporaries()).toEqual([]);
    // (This process goes on: the write's rename finds its temporary file gone, and it fails without replacing the target.)
    expect(await write).toMatch(/cannot write/);
    expect(existsSync(target)).toBe(false);
  }
  expect(seen).toBe(true);
  expect(temporaries()).toEqual([]);
});

test('several inputs: one bar of passes over all of them, the total estimated from the inputs run so far, the inputs done beside it', async () => {
  let t = 0;
  const info: string[] = [];
  const drawn: string[] = [];
  const session = manyPassesSession((l) => info.push(l), 3, () => new AbortError('Ctrl-C'),
    { isTTY: true, columns: 100, write: (w) => drawn.push(w) }, { now: () => t });
  try {
    // Input 1: 256 passes in four batches, one second each.
    await session.call(1, async ({ onProgress }) => {
      for (let done = 64; done <= 256; done += 64) {
        t += 1000;
        onProgress({ done, total: 256, method: 'scorecam' });
      }
    });
    session.advance(1);
    expect(info).toEqual(['gradcam: about 768 passes for 3 inputs (scorecam first); Ctrl-C stops cleanly']);
    // 256 of 3 × 256 done at 64 passes/s: 8 s left.
    expect(drawn.at(-1)).toMatch(/^\r\x1b\[K\[#{10}-{20}\] 256\/768  1 of 3 inputs done  64 passes\/s  0:08 left$/);
    // Inputs 2 and 3 in one call that reports 300 passes (skip-zero: fewer): the total follows what is known.
    await session.call(2, async ({ onProgress }) => {
      t += 1000;
      onProgress({ done: 100, total: 300, method: 'ablationcam' });
    });
    expect(drawn.at(-1)).toContain('356/556  1 of 3 inputs done');
    // A log line clears the bar and draws it again after.
    session.log('b.npy  3 class3', (l) => drawn.push(`[out] ${l}`));
    expect(drawn.slice(-3, -1)).toEqual(['\r\x1b[K', '[out] b.npy  3 class3']);
    expect(drawn.at(-1)).toContain('356/556');
  } finally {
    session.done();
  }
});

test('several inputs, Ctrl-C mid-run: exit 130; the inputs done are whole (overlays, JSONL lines), the one in flight wrote nothing; --resume would skip just those', async () => {
  const outDir = join(dir, 'many-out');
  const jsonl = join(dir, 'many.jsonl');
  // One input per call, one pass per batch (256 per input): Ctrl-C once the first input's line is out.
  const child = spawn(process.execPath, [CLI, 'explain', join(dir, 'inputs'), '--model', file('wide.onnx'), '--method', 'scorecam', '--batch', '1', '--pass-batch', '1',
    '--jsonl', jsonl, '--out-dir', outDir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000, killSignal: 'SIGKILL' });
  let sent = false;
  const run = await ended(child, (stdout) => {
    if (!sent && stdout.includes('\n')) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  expect(sent, run.stderr).toBe(true);
  expect(run.signal, run.stderr).toBeNull();
  expect(run.code, run.stderr).toBe(130);
  expect(run.stderr).toContain('gradcam: about 768 passes for 3 inputs (scorecam first); Ctrl-C stops cleanly');
  expect(run.stderr).toContain('gradcam: cancelled (Ctrl-C)');
  // The inputs finished before the cancel (1, or 2 if the signal came late): whole lines, in order, each with its overlay.
  const lines = readFileSync(jsonl, 'utf8').split('\n');
  expect(lines.pop()).toBe('');
  const done = lines.map((l) => (JSON.parse(l) as { input: string; maps: { overlay: string }[] }));
  expect(done.length).toBeGreaterThanOrEqual(1);
  expect(done.length).toBeLessThan(3);
  expect(done.map((d) => d.input)).toEqual(['a', 'b'].slice(0, done.length).map((n) => join(dir, 'inputs', `${n}.npy`)));
  expect(run.stdout.trim().split('\n')).toHaveLength(done.length);
  expect(run.stderr).toContain(`hint: ${done.length} of 3 inputs finished before it and ${done.length === 1 ? 'is' : 'are'} complete (their lines in ${jsonl}); the batch in flight wrote nothing. Run the same command with --resume to go on from there.`);
  // Every file in the folder an overlay of an input done: none of the one in flight, no temporary file.
  const written = readdirSync(outDir).sort();
  expect(written).toEqual(done.flatMap((d) => d.maps.map((m) => m.overlay.slice(outDir.length + 1))).sort());
  expect(written.every((f) => f.endsWith('.scorecam.png'))).toBe(true);

  // --resume takes the file as it is (nothing cut off) and skips exactly those inputs (jsonl.ts's check;
  // a second CLI run of the rest would add seconds of start-up for what test/cli-many.test.ts covers).
  const state = resumeState(jsonl, readFileSync(jsonl));
  expect(state.cut).toBe(0);
  expect([...state.done]).toEqual(done.map((d) => d.input));
}, 120_000);
