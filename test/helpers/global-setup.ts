/**
 * Runs once before any test file (vite.config.ts `test.globalSetup`): builds the CLI
 * (dist/gradcam.mjs) that the CLI tests run as a child process. Built here, once, instead of in each
 * CLI test file's beforeAll: with two test files running at a time, one file rewriting
 * dist/gradcam.mjs while the other starts the CLI could start a half-written file.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url)); // as test/helpers/cli.ts (which imports vitest: not here)

export default function setup(): void {
  execFileSync(process.execPath, ['scripts/build.mjs', '--quiet', 'cli'], { cwd: ROOT, stdio: 'inherit' });
}
