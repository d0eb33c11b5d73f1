/**
 * Dawn's own text stays off stdout. Dawn's Node binding prints a device's log messages ("warning:",
 * "info:") and its uncaptured errors ("validation:") with printf, to file descriptor 1.
 *
 * - The CLI runs classify and explain in a child process whose fd 1 is the parent's stderr and
 *   whose results go to the parent's stdout (src/cli/main.ts). Dawn's `dump_shaders` toggle
 *   (GRADCAM_DAWN_FLAGS) makes it log every shader through that printf: stdout must still hold
 *   nothing but the results (`--json -` parses as one JSON document; the table has only its rows).
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
import { Rng } from '../weights/generate/random.ts';
import { gradcam, ROOT, type Run } from './helpers/cli.ts';

const DUMP = { ...process.env, GRADCAM_DAWN_FLAGS: 'enable-dawn-features=dump_shaders' };
let dir: string;

/** Ended by itself with exit 0 (stderr holds Dawn's shader dumps, so expectExit's stack-trace check does not apply). */
function expectDone(run: Run): void {
  expect(run.signal, 'killed').toBeNull();
  expect(run.code, run.stderr.slice(-2000)).toBe(0);
}
const probe = join(ROOT, 'dist', `test-uncaptured-${process.pid}.mjs`);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gradcam-robust-dawn-'));
  const rng = new Rng(3);
  await writeFile(join(dir, 'x.npy'), encodeNpy([1, 3, 224, 224], Float32Array.from({ length: 3 * 224 * 224 }, () => rng.normal() * 50)));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  await rm(probe, { force: true });
});

describe("Dawn's printf output goes to stderr", () => {
  test('classify --json - with Dawn logging every shader: stdout is exactly the JSON document', async () => {
    const run = await gradcam(['classify', join(dir, 'x.npy'), '--model', 'googlenet-zoo-seeded', '--json', '-'], 180_000, DUMP);
    expectDone(run);
    expect(run.stderr).toContain('// Dumped WGSL'); // Dawn did print, to stderr
    expect(run.stdout.endsWith('}\n')).toBe(true);
    expect(run.stdout.trim().split('\n')).toHaveLength(1);
    const doc = JSON.parse(run.stdout);
    expect(doc.logits).toHaveLength(1000);
    expect(doc.predictions).toHaveLength(5);
  });

  test("explain's table with Dawn logging every shader: stdout holds only the table", async () => {
    const run = await gradcam(['explain', join(dir, 'x.npy'), '--model', 'googlenet-zoo-seeded', '--layer', 'inception_4e', '--class', '1'], 300_000, DUMP);
    expectDone(run);
    expect(run.stderr).toContain('// Dumped WGSL');
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^layer +method +class +label +h×w +raw max +upsampled max$/);
    expect(lines[1]).toMatch(/^inception_4e\/output_1 +gradcam +1 +\S/);
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
