/**
 * The red team in CI (issue 17, item 7): a seeded run of scripts/red-team.ts, hostile and careless
 * use of the folder CLI (odd names, an output that is an input, links, FIFOs, /dev/full, long
 * names, broken files), `--resume` (files that are not JSONL, corrupt and cut lines, invalid UTF-8),
 * `eval` with hostile box files and options, the batch and metrics APIs (bad elements and options),
 * and destroy() during work. Every case must keep the invariants (no exit 3, crash or hang; errors
 * in words; the user's files byte-identical unless named as outputs; no half-written output;
 * nothing written outside the named outputs) and its family's oracle. Cases 0 … 13 take each
 * family once; the rest are drawn (seed 2043: its 20 cases name 11 of issue 17's findings, with
 * the fewest CLI runs, the slow ones). On the code before issue 17's fixes (dc3ec14) 14 of these
 * 20 cases fail: b.png truncated by --jsonl ./a.png, the cut line removed at the wrong byte
 * ('{"{"input"…'), exit 3 on /dev/full and on &#99999999;, two non-UTF-8 names as one, a NaN .npy's
 * line not naming its file, gradcam,gradcam as two rows, TypeErrors in batches, deletionBaseline 5
 * accepted, the destroyed-buffer validation error, 400 KB of unclosed comments parsed in 104 s, a
 * 400-digit coordinate read as Infinity, an <object> inside CDATA counted. The script runs as its own process (bundled here with the CLI,
 * from the sources) so that its watchdog can stop a case that never returns. Its CLI cases run two
 * side by side (--jobs 2, the default: each is mostly a Node and Dawn start-up), each in a folder of
 * its lane's, which is watched too.
 *
 * The long run: `npm run red-team -- --cases 1000 --seed S`.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAMILY_NAMES, makeCase, type Summary } from '../scripts/red-team.ts';
import { ROOT } from './helpers/cli.ts';
import { runForSummary } from './helpers/script-summary.ts';

// Inside the repository, so that the bundles' imports resolve in node_modules.
const script = join(ROOT, 'test-output', `red-team-${process.pid}.mjs`);
const cli = join(ROOT, 'test-output', `red-team-cli-${process.pid}.mjs`);

beforeAll(async () => {
  await mkdir(join(ROOT, 'test-output'), { recursive: true });
  const common = { bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', loader: { '.wgsl': 'text', '.txt': 'text' }, logLevel: 'error' } as const;
  await build({ ...common, entryPoints: [join(ROOT, 'scripts', 'red-team.ts')], outfile: script });
  await build({ ...common, entryPoints: [join(ROOT, 'src', 'cli', 'main.ts')], outfile: cli });
});
afterAll(async () => {
  await rm(script, { force: true });
  await rm(cli, { force: true });
});

/** Runs the red-team script; resolves with its JSON summary (stderr: its progress and report). */
const redTeam = (args: string[], timeoutMs: number) => runForSummary<Summary>('red-team', script, ['--cli', cli, ...args], timeoutMs);

describe('red team: hostile and careless use of the many-picture surfaces', () => {
  it('a case is reproduced from its seed and index alone; the first cases of a run take each family once', () => {
    for (let seed = 1; seed <= 30; seed++) {
      for (let index = 0; index < 40; index++) {
        const [a, b] = [makeCase(seed, index), makeCase(seed, index)];
        expect([a.family, a.what, a.kind === 'cli' ? a.args : []]).toEqual([b.family, b.what, b.kind === 'cli' ? b.args : []]);
        if (index < FAMILY_NAMES.length) expect(a.family).toBe(FAMILY_NAMES[index]);
      }
    }
  });

  it('20 cases (every family once, then drawn): every invariant holds', async () => {
    const cases = 20;
    const { summary: s, stderr, code } = await redTeam(['--cases', String(cases), '--seed', '2043', '--hang-ms', '120000'], 900_000);
    console.log(stderr);
    const report = s.failures.map((f) => `case ${f.index} (${f.family}: ${f.what}): ${f.why}: ${f.message}\n  reproduce: npm run red-team -- --seed ${f.seed} --case ${f.index} --keep`);
    expect(report, 'failed cases').toEqual([]);
    expect(code).toBe(0);
    expect(s.passed).toBe(cases);
    expect(Object.keys(s.perFamily).sort()).toEqual([...FAMILY_NAMES].sort());
  }, 900_000);

  it('a case that never returns is stopped by the watchdog, reported with its seed and index, and the run goes on', async () => {
    // api.boxes-xml: no GPU, so the worker (started twice: the watchdog stops it) starts no Dawn. The
    // watchdog's budget is bounded below by the other two cases (a few hundred bytes of XML each:
    // milliseconds; the worker's start-up is not counted), so 1 s leaves a loaded machine ~100 times their time.
    const { summary: s, code } = await redTeam(['--cases', '3', '--seed', '5', '--family', 'api.boxes-xml', '--hang-case', '1', '--hang-ms', '1000'], 120_000);
    expect(code).toBe(1);
    expect(s.failures.map((f) => [f.index, f.seed, f.why])).toEqual([[1, 5, 'hang']]);
    expect(s.passed).toBe(2);
  }, 120_000);
});
