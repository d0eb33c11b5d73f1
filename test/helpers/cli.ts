/** Running the built CLI (dist/gradcam.mjs) as a child process, and checking how it ended. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'dist', 'gradcam.mjs');

export interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/**
 * Runs the CLI; a run that does not end by itself within `timeoutMs` is killed (and fails the test).
 * `onSpawn` receives a function that kills the child (a download interrupted on purpose).
 */
export function gradcam(args: string[], timeoutMs = 60_000, env: NodeJS.ProcessEnv = process.env,
  onSpawn?: (kill: () => void) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    onSpawn?.(() => child.kill('SIGKILL'));
  });
}

/** The run ended by itself with `code`; user errors never show a stack trace. */
export function expectExit(run: Run, code: number): void {
  expect(run.signal, `killed; stderr:\n${run.stderr}`).toBeNull();
  expect(run.code, `stderr:\n${run.stderr}`).toBe(code);
  expect(run.stderr).not.toMatch(/\n\s+at /);
}

/** An error run: exit 1, nothing on stdout, `gradcam: <message>` on stderr. */
export function expectUserError(run: Run, message: RegExp): void {
  expectExit(run, 1);
  expect(run.stdout).toBe('');
  expect(run.stderr.split('\n').find((l) => l.startsWith('gradcam: ') && !l.includes('SwiftShader'))).toMatch(message);
}

/**
 * `fn` on every item, at most `width` at a time, results in the items' order: for CLI runs that end
 * before the GPU starts (Node start-ups, mostly one core each), which a 2-core machine runs side by side.
 */
export async function inParallel<T, R>(items: readonly T[], fn: (item: T) => Promise<R>, width = 2): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
  return out;
}
