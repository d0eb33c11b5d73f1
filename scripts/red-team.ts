/**
 * The red team (issue 17, item 7): hostile and careless use of the many-picture surfaces, drawn
 * from a seed, each case checked against invariants that hold for every case.
 *
 *   npm run red-team -- [--cases N] [--seed S] [--from I] [--hang-ms MS] [--jobs N] [--json] [--keep]
 *   npm run red-team -- --seed S --case I [--keep]     (one case again, with its outcome)
 *   --cli FILE: the CLI bundle to run (default dist/gradcam.mjs); --family NAME: only that family;
 *   --hang-case I: API case I never returns (checks the watchdog); --jobs N: cases side by side
 *   (default 2: a CLI case is mostly one process's start-up on one core; API cases still run one at
 *   a time in the worker)
 *
 * Each case is one of the FAMILIES below, with its variant drawn from a PRNG seeded with (seed,
 * case index), so a case is reproduced from those two numbers alone. Cases 0 … F−1 of a run take
 * each family once (a short run covers every surface); later ones are drawn, the cheap API
 * families more often. Kinds:
 *  - 'cli': files made in a fresh folder (pictures, odd names, links, FIFOs, box files, JSONL to
 *    resume), then the built CLI run there as a child process (`gradcam classify|explain|eval`);
 *  - 'api': run in a worker process that holds one GPU device and a small network (gradCAM and
 *    classify with bad elements and options, evaluateImage and summarise, destroy() during work,
 *    parseAnnotation on hostile XML).
 *
 * Invariants, for every case:
 *  - no crash and no hang: the CLI exits 0, 1 or 2 (never 3, never a signal such as 134 for out of
 *    heap); a watchdog stops a case after --hang-ms (default 60 s) and reports it; an API call
 *    resolves, or rejects with a GradcamError;
 *  - errors in words: no JavaScript engine text ("is not a function", "Cannot read properties",
 *    "Invalid code point", …), no stack trace, no "(this is a bug)"; a failing CLI run says
 *    `gradcam: …` on stderr; no uncaptured WebGPU error;
 *  - the user's files: every file of the case folder that the command line does not name as an
 *    output is byte-identical afterwards (links: same target); nothing new appears outside the
 *    named outputs (the case folder is the working directory; the run's folder is watched too);
 *    no half-written output (every JSONL line complete JSON, no temporary file left, every PNG
 *    ends with its IEND chunk);
 *  - each family's own oracle (what its finding requires: e.g. `--resume` that refuses leaves the
 *    file as it was, one that accepts keeps every complete line byte for byte; a bad box file is
 *    that picture's error line and the next picture is still scored).
 *
 * Adding a case: a finding becomes a variant of a family (a line in its `variants` list) or a new
 * family (an entry in FAMILIES: `kind`, `weight` and `make(r)`, which returns what to set up and
 * run and, when the finding needs more than the invariants, a `check`). Name the finding in the
 * variant's `what` (e.g. 'issue 17 1a'), so that a failure says which finding came back.
 *
 * The test suite runs a CI-sized run of this script (test/red-team.test.ts).
 */
import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, linkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GradcamError } from '../src/errors.ts';
import { liveBuffers } from '../src/gpu/buffers.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import { gradCAM, Network } from '../src/gradcam/network.ts';
import type { ModelInput } from '../src/gradcam/types.ts';
import { encodeNpy } from '../src/image/npy.ts';
import { parseAnnotation } from '../src/metrics/boxes.ts';
import { evaluateImage, type ImageEvaluation, summarise } from '../src/metrics/evaluate.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { randomPicture, smallModel } from '../test/helpers/small-model.ts';
import { Rng } from '../weights/generate/random.ts';

// ───────────────────────────── invariants ─────────────────────────────

/** Text written by the JavaScript engine (or Node) rather than by the project. */
export const ENGINE_TEXT =
  /is not (a function|iterable|defined|a constructor)|Cannot (read|set) propert|Cannot destructure|Invalid (code point|typed array length|array length|string length)|Maximum call stack|out of memory|allocation failed|Unexpected (token|end of JSON)|\[object Object\]|WebGPU validation|\bat (async )?[\w.<>]+ \(|\(this is a bug\)/;

export type Why = 'crash' | 'hang' | 'internal message' | 'changed input' | 'stray file' | 'half-written output' | 'oracle';

export interface Verdict { ok: boolean; why?: Why; message?: string; note?: string }

const pass = (note?: string): Verdict => ({ ok: true, note });
const fail = (why: Why, message: string): Verdict => ({ ok: false, why, message });

/** Judges an error thrown by an API call: a GradcamError in words passes. */
function judgeError(e: unknown): Verdict {
  if (!(e instanceof GradcamError)) {
    const err = e as Error;
    return fail('crash', `${err?.name ?? 'throw'}: ${err?.message ?? String(e)} (${(err?.stack ?? '').split('\n').slice(1, 3).map((l) => l.trim()).join(' | ')})`);
  }
  if (ENGINE_TEXT.test(e.message)) return fail('internal message', e.message);
  return pass(`refused: ${e.message}`);
}

// ───────────────────────────── fixtures ─────────────────────────────

const PICTURE_SIZE = { width: 20, height: 16 };

/** A small PNG (grey with a coloured patch), written by hand (stored deflate blocks): no dependency on the decoder under test. */
function png(width: number, height: number, seed: number): Uint8Array {
  const r = new Rng(seed);
  const raw: number[] = [];
  for (let y = 0; y < height; y++) {
    raw.push(0);
    for (let x = 0; x < width; x++) raw.push(...(x > 4 && y > 4 && x < 12 && y < 12 ? [200, r.nextU32() & 255, 40] : [128, 128, 128]));
  }
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Uint8Array) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 255] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const u32 = (v: number) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
  const chunk = (type: string, data: number[]) => {
    const body = new Uint8Array([...Buffer.from(type, 'latin1'), ...data]);
    return [...u32(data.length), ...body, ...u32(crc(body))];
  };
  // zlib: stored blocks of ≤ 65535 bytes, then Adler-32.
  const z: number[] = [0x78, 0x01];
  for (let at = 0; at < raw.length || at === 0; at += 65535) {
    const block = raw.slice(at, at + 65535);
    const last = at + 65535 >= raw.length ? 1 : 0;
    z.push(last, block.length & 255, block.length >>> 8, ~block.length & 255, (~block.length >>> 8) & 255, ...block);
    if (last) break;
  }
  let a = 1, b = 0;
  for (const x of raw) {
    a = (a + x) % 65521;
    b = (b + a) % 65521;
  }
  z.push(...u32(((b << 16) | a) >>> 0));
  return new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10, ...chunk('IHDR', [...u32(width), ...u32(height), 8, 2, 0, 0, 0]), ...chunk('IDAT', z), ...chunk('IEND', [])]);
}

/** The small model's input as a .npy: [1, 3, 16, 12], with `bad` (NaN, Infinity) at a few places. */
function npy(r: Rng, bad?: number): Uint8Array {
  const data = new Float32Array(3 * 16 * 12).map(() => r.uniform(-1, 1));
  if (bad !== undefined) for (let i = 0; i < 3; i++) data[r.nextU32() % data.length] = bad;
  return encodeNpy([1, 3, 16, 12], data);
}

const pick = <T>(r: Rng, items: readonly T[]): T => items[r.nextU32() % items.length];
const text = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));

// ───────────────────────────── cases ─────────────────────────────

/** A file of a CLI case, relative to its folder; `name` may hold bytes that are not UTF-8. */
export interface FileSpec {
  name: string | Buffer;
  bytes?: Uint8Array;
  symlink?: string;
  hardlink?: string;
  fifo?: true;
  dir?: true;
}

/** What a CLI run left. */
export interface CliOutcome { code: number | null; signal: string | null; stdout: string; stderr: string; ms: number; dir: string; before: Map<string, string>; after: Map<string, string> }

export interface CliCase {
  kind: 'cli';
  family: string;
  what: string;
  files: FileSpec[];
  /** The command line after `gradcam` (the model is added: --model small.onnx). */
  args: string[];
  /** Paths (relative) the command line names as outputs: files, or folders and what is in them. */
  outputs: string[];
  /** The family's oracle: a failure message, or undefined. */
  check?: (o: CliOutcome) => string | undefined;
}

export interface ApiContext { gpu: GpuContext; net: Network; picture: () => ModelInput; tensor: () => ModelInput }

export interface ApiCase {
  kind: 'api';
  family: string;
  what: string;
  /** The case needs no GPU (its worker starts Dawn only for a case that does). */
  cpuOnly?: true;
  run: (ctx: ApiContext) => Promise<Verdict>;
}

export type Case = CliCase | ApiCase;

interface Family { name: string; kind: 'cli' | 'api'; weight: number; make: (r: Rng) => Case | undefined }

const MODEL = 'small.onnx';
const A = 'a.png', B = 'b.png';
const good = (seed: number): FileSpec[] => [{ name: A, bytes: png(PICTURE_SIZE.width, PICTURE_SIZE.height, seed) }, { name: B, bytes: png(PICTURE_SIZE.width, PICTURE_SIZE.height, seed + 1) }];

/** JSON lines of a file (undefined: a line that does not parse). */
function jsonLines(dir: string, name: string): (Record<string, unknown> | undefined)[] {
  const path = join(dir, name);
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  });
}

const exitIn = (o: CliOutcome, codes: number[]) => (codes.includes(o.code ?? -1) ? undefined : `exit ${o.code}, expected ${codes.join(' or ')}; stderr: ${lastLines(o.stderr)}`);
const lastLines = (s: string) => s.trim().split('\n').filter((l) => !/SwiftShader/.test(l)).slice(-3).join(' / ');

const FAMILIES: Family[] = [
  {
    // 1a: an output that is also an input (by name, hard link or symlink) is a usage error before any work.
    name: 'cli.output-is-input', kind: 'cli', weight: 0.5,
    make: (r) => {
      const v = pick(r, [
        { what: '--jsonl b.png (an input) (issue 17 1a)', extra: [] as FileSpec[], jsonl: B },
        { what: '--jsonl h.jsonl, a hard link to b.png (issue 17 1a)', extra: [{ name: 'h.jsonl', hardlink: B }], jsonl: 'h.jsonl' },
        { what: '--jsonl l.jsonl, a symlink to b.png (issue 17 1a)', extra: [{ name: 'l.jsonl', symlink: B }], jsonl: 'l.jsonl' },
        { what: '--jsonl ./a.png spelt otherwise (issue 17 1a)', extra: [], jsonl: `./sub/../${A}` },
      ]);
      const command = pick(r, ['classify', 'explain']);
      return {
        kind: 'cli', family: 'cli.output-is-input', what: `${command} a.png b.png ${v.what}`,
        files: [...good(r.nextU32()), { name: 'sub', dir: true }, ...v.extra], args: [command, A, B, '--jsonl', v.jsonl], outputs: [],
        check: (o) => exitIn(o, [2]),
      };
    },
  },
  {
    // 1b, 1c: --resume validates first and changes nothing on refusal; only a cut last line may go (counted in bytes).
    name: 'cli.resume', kind: 'cli', weight: 0.5,
    make: (r) => {
      const line = (input: string, extra = '') => `{"input":"${input}","predictions":[{"class":1,"label":"class 1","score":1,"probability":0.5}]${extra}}\n`;
      // refuse: exit ≠ 0 and the file unchanged; accept: exit 0, every complete line kept byte for byte; either: one of the two.
      const v = pick(r, [
        { what: 'a PNG named as the JSONL (issue 17 1b)', bytes: png(8, 8, 3), expect: 'refuse' },
        { what: 'a text file (issue 17 1b)', bytes: text('hello\nworld\n'), expect: 'refuse' },
        { what: 'a corrupt line in the middle (issue 17 1b)', bytes: text(`${line(A)}GARBAGE{\n${line(B)}`), expect: 'refuse' },
        { what: 'a NUL byte in a complete line (issue 17 1b)', bytes: new Uint8Array([...text('{"input":"a.png"'), 0, ...text('}\n')]), expect: 'refuse' },
        { what: 'invalid UTF-8 in a line, then a cut last line (issue 17 1c)', bytes: new Uint8Array([...text('{"input":"a.png","x":"'), 0xff, ...text('"}\n{"inp')]), expect: 'accept' },
        { what: 'multi-byte text in a line, then a cut last line (issue 17 1c)', bytes: text(`${line(A, ',"note":"éèü✓"')}{"input":"b.p`), expect: 'accept' },
        { what: 'a cut last line', bytes: text(`${line(A)}{"input":"b.png","pred`), expect: 'accept' },
        { what: 'an empty file', bytes: new Uint8Array(), expect: 'accept' },
        { what: 'JSON lines that are not objects', bytes: text('[1,2]\n"x"\nnull\n'), expect: 'either' },
      ]);
      const command = pick(r, ['classify', 'classify', 'explain']);
      return {
        kind: 'cli', family: 'cli.resume', what: `${command} --resume --jsonl r.jsonl holding ${v.what}`,
        files: [...good(r.nextU32()), { name: 'r.jsonl', bytes: v.bytes }], args: [command, A, B, '--jsonl', 'r.jsonl', '--resume'], outputs: ['r.jsonl'],
        check: (o) => {
          const now = existsSync(join(o.dir, 'r.jsonl')) ? readFileSync(join(o.dir, 'r.jsonl')) : Buffer.alloc(0);
          const old = Buffer.from(v.bytes);
          if (o.code !== 0) {
            if (v.expect === 'accept') return `refused (exit ${o.code}): ${lastLines(o.stderr)}`;
            return now.equals(old) ? undefined : `refused (exit ${o.code}), but r.jsonl changed: ${old.length} → ${now.length} bytes`;
          }
          if (v.expect === 'refuse') return `accepted (exit 0); r.jsonl ${now.equals(old) ? 'unchanged' : `changed: ${old.length} → ${now.length} bytes`}`;
          // Accepted: every complete line kept, byte for byte; only a cut last line may go.
          const kept = old.subarray(0, old.lastIndexOf(0x0a) + 1);
          if (!now.subarray(0, kept.length).equals(kept)) return `accepted, but the complete lines were not kept byte for byte (${kept.length} bytes before; the file now starts ${JSON.stringify(now.subarray(0, 60).toString('latin1'))})`;
          // …and what follows them is complete JSON lines (a cut line removed at the wrong byte leaves a piece of it).
          const added = now.subarray(kept.length).toString('utf8');
          if (added && !added.endsWith('\n')) return 'accepted, but the file ends in the middle of a line';
          for (const l of added.split('\n').filter(Boolean)) {
            try {
              JSON.parse(l);
            } catch {
              return `accepted, but a line after the kept ones is not JSON: ${JSON.stringify(l.slice(0, 80))}`;
            }
          }
          return undefined;
        },
      };
    },
  },
  {
    // 2a: disk full is a GradcamError (exit 1) in words; also JSONL paths that are not files.
    name: 'cli.jsonl-target', kind: 'cli', weight: 0.5,
    make: (r) => {
      const full = existsSync('/dev/full');
      const v = pick(r, [
        ...(full ? [{ what: '--jsonl /dev/full (issue 17 2a)', jsonl: '/dev/full', outputs: [], check: (o: CliOutcome) => exitIn(o, [1]) ?? (/no space left/i.test(o.stderr) ? undefined : `no "no space left" on stderr: ${lastLines(o.stderr)}`) }] : []),
        { what: '--jsonl naming a folder', jsonl: 'sub', outputs: [], check: (o: CliOutcome) => exitIn(o, [1, 2]) },
        { what: '--jsonl in a folder that is a file', jsonl: `${A}/r.jsonl`, outputs: [], check: (o: CliOutcome) => exitIn(o, [1, 2]) },
        { what: '--jsonl in new folders', jsonl: 'new/deeper/r.jsonl', outputs: ['new'], check: (o: CliOutcome) => exitIn(o, [0, 1]) },
        { what: '--jsonl with a trailing slash', jsonl: 'r.jsonl/', outputs: ['r.jsonl'], check: (o: CliOutcome) => exitIn(o, [0, 1, 2]) },
      ]);
      return {
        kind: 'cli', family: 'cli.jsonl-target', what: `classify a.png b.png ${v.what}`,
        files: [...good(r.nextU32()), { name: 'sub', dir: true }], args: ['classify', A, B, '--jsonl', v.jsonl], outputs: v.outputs, check: v.check,
      };
    },
  },
  {
    // 2b: a legal picture name (up to 255 bytes, multi-byte too) with --out-dir: every overlay written, a line for it.
    name: 'cli.long-names', kind: 'cli', weight: 0.5,
    make: (r) => {
      const unit = pick(r, ['x', 'é', '✓']);
      const bytes = Buffer.byteLength(unit);
      const total = pick(r, [200, 220, 240, 251]); // + '.png' ≤ 255 bytes
      const name = `${unit.repeat(Math.floor(total / bytes))}.png`;
      return {
        kind: 'cli', family: 'cli.long-names', what: `explain a ${Buffer.byteLength(name)}-byte name ('${unit}' × ${Math.floor(total / bytes)}) --out-dir cams --jsonl r.jsonl (issue 17 2b)`,
        files: [{ name, bytes: png(PICTURE_SIZE.width, PICTURE_SIZE.height, r.nextU32()) }], args: ['explain', name, '--out-dir', 'cams', '--jsonl', 'r.jsonl'], outputs: ['cams', 'r.jsonl'],
        check: (o) => {
          const bad = exitIn(o, [0]);
          if (bad) return bad;
          const lines = jsonLines(o.dir, 'r.jsonl');
          if (lines.length !== 1 || !Array.isArray(lines[0]?.maps)) return `expected one result line, got ${JSON.stringify(lines).slice(0, 200)}`;
          for (const m of lines[0]!.maps as { overlay?: string }[]) if (!m.overlay || !existsSync(join(o.dir, m.overlay))) return `overlay ${m.overlay} not written`;
          return undefined;
        },
      };
    },
  },
  {
    // 5d: names as bytes end to end: two names that are not UTF-8 stay two inputs; other odd names too.
    name: 'cli.odd-names', kind: 'cli', weight: 0.5,
    make: (r) => {
      const pool: (string | Buffer)[] = [
        Buffer.from([0x61, 0xfe, 0x2e, 0x70, 0x6e, 0x67]), Buffer.from([0x61, 0xff, 0x2e, 0x70, 0x6e, 0x67]), // a\xfe.png, a\xff.png (issue 17 5d)
        'a b.png', '-x.png', 'ü.png', 'a\nb.png', '.hidden.png', 'UPPER.PNG', "it's.png", 'a%s%n.png', '$(touch pwned).png', 'a\\b.png', '*.png', 'a\tb.png',
      ];
      const names = new Set<string | Buffer>([pool[0], pool[1]].filter(() => r.uniform() < 0.7));
      while (names.size < 3) names.add(pick(r, pool));
      const files: FileSpec[] = [{ name: 'pics', dir: true }, ...[...names].map((n, i) => ({ name: Buffer.concat([Buffer.from('pics/'), Buffer.from(n)]), bytes: png(PICTURE_SIZE.width, PICTURE_SIZE.height, i + 7) }))];
      const shown = [...names].map((n) => JSON.stringify(Buffer.from(n).toString('latin1'))).join(', ');
      return {
        kind: 'cli', family: 'cli.odd-names', what: `classify pics/ holding ${shown} --jsonl r.jsonl (issue 17 5d)`,
        files, args: ['classify', 'pics', '--jsonl', 'r.jsonl'], outputs: ['r.jsonl'],
        check: (o) => {
          const bad = exitIn(o, [0]);
          if (bad) return bad;
          const lines = jsonLines(o.dir, 'r.jsonl');
          const results = lines.filter((l) => l && Array.isArray(l.predictions));
          if (results.length !== names.size) return `${names.size} pictures, ${results.length} result lines: ${JSON.stringify(lines).slice(0, 300)}`;
          if (new Set(results.map((l) => l!.input)).size !== names.size) return `inputs not told apart: ${results.map((l) => JSON.stringify(l!.input)).join(', ')}`;
          return undefined;
        },
      };
    },
  },
  {
    // Links and special files in a folder: no hang on a FIFO or /dev/zero, a line each, the good picture scored.
    name: 'cli.links', kind: 'cli', weight: 0.5,
    make: (r) => {
      const pool: FileSpec[] = [
        { name: 'pics/link.png', symlink: `../${B}` }, { name: 'pics/dangling.png', symlink: 'nowhere.png' }, { name: 'pics/loop.png', symlink: 'loop.png' },
        { name: 'pics/dir.png', dir: true }, { name: 'pics/fifo.png', fifo: true }, { name: 'pics/zero.png', symlink: '/dev/zero' }, { name: 'pics/up.png', symlink: '..' },
      ];
      const chosen = pool.filter(() => r.uniform() < 0.5);
      if (!chosen.length) chosen.push(pick(r, pool));
      return {
        kind: 'cli', family: 'cli.links', what: `classify pics/ with a.png and ${chosen.map((f) => String(f.name).slice(5)).join(', ')} --jsonl r.jsonl`,
        files: [...good(r.nextU32()), { name: 'pics', dir: true }, { name: `pics/${A}`, bytes: png(20, 16, 5) }, ...chosen], args: ['classify', 'pics', '--jsonl', 'r.jsonl'], outputs: ['r.jsonl'],
        check: (o) => {
          const bad = exitIn(o, [0, 1]);
          if (bad) return bad;
          const lines = jsonLines(o.dir, 'r.jsonl');
          if (!lines.some((l) => typeof l?.input === 'string' && l.input.endsWith(A) && Array.isArray(l.predictions))) return `no result line for pics/a.png: ${JSON.stringify(lines).slice(0, 300)}`;
          return undefined;
        },
      };
    },
  },
  {
    // 5e and broken files named on the command line: each its own error line naming the file; the good one scored.
    name: 'cli.bad-files', kind: 'cli', weight: 0.5,
    make: (r) => {
      const header = png(20, 16, 1).slice(0, 33);
      new DataView(header.buffer).setUint32(16, 100000); // IHDR width 100000 × height 16 (a decompression bomb's header)
      new DataView(header.buffer).setUint32(20, 100000);
      const pool: FileSpec[] = [
        { name: 'nan.npy', bytes: npy(r, NaN) }, { name: 'inf.npy', bytes: npy(r, Infinity) }, { name: 'empty.png', bytes: new Uint8Array() },
        { name: 'text.png', bytes: text('not a picture\n') }, { name: 'cut.png', bytes: png(20, 16, 2).slice(0, 60) }, { name: 'bomb.png', bytes: header },
        { name: 'shape.npy', bytes: encodeNpy([1, 3, 4, 4], new Float32Array(48)) }, { name: 'missing.png' },
      ];
      const chosen = pool.filter(() => r.uniform() < 0.4);
      if (!chosen.length) chosen.push(pool[0]);
      const args = [...chosen.map((f) => String(f.name)), A];
      return {
        kind: 'cli', family: 'cli.bad-files', what: `classify ${args.join(' ')} --jsonl r.jsonl (issue 17 5e)`,
        files: [...good(r.nextU32()), ...chosen.filter((f) => f.bytes)], args: ['classify', ...args, '--jsonl', 'r.jsonl'], outputs: ['r.jsonl'],
        check: (o) => {
          const bad = exitIn(o, [1]);
          if (bad) return bad;
          const lines = jsonLines(o.dir, 'r.jsonl');
          for (const f of chosen) {
            const l = lines.find((x) => x?.input === f.name);
            if (!l || typeof l.error !== 'string') return `no error line for ${String(f.name)}: ${JSON.stringify(lines).slice(0, 300)}`;
            if (!l.error.includes(String(f.name))) return `the error line of ${String(f.name)} does not name the file: ${l.error}`;
          }
          if (!lines.some((x) => x?.input === A && Array.isArray(x.predictions))) return 'a.png was not classified';
          return undefined;
        },
      };
    },
  },
  {
    // 2c, 3a, 5f: hostile box files in eval: that picture's error line (or boxes that are real), the next picture still scored, in time.
    name: 'cli.eval-boxes', kind: 'cli', weight: 0.5,
    make: (r) => {
      const v = pick(r, HOSTILE_XML);
      const x = v.make(r);
      return {
        kind: 'cli', family: 'cli.eval-boxes', what: `eval a.png b.png --boxes boxes --metrics localisation, a.xml: ${v.what}`,
        files: [...good(r.nextU32()), { name: 'boxes', dir: true }, { name: 'boxes/a.xml', bytes: text(x.xml) }, { name: 'boxes/b.xml', bytes: text(annotation([{ name: '3', box: [2, 2, 10, 10] }])) }],
        // --steps 2: the box file alone is under test here (the default steps on this small model: cli.eval-options).
        args: ['eval', A, B, '--boxes', 'boxes', '--metrics', 'localisation', '--steps', '2', '--jsonl', 'r.jsonl'], outputs: ['r.jsonl'],
        check: (o) => {
          const bad = exitIn(o, [0, 1]);
          if (bad) return bad;
          const lines = jsonLines(o.dir, 'r.jsonl');
          const b = lines.find((l) => l?.input === B);
          if (!b || b.error) return `b.png (a good box file, after the hostile one) was not scored: ${JSON.stringify(b ?? lines).slice(0, 300)}`;
          return undefined;
        },
      };
    },
  },
  {
    // 3b, 5b, 5c: eval's numeric and list options.
    name: 'cli.eval-options', kind: 'cli', weight: 0.5,
    make: (r) => {
      const v = pick(r, [
        { what: '--steps 1000000000 (issue 17 3b)', args: ['--steps', '1000000000'], codes: [2] },
        { what: '--steps 0', args: ['--steps', '0'], codes: [2] },
        { what: '--steps -1', args: ['--steps', '-1'], codes: [2] },
        { what: '--steps 1.5', args: ['--steps', '1.5'], codes: [2] },
        { what: "--method '' (issue 17 5c)", args: ['--method', ''], codes: [2] },
        { what: '--method gradcam,gradcam (issue 17 5b)', args: ['--method', 'gradcam,gradcam', '--steps', '2'], codes: [0], rows: 1 },
        { what: '--batch 0', args: ['--batch', '0'], codes: [2] },
        { what: '--baseline bogus', args: ['--baseline', 'bogus'], codes: [2] },
        { what: '--metrics nope', args: ['--metrics', 'nope'], codes: [2] },
        { what: 'the default steps on a model input of 192 pixels (fewer than 224)', args: [], codes: [0] },
      ]);
      return {
        kind: 'cli', family: 'cli.eval-options', what: `eval a.png ${v.what}`,
        files: good(r.nextU32()), args: ['eval', A, '--metrics', 'drop,deletion', ...v.args, '--json', 'e.json'], outputs: ['e.json'],
        check: (o) => {
          const bad = exitIn(o, v.codes);
          if (bad || v.rows === undefined) return bad;
          const doc = JSON.parse(readFileSync(join(o.dir, 'e.json'), 'utf8')) as { summary?: unknown[] };
          return doc.summary?.length === v.rows ? undefined : `expected ${v.rows} row(s) in the summary, got ${JSON.stringify(doc.summary).slice(0, 200)}`;
        },
      };
    },
  },
  {
    // 6: a bad element in an array names its index (was a TypeError for {}).
    name: 'api.batch-inputs', kind: 'api', weight: 3,
    make: (r) => {
      const n = 1 + (r.nextU32() % 4);
      const badAt = r.nextU32() % n;
      const v = pick(r, BAD_INPUTS);
      const useClassify = r.uniform() < 0.5;
      return {
        kind: 'api', family: 'api.batch-inputs', what: `${useClassify ? 'classify' : 'gradCAM'} of ${n} inputs, input ${badAt}: ${v.what}`,
        run: async (ctx) => {
          const inputs = Array.from({ length: n }, (_, i) => (i === badAt ? v.make() : i % 2 ? ctx.tensor() : ctx.picture()));
          try {
            if (useClassify) await ctx.net.classify(inputs as ModelInput[]);
            else await gradCAM(ctx.net, inputs as ModelInput[], { upsample: false });
            return fail('oracle', `accepted ${v.what}`);
          } catch (e) {
            const j = judgeError(e);
            if (!j.ok) return j;
            return (e as Error).message.startsWith(`input ${badAt} of ${n}: `) ? j : fail('oracle', `does not name input ${badAt} of ${n}: ${(e as Error).message}`);
          }
        },
      };
    },
  },
  {
    // 6: options of gradCAM and classify: refused in words, or results that respect them (top −1 gave 9 of 10).
    name: 'api.batch-options', kind: 'api', weight: 3,
    make: (r) => {
      const classify = r.uniform() < 0.4;
      const keys = classify ? ['top', 'top', 'batchSize', 'onResult', 'topK'] : ['classes', 'featureLayers', 'reduction', 'reductionLayer', 'upsample', 'overlay', 'methods', 'counterfactual', 'inspect', 'batchSize', 'onResult', 'featureLayer'];
      const options: Record<string, unknown> = {};
      const count = 1 + (r.nextU32() % 3);
      for (let i = 0; i < count; i++) options[pick(r, keys)] = pick(r, HOSTILE_VALUES);
      const n = 1 + (r.nextU32() % 3);
      const shown = Object.entries(options).map(([k, v]) => `${k}: ${typeof v === 'function' ? 'a function' : JSON.stringify(v) ?? String(v)}`).join(', ');
      return {
        kind: 'api', family: 'api.batch-options', what: `${classify ? 'classify' : 'gradCAM'} of ${n} inputs with { ${shown} } (issue 17 6)`,
        run: async (ctx) => {
          const inputs = Array.from({ length: n }, () => ctx.picture());
          // Accepted with an option that is not valid (by the documented types and ranges): a silent default.
          const invalid = Object.entries(options).find(([k, v]) => !validOption(k, v, classify));
          const silent = (): Verdict => fail('oracle', `accepted ${invalid![0]}: ${typeof invalid![1] === 'function' ? 'a function' : JSON.stringify(invalid![1]) ?? String(invalid![1])} (a silent default)`);
          try {
            if (classify) {
              const out = await ctx.net.classify(inputs, options as never);
              const want = Math.min(options.top === undefined ? 5 : (options.top as number), ctx.net.classCount);
              if (invalid) return silent();
              if (out.length !== n || out.some((c) => c.predictions.length !== want)) return fail('oracle', `accepted, but ${out.map((c) => c.predictions.length).join(', ')} predictions (top ${String(options.top)})`);
              return pass('accepted');
            }
            const out = await gradCAM(ctx.net, inputs, { upsample: false, ...options } as never);
            if (invalid) return silent();
            if (out.length !== n || out.some((x) => !x.maps.length || x.maps.some((m) => !Number.isFinite(m.max)))) return fail('oracle', 'accepted, but the results are not one per input with finite maps');
            return pass('accepted');
          } catch (e) {
            return judgeError(e);
          }
        },
      };
    },
  },
  {
    // 6: evaluateImage's options and summarise (steps 0/−1/NaN gave a NaN AUC, 1.5 a 2-point curve; TypeErrors).
    name: 'api.metrics', kind: 'api', weight: 2,
    make: (r) => {
      const v = pick(r, [
        ...[0, -1, NaN, 1.5, 1e9, 2, 3].map((steps) => ({ what: `steps ${String(steps)} (issue 17 6)`, options: { steps } as Record<string, unknown> })),
        ...[0, NaN, -2, 2.5, 2].map((batchSize) => ({ what: `batchSize ${batchSize} (issue 17 6)`, options: { batchSize, steps: 2 } as Record<string, unknown> })),
        ...['bogus', '', 5].map((b) => ({ what: `deletionBaseline ${JSON.stringify(b)} (issue 17 6)`, options: { deletionBaseline: b, steps: 2 } as Record<string, unknown> })),
        ...[['gradcam', 'nope'], [], 'gradcam', ['gradcam', 'gradcam']].map((methods) => ({ what: `methods ${JSON.stringify(methods)} (issue 17 6)`, options: { methods, steps: 2 } as Record<string, unknown> })),
        { what: 'featureLayer nope', options: { featureLayer: 'nope', steps: 2 } },
        { what: 'summarise over evaluations with no method in common (issue 17 6)', options: { summarise: 'disjoint' } },
        { what: 'summarise of nothing', options: { summarise: 'empty' } },
      ]);
      return {
        kind: 'api', family: 'api.metrics', what: `evaluateImage ${v.what}`,
        run: async (ctx) => {
          try {
            if (v.options.summarise) {
              const one = (method: string): ImageEvaluation => ({ width: 20, height: 16, predictions: [], methods: [{ method, layer: 'a3', class: 1, full: 0.5, explained: 0.4 }] } as unknown as ImageEvaluation);
              summarise(v.options.summarise === 'empty' ? [] : [one('gradcam'), one('hirescam')]);
              return v.options.summarise === 'empty' ? pass('empty') : fail('oracle', 'accepted evaluations with no method in common');
            }
            const e = await evaluateImage(ctx.net, ctx.picture(), { dropIncrease: false, insertion: false, ...v.options } as never);
            // Valid values as EvaluateOptions documents them (the small model's input: 16 × 12 = 192 pixels).
            const count = (x: unknown, max = Number.MAX_SAFE_INTEGER) => typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= max;
            const valid: Record<string, (x: unknown) => boolean> = {
              steps: (x) => count(x, 192), batchSize: (x) => count(x), deletionBaseline: (x) => x === 'zero' || x === 'blur',
              methods: (x) => Array.isArray(x) && x.length > 0 && x.every((m) => ['gradcam', 'hirescam', 'gradcam-elementwise', 'gradcam++', 'xgradcam', 'layercam', 'eigencam'].includes(m)),
              featureLayer: (x) => typeof x === 'string' && x !== '',
            };
            const invalid = Object.entries(v.options).find(([k, x]) => valid[k] && !valid[k](x));
            if (invalid) return fail('oracle', `accepted ${invalid[0]}: ${JSON.stringify(invalid[1]) ?? String(invalid[1])} (a silent default)`);
            const steps = v.options.steps as number;
            for (const m of e.methods) {
              if (!Number.isFinite(m.deletionAuc)) return fail('oracle', `accepted, but the deletion AUC is ${m.deletionAuc}`);
              if (typeof steps === 'number' && Number.isInteger(steps) && m.deletion && m.deletion.length !== steps + 1) return fail('oracle', `steps ${steps}, but a ${m.deletion.length}-point curve`);
              if (typeof steps === 'number' && !Number.isInteger(steps)) return fail('oracle', `accepted steps ${steps}`);
            }
            return pass('accepted');
          } catch (e) {
            return judgeError(e);
          }
        },
      };
    },
  },
  {
    // 6: destroy() before, right after, during and between the runs of a call: that GradcamError, no validation error, no leak.
    name: 'api.destroy', kind: 'api', weight: 2,
    make: (r) => {
      const when = pick(r, ['before', 'queued', 'running', 'onResult', 'twice'] as const);
      const call = pick(r, ['gradCAM one', 'gradCAM many', 'classify many', 'evaluateImage'] as const);
      return {
        kind: 'api', family: 'api.destroy', what: `destroy() ${when} a call of ${call} (issue 17 6)`,
        run: async (ctx) => {
          const before = liveBuffers(ctx.gpu.device);
          const net = await Network.load(ctx.gpu, smallModel(3, 'reshape-softmax'));
          let destroyed: Promise<void> | undefined;
          const destroy = () => (destroyed ??= net.destroy());
          const inputs = [0, 1, 2, 3, 4].map(() => ctx.picture());
          const onResult = (_: unknown, i: number) => {
            if (when === 'onResult' && i === 1) void destroy();
          };
          const start = (): Promise<unknown> => {
            if (call === 'gradCAM one') return gradCAM(net, inputs[0], { upsample: false });
            if (call === 'gradCAM many') return gradCAM(net, inputs, { batchSize: 2, upsample: false, onResult });
            if (call === 'classify many') return net.classify(inputs, { batchSize: 2, onResult });
            return evaluateImage(net, inputs[0], { steps: 2, batchSize: 2 });
          };
          if (when === 'before') await destroy();
          const settled = start().then(() => 'resolved', (e: unknown) => e);
          if (when === 'queued') void destroy();
          if (when === 'running' || when === 'twice') {
            await new Promise((resolve) => setImmediate(resolve));
            void destroy();
            if (when === 'twice' && net.destroy() !== destroyed) return fail('oracle', 'a second destroy() gave another promise');
          }
          const outcome = await settled;
          void destroy(); // (onResult: a call without batches never called it)
          const after = await Promise.allSettled([gradCAM(net, inputs[0]), net.classify(inputs)]);
          await destroy();
          if (outcome !== 'resolved') {
            const j = judgeError(outcome);
            if (!j.ok) return j;
            if (!/destroyed/.test((outcome as Error).message)) return fail('oracle', `rejected, not for destroy(): ${(outcome as Error).message}`);
          }
          for (const a of after) {
            if (a.status !== 'rejected' || !/^this network was destroyed/.test((a.reason as Error)?.message)) return fail('oracle', `a call after destroy() ${a.status === 'fulfilled' ? 'resolved' : `rejected with ${(a.reason as Error)?.message}`}`);
          }
          const left = liveBuffers(ctx.gpu.device);
          if (left.buffers !== before.buffers || left.bytes !== before.bytes) return fail('oracle', `${left.buffers - before.buffers} buffers (${left.bytes - before.bytes} bytes) left after destroy()`);
          return pass(outcome === 'resolved' ? 'the call ended' : 'the call was cancelled');
        },
      };
    },
  },
  {
    // 2c, 3a, 5f: parseAnnotation on hostile XML: linear time, real elements only, finite boxes, errors in words.
    name: 'api.boxes-xml', kind: 'api', weight: 3,
    make: (r) => {
      const v = pick(r, HOSTILE_XML);
      const x = v.make(r);
      return {
        kind: 'api', family: 'api.boxes-xml', what: `parseAnnotation: ${v.what}`, cpuOnly: true,
        run: async () => {
          const t0 = performance.now();
          let verdict: Verdict;
          try {
            const a = parseAnnotation(x.xml, 'a.xml');
            if (x.objects !== undefined && a.objects.length !== x.objects) verdict = fail('oracle', `${a.objects.length} boxes read, the file has ${x.objects} real <object> elements`);
            else if (a.objects.some((o) => ![o.box.xmin, o.box.ymin, o.box.xmax, o.box.ymax].every(Number.isFinite))) verdict = fail('oracle', 'a box with a coordinate that is not finite');
            else verdict = pass(`${a.objects.length} boxes`);
          } catch (e) {
            verdict = judgeError(e);
          }
          const ms = performance.now() - t0;
          // Linear time: 1 MB of XML parses in well under a second; 5 s leaves room for a loaded machine.
          return ms > 5000 ? fail('hang', `took ${ms.toFixed(0)} ms for ${x.xml.length} characters`) : verdict;
        },
      };
    },
  },
];

/** A box file: `objects` as <object> elements of <annotation>. */
function annotation(objects: { name: string; box: (number | string)[] }[], inside = ''): string {
  const obj = objects.map((o) => `<object><name>${o.name}</name><bndbox><xmin>${o.box[0]}</xmin><ymin>${o.box[1]}</ymin><xmax>${o.box[2]}</xmax><ymax>${o.box[3]}</ymax></bndbox></object>`).join('');
  return `<annotation><filename>a.png</filename><size><width>20</width><height>16</height><depth>3</depth></size>${inside}${obj}</annotation>`;
}

const OBJECT = '<object><name>3</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>';

/** Hostile box files; `objects`: how many real <object> elements it has, when it parses (undefined: it need not). */
const HOSTILE_XML: { what: string; make: (r: Rng) => { xml: string; objects?: number } }[] = [
  { what: '&#99999999; in a name (issue 17 2c)', make: () => ({ xml: annotation([{ name: '&#99999999;', box: [1, 1, 5, 5] }]) }) },
  { what: '&#xD800; (a surrogate) in a name', make: () => ({ xml: annotation([{ name: '&#xD800;', box: [1, 1, 5, 5] }]) }) },
  { what: 'an undefined entity &foo;', make: () => ({ xml: annotation([{ name: '&foo;', box: [1, 1, 5, 5] }]) }) },
  { what: 'unclosed <object> tags, ~800 KB (issue 17 3a)', make: (r) => ({ xml: `<annotation>${'<object>'.repeat(90000 + (r.nextU32() % 10000))}` }) },
  { what: 'unclosed <!-- comments, ~400 KB (issue 17 3a)', make: () => ({ xml: `<annotation>${'<!--'.repeat(100000)}` }) },
  { what: 'a file over the size cap (2 MB of objects)', make: () => ({ xml: annotation([], OBJECT.repeat(20000)) }) },
  { what: 'an <object> inside CDATA (issue 17 5f)', make: () => ({ xml: annotation([{ name: '3', box: [1, 1, 5, 5] }], `<![CDATA[${OBJECT}]]>`), objects: 1 }) },
  { what: 'an <object> inside a comment', make: () => ({ xml: annotation([{ name: '3', box: [1, 1, 5, 5] }], `<!-- ${OBJECT} -->`), objects: 1 }) },
  { what: 'an <object> in a DTD entity (issue 17 5f)', make: () => ({ xml: `<!DOCTYPE annotation [<!ENTITY o "${OBJECT.replace(/"/g, '&quot;')}">]>${annotation([{ name: '3', box: [1, 1, 5, 5] }], '&o;')}`, objects: 1 }) },
  { what: 'an external entity (XXE)', make: () => ({ xml: `<!DOCTYPE annotation [<!ENTITY x SYSTEM "file:///etc/passwd">]>${annotation([{ name: '&x;', box: [1, 1, 5, 5] }])}` }) },
  { what: 'entity expansion (billion laughs)', make: () => ({ xml: `<!DOCTYPE a [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>${annotation([{ name: '&c;', box: [1, 1, 5, 5] }])}` }) },
  { what: 'a 400-digit coordinate (issue 17 5f)', make: () => ({ xml: annotation([{ name: '3', box: [1, 1, '9'.repeat(400), 5] }]) }) },
  { what: 'coordinates outside the picture', make: () => ({ xml: annotation([{ name: '3', box: [-50, -50, 5000, 5000] }]) }) },
  { what: 'xmin > xmax', make: () => ({ xml: annotation([{ name: '3', box: [10, 10, 2, 2] }]) }) },
  { what: 'coordinates that are not numbers', make: () => ({ xml: annotation([{ name: '3', box: ['NaN', '1e999', '0x10', ' '] }]) }) },
  { what: 'a box without <bndbox>', make: () => ({ xml: '<annotation><object><name>3</name></object></annotation>' }) },
  { what: 'not XML at all', make: () => ({ xml: '\u0000\u0001 hello <<<' }) },
  { what: 'an empty file', make: () => ({ xml: '' }) },
  { what: 'a good file with 3 objects', make: () => ({ xml: annotation([1, 2, 3].map((i) => ({ name: '3', box: [i, i, i + 4, i + 4] }))), objects: 3 }) },
];

/** Elements a batch must refuse, naming their index. */
const BAD_INPUTS: { what: string; make: () => unknown }[] = [
  { what: '{} (issue 17 6)', make: () => ({}) },
  { what: 'null', make: () => null },
  { what: 'undefined', make: () => undefined },
  { what: 'a number', make: () => 7 },
  { what: 'a file name', make: () => 'a.png' },
  { what: 'an array', make: () => [1, 2, 3] },
  { what: 'a tensor with plain-array data', make: () => ({ shape: [1, 3, 16, 12], data: Array(576).fill(0) }) },
  { what: 'a tensor with Float64Array data', make: () => ({ shape: [1, 3, 16, 12], data: new Float64Array(576) }) },
  { what: 'a tensor of the wrong shape', make: () => ({ shape: [1, 3, 16, 11], data: new Float32Array(528) }) },
  { what: 'a tensor with NaN', make: () => ({ shape: [1, 3, 16, 12], data: new Float32Array(576).fill(NaN) }) },
  { what: 'a tensor with a string shape', make: () => ({ shape: '1,3,16,12', data: new Float32Array(576) }) },
  { what: 'a picture with too few bytes', make: () => ({ width: 20, height: 16, data: new Uint8Array(5) }) },
  { what: 'a picture of width −1', make: () => ({ width: -1, height: 16, data: new Uint8Array(4) }) },
  { what: 'a picture of NaN × NaN', make: () => ({ width: NaN, height: NaN, data: new Uint8Array(0) }) },
  { what: 'a picture with string data', make: () => ({ width: 1, height: 1, data: 'abcd' }) },
  { what: 'a picture of 0 × 0', make: () => ({ width: 0, height: 0, data: new Uint8Array(0) }) },
];

/**
 * Whether `value` is a valid value of option `key` as the types and the README document them (on
 * the small model: 10 classes, layers 'a3', …), written from the documentation, not from the code
 * that checks them (src/gradcam/arguments.ts). Undefined is the default.
 */
function validOption(key: string, value: unknown, classify: boolean): boolean {
  if (value === undefined) return true;
  const count = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= Number.MAX_SAFE_INTEGER;
  const cls = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 10;
  const layer = (v: unknown) => typeof v === 'string' && v !== '';
  const methods = ['gradcam', 'hirescam', 'gradcam-elementwise', 'gradcam++', 'xgradcam', 'layercam', 'eigencam', 'guided-backprop', 'guided-gradcam'];
  const checks: Record<string, (v: unknown) => boolean> = classify
    ? { top: count, batchSize: count, onResult: (v) => typeof v === 'function' }
    : {
      classes: (v) => cls(v) || (Array.isArray(v) && v.length > 0 && v.every(cls)) || (typeof v === 'string' && /^top([1-9]|10)?$/.test(v)),
      featureLayers: (v) => layer(v) || (Array.isArray(v) && v.length > 0 && v.every(layer)),
      reduction: (v) => v === 'logit' || v === 'softmax',
      reductionLayer: layer,
      upsample: (v) => typeof v === 'boolean',
      overlay: (v) => typeof v === 'boolean' || (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).every((k) => k === 'alpha')
        && ((v as { alpha?: unknown }).alpha === undefined || (typeof (v as { alpha: unknown }).alpha === 'number' && (v as { alpha: number }).alpha >= 0 && (v as { alpha: number }).alpha <= 1))),
      methods: (v) => Array.isArray(v) && v.length > 0 && v.every((m) => methods.includes(m as string)),
      counterfactual: (v) => typeof v === 'boolean',
      inspect: (v) => typeof v === 'boolean',
      batchSize: count,
      onResult: (v) => typeof v === 'function',
    };
  return Object.hasOwn(checks, key) && checks[key](value);
}

/** Values for options, hostile and careless, and a few good ones. */
const HOSTILE_VALUES: unknown[] = [
  -1, 0, 1, 2, 1.5, NaN, Infinity, -Infinity, 1e9, -0, '', 'bogus', '3', 'top', 'top3', 'top0', 'all', 'auto', 'logit', 'softmax', 'a3', 'nope',
  null, true, false, {}, [], ['gradcam'], ['gradcam', 'nope'], ['a3', 'a3'], [2, 2], [1.5], { alpha: 2 }, { alpha: 0.5 }, () => 0, 'gradcam',
];

/** Case `index` of run `seed`: family i for the first ones, then drawn by weight. */
export function makeCase(seed: number, index: number, only?: string): Case {
  const r = new Rng(((seed * 0x9e3779b1) ^ (index * 0x85ebca6b)) >>> 0);
  const families = only ? FAMILIES.filter((f) => f.name === only) : FAMILIES;
  if (!families.length) throw new Error(`red-team: no family '${only}' (known: ${FAMILIES.map((f) => f.name).join(', ')})`);
  let family: Family;
  if (index < families.length) family = families[index];
  else {
    const total = families.reduce((a, f) => a + f.weight, 0);
    let x = r.uniform(0, total);
    family = families.find((f) => (x -= f.weight) < 0) ?? families[families.length - 1];
  }
  const c = family.make(r);
  if (!c) throw new Error(`red-team: family ${family.name} made no case`);
  return c;
}

export const FAMILY_NAMES = FAMILIES.map((f) => f.name);

// ───────────────────────────── running a CLI case ─────────────────────────────

/** Every entry under `dir` (names as bytes, latin1-keyed): its kind and content hash, or link target. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (at: Buffer, rel: string) => {
    for (const name of readdirSync(at, { encoding: 'buffer' })) {
      const path = Buffer.concat([at, Buffer.from('/'), name]);
      const key = rel ? `${rel}/${name.toString('latin1')}` : name.toString('latin1');
      const s = lstatSync(path);
      if (s.isSymbolicLink()) out.set(key, `link ${readlinkSync(path, { encoding: 'buffer' }).toString('latin1')}`);
      else if (s.isDirectory()) {
        out.set(key, 'dir');
        walk(path, key);
      } else if (s.isFile()) out.set(key, `file ${createHash('sha256').update(readFileSync(path)).digest('hex')}`);
      else out.set(key, s.isFIFO() ? 'fifo' : 'special');
    }
  };
  walk(Buffer.from(dir), '');
  return out;
}

function makeFiles(dir: string, files: FileSpec[]): void {
  for (const f of files) {
    const path = Buffer.concat([Buffer.from(`${dir}/`), Buffer.from(f.name)]);
    if (f.dir) mkdirSync(path, { recursive: true });
    else if (f.symlink !== undefined) symlinkSync(f.symlink, path);
    else if (f.hardlink !== undefined) linkSync(join(dir, f.hardlink), path);
    else if (f.fifo) execFileSync('mkfifo', [path.toString()]);
    else if (f.bytes) writeFileSync(path, f.bytes);
  }
}

const isOutput = (key: string, outputs: string[]) => outputs.some((o) => key === o || key.startsWith(`${o}/`));

/** The generic invariants on a finished CLI run. */
function judgeCli(c: CliCase, o: CliOutcome, hangMs: number): Verdict {
  if (o.signal) return o.ms >= hangMs ? fail('hang', `no exit after ${hangMs} ms (stopped)`) : fail('crash', `killed by ${o.signal}; stderr: ${lastLines(o.stderr)}`);
  if (o.code !== 0 && o.code !== 1 && o.code !== 2) return fail('crash', `exit ${o.code}; stderr: ${lastLines(o.stderr)}`);
  const engine = o.stderr.split('\n').find((l) => ENGINE_TEXT.test(l)) ?? o.stdout.split('\n').find((l) => ENGINE_TEXT.test(l));
  if (engine) return fail('internal message', engine.slice(0, 300));
  if (/\n\s+at /.test(o.stderr)) return fail('internal message', 'a stack trace on stderr');
  if (o.code !== 0 && !/^gradcam: /m.test(o.stderr)) return fail('internal message', `exit ${o.code} without a 'gradcam: …' line: ${lastLines(o.stderr)}`);
  // The user's files.
  for (const [key, was] of o.before) {
    if (isOutput(key, c.outputs)) continue;
    const now = o.after.get(key);
    if (now !== was) return fail('changed input', `${JSON.stringify(key)}: ${was.slice(0, 20)} → ${now?.slice(0, 20) ?? 'gone'}`);
  }
  for (const key of o.after.keys()) {
    if (o.before.has(key) || isOutput(key, c.outputs)) continue;
    return fail('stray file', `${JSON.stringify(key)} appeared, not under the named outputs (${c.outputs.join(', ') || 'none'})`);
  }
  // Complete outputs.
  for (const [key, kind] of o.after) {
    if (!isOutput(key, c.outputs) || !kind.startsWith('file')) continue;
    const base = key.split('/').pop()!;
    if (/\.tmp$|\.part$/.test(base)) return fail('half-written output', `${JSON.stringify(key)} left behind`);
    const bytes = readFileSync(Buffer.concat([Buffer.from(`${o.dir}/`), Buffer.from(key, 'latin1')]));
    if (/\.jsonl$/.test(base) && c.family !== 'cli.resume') {
      const lines = bytes.toString('utf8');
      if (lines && !lines.endsWith('\n')) return fail('half-written output', `${key} ends in the middle of a line`);
      for (const l of lines.split('\n').filter(Boolean)) {
        try {
          JSON.parse(l);
        } catch {
          return fail('half-written output', `${key}: a line that is not JSON: ${l.slice(0, 80)}`);
        }
      }
    }
    if (/\.png$/i.test(base) && !Buffer.from(bytes.subarray(-8)).equals(Buffer.from([0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]))) return fail('half-written output', `${key} does not end with IEND`);
  }
  const oracle = c.check?.(o);
  if (oracle) return fail('oracle', oracle);
  return pass(`exit ${o.code}`);
}

interface Fixtures { root: string; cli: string; model: Uint8Array }

/**
 * The run's folder as a CLI case may see it: what is in it, less the shared cache and the lanes'
 * folders (other cases, running side by side, make and remove their folders there).
 */
const runFolder = (root: string) => readdirSync(root).filter((n) => n !== 'cache' && !/^lane-\d+$/.test(n)).sort().join('\n');

/** Runs a CLI case in `<root>/lane-<lane>/case-<index>`: a lane runs one case at a time, so its folder is watched too. */
async function runCli(c: CliCase, index: number, lane: number, fx: Fixtures, hangMs: number, keep: boolean): Promise<Verdict & { ms: number }> {
  const laneDir = join(fx.root, `lane-${lane}`);
  const dir = join(laneDir, `case-${index}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, MODEL), fx.model);
  makeFiles(dir, c.files);
  const rootBefore = runFolder(fx.root);
  const laneBefore = readdirSync(laneDir).sort().join('\n');
  const before = snapshot(dir);
  const t0 = performance.now();
  const o = await new Promise<CliOutcome>((resolve) => {
    const child = spawn(process.execPath, [fx.cli, ...c.args, '--model', MODEL], {
      cwd: dir, env: { ...process.env, GRADCAM_CACHE: join(fx.root, 'cache'), GRADCAM_DEBUG: '' }, stdio: ['ignore', 'pipe', 'pipe'], timeout: hangMs, killSignal: 'SIGKILL',
    });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => { if (stdout.length < 1e6) stdout += d; });
    child.stderr.on('data', (d: Buffer) => { if (stderr.length < 1e6) stderr += d; });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: performance.now() - t0, dir, before, after: new Map() }));
  });
  o.after = snapshot(dir);
  let verdict = judgeCli(c, o, hangMs);
  const rootAfter = runFolder(fx.root);
  const laneAfter = readdirSync(laneDir).sort().join('\n');
  if (verdict.ok && rootAfter !== rootBefore) verdict = fail('stray file', `the run's folder changed: ${rootAfter.replace(/\n/g, ', ')}`);
  if (verdict.ok && laneAfter !== laneBefore) verdict = fail('stray file', `the case's parent folder changed: ${laneAfter.replace(/\n/g, ', ')}`);
  if (!keep) rmSync(dir, { recursive: true, force: true });
  return { ...verdict, ms: o.ms };
}

// ───────────────────────────── the API worker ─────────────────────────────

interface WorkerRequest { seed: number; index: number; only?: string; hang?: boolean }
interface WorkerReply { index: number; verdict: Verdict; ready?: true }

/**
 * The worker process: one device, one small network (made for the first case that needs a GPU: a
 * run of CPU-only cases starts no Dawn); runs API cases as asked, one at a time.
 */
async function apiWorker(): Promise<void> {
  const errors: string[] = [];
  let n = 0;
  let context: Promise<ApiContext> | undefined;
  const gpuContext = () => (context ??= (async () => {
    const gpu = await nodeGpu(() => undefined);
    const net = await Network.load(gpu, smallModel(3, 'reshape-softmax'));
    gpu.device.addEventListener('uncapturederror', (e) => {
      e.preventDefault();
      errors.push((e as GPUUncapturedErrorEvent).error.message);
    });
    return {
      gpu, net,
      picture: () => randomPicture(new Rng(++n), PICTURE_SIZE.width, PICTURE_SIZE.height),
      tensor: () => ({ shape: [1, 3, 16, 12], data: new Rng(++n).uniforms(576, -1, 1) }),
    };
  })());
  process.on('message', (m: WorkerRequest) => {
    void (async () => {
      const c = makeCase(m.seed, m.index, m.only) as ApiCase;
      errors.length = 0;
      let verdict: Verdict;
      // --hang-case: this case never returns (a check of the watchdog).
      if (m.hang) await new Promise(() => undefined);
      try {
        if (c.cpuOnly) verdict = await c.run(undefined as never);
        else {
          const ctx = await gpuContext();
          verdict = await c.run(ctx);
          await ctx.gpu.device.queue.onSubmittedWorkDone();
        }
      } catch (e) {
        verdict = fail('crash', `the case threw: ${(e as Error)?.stack ?? String(e)}`);
      }
      if (verdict.ok && errors.length) verdict = fail('internal message', `uncaptured WebGPU error: ${errors[0]}`);
      process.send!({ index: m.index, verdict } satisfies WorkerReply);
    })();
  });
  process.send!({ index: -1, verdict: pass(), ready: true } satisfies WorkerReply);
}

/** The parent's handle on the worker: starts it when needed, stops it on a hang. */
class Worker {
  private child?: ChildProcess;
  private ready?: Promise<void>;
  private waiting?: (r: WorkerReply | Error) => void;

  constructor(private script: string) {}

  private start(): Promise<void> {
    const child = fork(this.script, ['--api-worker'], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.child = child;
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d).slice(-2000); });
    this.ready = new Promise((resolve, reject) => {
      child.once('message', (m: WorkerReply) => (m.ready ? resolve() : reject(new Error('worker: no ready message'))));
      child.once('exit', (code) => reject(new Error(`the API worker exited (${code}) before it was ready: ${stderr}`)));
    });
    child.on('message', (m: WorkerReply) => {
      if (!m.ready) this.waiting?.(m);
    });
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      this.waiting?.(new Error(`the API worker died (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n').slice(-3).join(' / ')}`));
    });
    return this.ready;
  }

  async run(req: WorkerRequest, hangMs: number): Promise<Verdict> {
    if (!this.child) await this.start();
    await this.ready;
    return new Promise<Verdict>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        this.stop();
        resolve(fail('hang', `no result after ${hangMs} ms (the worker was stopped)`));
      }, hangMs);
      this.waiting = (r) => {
        clearTimeout(timer);
        this.waiting = undefined;
        if (r instanceof Error) resolve(fail('crash', r.message));
        else if (r.index === req.index) resolve(r.verdict);
      };
      this.child!.send(req);
    });
  }

  stop(): void {
    const child = this.child;
    this.child = undefined;
    child?.kill('SIGKILL');
  }
}

// ───────────────────────────── the run ─────────────────────────────

export interface Failure { index: number; seed: number; family: string; what: string; why: Why; message: string }

export interface Summary {
  seed: number;
  from: number;
  cases: number;
  passed: number;
  failures: Failure[];
  seconds: number;
  /** Cases per family, and of them how many failed. */
  perFamily: Record<string, { cases: number; failed: number; seconds: number }>;
}

export interface RunOptions {
  seed: number; from: number; cases: number; hangMs: number; cli: string; keep: boolean; only?: string; progress?: (line: string) => void;
  /** Cases run side by side (CLI cases each in a process of their own; API cases one at a time in the worker). */
  jobs: number;
  /** An API case that never returns (a check of the watchdog). */
  hangCase?: number;
}

export async function runRedTeam(o: RunOptions, script: string): Promise<Summary> {
  const t0 = performance.now();
  const root = join(tmpdir(), `gradcam-red-team-${process.pid}`);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const fx: Fixtures = { root, cli: o.cli, model: encodeOnnx(smallModel(3, 'reshape-softmax')) };
  const worker = new Worker(script);
  const s: Summary = { seed: o.seed, from: o.from, cases: o.cases, passed: 0, failures: [], seconds: 0, perFamily: {} };
  const done: { index: number; c: Case; verdict: Verdict; seconds: number }[] = [];
  // The worker runs one API case at a time: API cases queue for it (a CLI case may run beside one).
  let workerFree: Promise<unknown> = Promise.resolve();
  const runOne = async (index: number, lane: number) => {
    const c = makeCase(o.seed, index, o.only);
    let t = performance.now();
    let verdict: Verdict;
    if (c.kind === 'cli') verdict = await runCli(c, index, lane, fx, o.hangMs, o.keep);
    else {
      const turn = workerFree.then(() => {
        t = performance.now();
        return worker.run({ seed: o.seed, index, only: o.only, hang: index === o.hangCase }, o.hangMs);
      });
      workerFree = turn;
      verdict = await turn;
    }
    const seconds = (performance.now() - t) / 1000;
    done.push({ index, c, verdict, seconds });
    o.progress?.(`red-team: case ${index} ${c.family}: ${c.what}: ${verdict.ok ? `ok (${verdict.note ?? ''})`.slice(0, 160) : `FAILED (${verdict.why}): ${verdict.message}`} [${seconds.toFixed(1)} s]`);
  };
  try {
    let next = o.from;
    const lane = async (k: number) => {
      while (next < o.from + o.cases) await runOne(next++, k);
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.jobs, o.cases)) }, (_, k) => lane(k)));
    // The summary in case order, whichever lane finished first.
    for (const { index, c, verdict, seconds } of done.sort((a, b) => a.index - b.index)) {
      const f = (s.perFamily[c.family] ??= { cases: 0, failed: 0, seconds: 0 });
      f.cases++;
      f.seconds += seconds;
      if (verdict.ok) s.passed++;
      else {
        f.failed++;
        s.failures.push({ index, seed: o.seed, family: c.family, what: c.what, why: verdict.why!, message: verdict.message ?? '' });
      }
    }
  } finally {
    worker.stop();
    if (!o.keep) rmSync(root, { recursive: true, force: true });
  }
  s.seconds = (performance.now() - t0) / 1000;
  return s;
}

function parseArgs(argv: string[]) {
  const o = {
    cases: 40, seed: 1, from: 0, hangMs: 60_000, jobs: 2, json: false, keep: false, case: undefined as number | undefined, cli: join(root(), 'dist', 'gradcam.mjs'),
    only: undefined as string | undefined, hangCase: undefined as number | undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`red-team: ${a} needs a value`);
      return v;
    };
    const count = (v: string) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`red-team: ${a} ${v} is not a count`);
      return n;
    };
    if (a === '--cases') o.cases = count(value());
    else if (a === '--seed') o.seed = count(value());
    else if (a === '--from') o.from = count(value());
    else if (a === '--hang-ms') o.hangMs = count(value());
    else if (a === '--jobs') o.jobs = Math.max(1, count(value()));
    else if (a === '--case') o.case = count(value());
    else if (a === '--cli') o.cli = resolve(value());
    else if (a === '--family') o.only = value();
    else if (a === '--hang-case') o.hangCase = count(value());
    else if (a === '--json') o.json = true;
    else if (a === '--keep') o.keep = true;
    else throw new Error(`red-team: unknown argument ${a} (known: --cases N --seed S --from I --hang-ms MS --jobs N --case I --cli FILE --family NAME --json --keep --hang-case I)`);
  }
  return o;
}

function root(): string {
  // The repository: dist/ or test-output/ (bundles) or scripts/ (sources) is one level down.
  return join(fileURLToPath(new URL('.', import.meta.url)), '..');
}

const reproduce = (f: Failure) => `npm run red-team -- --seed ${f.seed} --case ${f.index} --keep`;

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  if (!existsSync(o.cli)) throw new Error(`red-team: no CLI bundle at ${o.cli} (npm run red-team builds it; or --cli FILE)`);
  const script = fileURLToPath(import.meta.url);
  if (o.case !== undefined) {
    const s = await runRedTeam({ ...o, from: o.case, cases: 1, jobs: 1, progress: log }, script);
    if (o.keep) log(`red-team: the case's files are kept in ${join(tmpdir(), `gradcam-red-team-${process.pid}`)}`);
    return s.failures.length ? 1 : 0;
  }
  log(`red-team: ${o.cases} cases from ${o.from}, seed ${o.seed}, watchdog ${o.hangMs} ms per case`);
  const s = await runRedTeam({ ...o, progress: log }, script);
  if (o.json) console.log(JSON.stringify(s));
  log(`red-team: ${s.cases} cases in ${s.seconds.toFixed(1)} s: ${s.passed} passed, ${s.failures.length} failed`);
  log(`red-team: per family: ${Object.entries(s.perFamily).map(([k, v]) => `${k} ${v.cases}${v.failed ? ` (${v.failed} failed)` : ''} ${v.seconds.toFixed(0)} s`).join(', ')}`);
  for (const f of s.failures) log(`FAILED case ${f.index} (seed ${f.seed}, ${f.family}: ${f.what}): ${f.why}: ${f.message}\n  reproduce: ${reproduce(f)}`);
  return s.failures.length ? 1 : 0;
}

if (process.argv.includes('--api-worker')) {
  apiWorker().catch((e: Error) => {
    process.stderr.write(`${e.stack ?? e.message}\n`);
    process.exit(1);
  });
} else if (/(^|\/)red-team[^/]*\.m?js$/.test(process.argv[1] ?? '') && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then((code) => process.exit(code), (e: Error) => {
    process.stderr.write(`${e.message}\n`);
    process.exit(2);
  });
}
