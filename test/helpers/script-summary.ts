/**
 * Runs a bundled script (the fuzzer, the red team) as its own process and resolves with the JSON
 * summary it prints on stdout (its first line starting with '{'); stderr carries its progress and
 * report. The process is killed after `timeoutMs`; no summary is an error with stderr's tail.
 */
import { spawn } from 'node:child_process';
import { ROOT } from './cli.ts';

export function runForSummary<S>(what: string, script: string, args: string[], timeoutMs: number): Promise<{ summary: S; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args, '--json'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (!line) reject(new Error(`${what} printed no summary (exit ${code}):\n${stderr.slice(-4000)}`));
      else resolve({ summary: JSON.parse(line) as S, stderr, code });
    });
  });
}
