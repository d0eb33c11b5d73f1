/**
 * `npm run bench:report -- a.json [b.json …] [--out report.html] [--title TEXT]`: one HTML report
 * (bench/html-report.ts) from one or more bench result JSONs, side by side: two devices, or before
 * and after a change. Default output: report.html in the current folder. Exit codes: 2 for a usage
 * error, 1 for a file that is missing or not a bench result.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { BenchResult } from './harness.ts';
import { renderReport, type ReportRun } from './html-report.ts';

const USAGE = 'usage: npm run bench:report -- a.json [b.json …] [--out report.html] [--title TEXT]';

class UsageError extends Error {}

/** Reads a bench result JSON; a clear error naming the file for anything else. */
export function readResult(path: string): BenchResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not JSON (${(e as Error).message})`);
  }
  const r = json as Partial<BenchResult>;
  if (typeof json !== 'object' || json === null || r.schema !== 'gradcam-webgpu-bench/1' || !Array.isArray(r.measurements) || !r.adapter || !r.model) {
    throw new Error(`${path}: not a bench result (expected "schema": "gradcam-webgpu-bench/1" with adapter, model and measurements; npm run bench writes them under bench/results/)`);
  }
  return r as BenchResult;
}

function main(argv: string[]): void {
  const files: string[] = [];
  let out = 'report.html';
  let title: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out' || a === '--title') {
      const v = argv[++i];
      if (!v) throw new UsageError(`${a} needs a value`);
      if (a === '--out') out = v;
      else title = v;
    } else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      return;
    } else if (a.startsWith('--')) {
      throw new UsageError(`unknown option '${a}'`);
    } else {
      files.push(a);
    }
  }
  if (!files.length) throw new UsageError('no result files given');
  const runs: ReportRun[] = files.map((f) => ({ result: readResult(f), source: basename(f) }));
  const html = renderReport(runs, title);
  const path = resolve(out);
  mkdirSync(dirname(path), { recursive: true });
  // Written to a temporary name and renamed: never a half-written report.
  writeFileSync(`${path}.tmp`, html);
  renameSync(`${path}.tmp`, path);
  console.log(`bench:report: wrote ${path} (${runs.length} run${runs.length === 1 ? '' : 's'}, ${(html.length / 1024).toFixed(0)} KiB)`);
}

try {
  main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`bench:report: ${(e as Error).message}\n${e instanceof UsageError ? `${USAGE}\n` : ''}`);
  process.exit(e instanceof UsageError ? 2 : 1);
}
