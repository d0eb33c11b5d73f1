/**
 * A process ended by SIGTERM, SIGINT or SIGHUP in the middle of an atomic write (src/node/files.ts)
 * leaves no temporary file and no target, and still ends by that signal (its default action runs no
 * 'exit' handler: files.ts listens for them while a write is in progress, removes the temporary
 * file and sends the signal again). A program that listens for SIGINT itself (the CLI's Ctrl-C
 * during multi-pass runs, src/cli/passes.ts) keeps it: its write completes and it exits as it
 * chooses. The exit-mid-write case (process.exit, a second Ctrl-C) is in cli-multipass.test.ts.
 *
 * Each case is a child process (files.ts bundled with esbuild) writing 16 MiB atomically: Node
 * writes it in 512 KiB chunks, the event loop turning between them. Once its temporary file is on
 * disk the child says so and blocks its event loop reading stdin; the test sends the signal and
 * then a byte, so the signal is pending before the write can go on (32 chunks to go). Should the
 * write still finish first (the child prints 'written'), the case is tried again.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ROOT } from './helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'gradcam-signals-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const child = join(dir, 'child.mjs');
const SIZE = 16 << 20;

const built = build({
  stdin: {
    // argv: the target, then 'own-sigint' for a program with its own Ctrl-C (a clean cancel: the write completes, exit 130).
    contents: `import { readdirSync, readSync } from 'node:fs';
      import { dirname } from 'node:path';
      import { writeFileAtomic } from './src/node/files.ts';
      const [target, mode] = process.argv.slice(2);
      let cancelled = false;
      if (mode === 'own-sigint') process.on('SIGINT', () => { cancelled = true; });
      let done = false;
      const write = writeFileAtomic(target, new Uint8Array(${SIZE})).then(() => {
        done = true;
        process.stdout.write('written\\n');
        process.exit(cancelled ? 130 : 0);
      }, (e) => { process.stderr.write(e.message + '\\n'); process.exit(1); });
      while (!done && !readdirSync(dirname(target)).some((f) => f.endsWith('.tmp'))) await new Promise((r) => setImmediate(r));
      if (!done) {
        process.stdout.write('writing\\n');
        const b = Buffer.alloc(1);
        for (;;) {
          try { if (readSync(0, b) >= 0) break; } catch (e) { if (e.code !== 'EAGAIN') throw e; }
        }
      }
      await write;`,
    resolveDir: ROOT, loader: 'ts', sourcefile: 'signal-child.ts',
  },
  outfile: child, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'error',
});

interface Outcome { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; files: string[]; targetBytes?: number }

/** One child writing `<folder>/out.png`, sent `signal` once its temporary file is on disk. */
async function writeAndSignal(folder: string, signal: NodeJS.Signals, mode = ''): Promise<Outcome> {
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder);
  const target = join(folder, 'out.png');
  const p = spawn(process.execPath, [child, target, mode], { stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000, killSignal: 'SIGKILL' });
  let stdout = '';
  let stderr = '';
  p.stderr.on('data', (d) => (stderr += d));
  p.stdout.on('data', (d) => {
    stdout += d;
    if (stdout === 'writing\n') {
      p.kill(signal);
      p.stdin.end('x'); // after the signal: the child's event loop goes on only now
    }
  });
  const [code, sig] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => p.on('close', (c, s) => resolve([c, s])));
  return { code, signal: sig, stdout, stderr, files: readdirSync(folder), targetBytes: existsSync(target) ? statSync(target).size : undefined };
}

/** Runs a case until the signal lands in the middle of the write (at most 3 tries; the first, as a rule). */
async function caught(name: string, signal: NodeJS.Signals, mode = ''): Promise<Outcome> {
  let o: Outcome | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    o = await writeAndSignal(join(dir, `${name}-${attempt}`), signal, mode);
    expect(o.stdout, o.stderr).toMatch(/^writing\n/); // the temporary file was seen before the write finished
    if (mode || !o.stdout.includes('written')) return o;
  }
  throw new Error(`${name}: the write finished before ${signal} in 3 tries: ${JSON.stringify(o)}`);
}

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
/** The four cases' children run side by side (started in beforeAll; each test awaits its own). */
let runs: Record<(typeof SIGNALS)[number] | 'own-sigint', Promise<Outcome>>;
beforeAll(async () => {
  await built;
  runs = {
    ...Object.fromEntries(SIGNALS.map((s) => [s, caught(s, s)])) as Record<(typeof SIGNALS)[number], Promise<Outcome>>,
    'own-sigint': caught('own-sigint', 'SIGINT', 'own-sigint'),
  };
  for (const r of Object.values(runs)) r.catch(() => {}); // awaited by their tests
});

test.each(SIGNALS)('%s mid-write: no temporary file, no target, and the process ends by that signal', async (signal) => {
  const o = await runs[signal];
  expect(o.signal, o.stderr).toBe(signal);
  expect(o.code).toBeNull();
  expect(o.files).toEqual([]);
});

test("SIGINT mid-write in a program that listens for it (the CLI's Ctrl-C): its listener owns it, the write completes, exit 130", async () => {
  const o = await runs['own-sigint'];
  expect(o.signal, o.stderr).toBeNull();
  expect(o.code, o.stderr).toBe(130);
  expect(o.stdout).toBe('writing\nwritten\n');
  expect(o.files).toEqual(['out.png']);
  expect(o.targetBytes).toBe(SIZE);
});
