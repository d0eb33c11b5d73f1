/**
 * Runs once before any test file (vite.config.ts `test.globalSetup`): builds the CLI
 * (dist/gradcam.mjs) that the CLI tests run as a child process. Built here, once, instead of in each
 * CLI test file's beforeAll: with two test files running at a time, one file rewriting
 * dist/gradcam.mjs while the other starts the CLI could start a half-written file.
 *
 * Skipped when the bundle is newer than every file it was built from (the sources its source map
 * lists, the build script, tsconfig.json, esbuild's version): vitest runs a globalSetup once for the
 * root and once per project in the run (vite.config.ts has three), and a run after no change to the
 * CLI's sources needs no new build (1.3 s wall each).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url)); // as test/helpers/cli.ts (which imports vitest: not here)
const BUNDLE = join(ROOT, 'dist/gradcam.mjs');

/** True when dist/gradcam.mjs and its map exist and are newer than every input; false on any doubt (a missing input included). */
function upToDate(): boolean {
  try {
    const built = statSync(BUNDLE).mtimeMs;
    // The map is written with the bundle by each build (either may be written first).
    const sources = (JSON.parse(readFileSync(`${BUNDLE}.map`, 'utf8')) as { sources: string[] }).sources.map((s) => join('dist', s)); // relative to dist/
    const inputs = [...sources, 'scripts/build.mjs', 'tsconfig.json', 'node_modules/esbuild/package.json'].map((f) => join(ROOT, f));
    return sources.length > 0 && inputs.every((f) => statSync(f).mtimeMs < built);
  } catch {
    return false;
  }
}

export default function setup(): void {
  if (upToDate()) return;
  execFileSync(process.execPath, ['scripts/build.mjs', '--quiet', 'cli'], { cwd: ROOT, stdio: 'inherit' });
}
