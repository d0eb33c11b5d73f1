/**
 * Dawn's own text stays off stdout. Dawn's Node binding prints a device's log messages ("warning:",
 * "info:") and its uncaptured errors ("validation:") with printf, to file descriptor 1.
 *
 * - The CLI runs classify and explain in a child process whose fd 1 is the parent's stderr and
 *   whose results go to the parent's stdout (src/cli/main.ts). Dawn's `dump_shaders` toggle
 *   (GRADCAM_DAWN_FLAGS) makes it log every shader through that printf: stdout must still hold
 *   nothing but the results (`--json -` parses as one JSON document; the table has only its rows).
 *   On the small model (test/helpers/small-model.ts): the route of Dawn's printf does not depend on
 *   the model, and every shader it compiles is dumped (it was the zoo-style GoogLeNet at 224: 12 s).
 *   The two runs go side by side (each mostly Node and Dawn start-up on one core).
 * - nodeGpu (src/gpu/node.ts) cancels uncaptured-error events, so Dawn does not print them, and
 *   reports them on stderr: a script that makes an invalid buffer prints nothing on stdout.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { encodeNpy } from '../src/image/npy.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { Rng } from '../weights/generate/random.ts';
import { gradcam, inParallel, ROOT, type Run } from './helpers/cli.ts';
import { SMALL_CLASSES, SMALL_SHAPE, smallModel } from './helpers/small-model.ts';

const DUMP = { ...process.env, GRADCAM_DAWN_FLAGS: 'enable-dawn-features=dump_shaders' };
let dir: string;

/** Ended by itself with exit 0 (stderr holds Dawn's shader dumps, so expectExit's stack-trace check does not apply). */
function expectDone(run: Run): void {
  expect(run.signal, 'killed').toBeNull();
  expect(run.code, run.stderr.slice(-2000)).toBe(0);
}
const probe = join(ROOT, 'dist', `test-uncaptured-${process.pid}.mjs`);

/** The two CLI runs with Dawn dumping every shader, started together (each test awaits its own). */
let dumped: Promise<[Run, Run]>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gradcam-robust-dawn-'));
  const rng = new Rng(3);
  await writeFile(join(dir, 'x.npy'), encodeNpy(SMALL_SHAPE, Float32Array.from({ length: 3 * 16 * 12 }, () => rng.normal())));
  await writeFile(join(dir, 'small.onnx'), encodeOnnx(smallModel(5, 'flatten')));
  const model = ['--model', join(dir, 'small.onnx')];
  dumped = inParallel([
    ['classify', join(dir, 'x.npy'), ...model, '--json', '-'],
    ['explain', join(dir, 'x.npy'), ...model, '--layer', 'a3', '--class', '1'],
  ], (args) => gradcam(args, 180_000, DUMP)) as Promise<[Run, Run]>;
  dumped.catch(() => undefined); // (a failure is reported by the tests that await it)
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  await rm(probe, { force: true });
});

describe("Dawn's printf output goes to stderr", () => {
  test('classify --json - with Dawn logging every shader: stdout is exactly the JSON document', async () => {
    const [run] = await dumped;
    expectDone(run);
    expect(run.stderr).toContain('// Dumped WGSL'); // Dawn did print, to stderr
    expect(run.stdout.endsWith('}\n')).toBe(true);
    expect(run.stdout.trim().split('\n')).toHaveLength(1);
    const doc = JSON.parse(run.stdout);
    expect(doc.logits).toHaveLength(SMALL_CLASSES);
    expect(doc.predictions).toHaveLength(5);
  });

  test("explain's table with Dawn logging every shader: stdout holds only the table", async () => {
    const [, run] = await dumped;
    expectDone(run);
    expect(run.stderr).toContain('// Dumped WGSL');
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^layer +method +class +label +h×w +raw max +upsampled max$/);
    expect(lines[1]).toMatch(/^a3 +gradcam +1 +\S/);
    expect(lines[2]).toMatch(/^timings \(/);
    expect(lines).toHaveLength(3);
  });

  test("nodeGpu: an uncaptured validation error is reported on stderr, not printed on stdout by Dawn", async () => {
    await build({
      stdin: {
        contents: `import { nodeGpu } from './src/gpu/node.ts';
          const gpu = await nodeGpu((line) => process.stderr.write(line + '\\n'));
          gpu.device.createBuffer({ size: 4, usage: 0 });
          await gpu.device.queue.onSubmittedWorkDone();
          await new Promise((r) => setTimeout(r, 200));
          gpu.device.destroy();
          process.exit(0);`,
        resolveDir: ROOT, loader: 'ts', sourcefile: 'probe.ts',
      },
      outfile: probe, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external',
      loader: { '.wgsl': 'text', '.txt': 'text' }, logLevel: 'error',
    });
    const run = spawnSync(process.execPath, [probe], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^gradcam: WebGPU validation error: Buffer usages must not be 0\. - While calling \[Device\]\.CreateBuffer/m);
  });
});
