/**
 * Output paths (src/node/files.ts, the CLI's --json, --out, --save-input), end to end with the built
 * CLI and in process:
 *
 * - a regular file or a new path: written through a temporary file and a rename (atomic); an
 *   existing file keeps its permissions;
 * - a symbolic link: written through (the link stays a link; a dangling one creates its target);
 * - a FIFO (with a reader) and a character device (/dev/null): written into, never replaced by a
 *   regular file; /dev/stdout is the process's stdout;
 * - a folder, or a folder that does not exist: refused before any work (classify and explain check
 *   every output before the model is even read, let alone the GPU started);
 * - an empty name (--json '') is a usage error, not a silent "no file".
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { GradcamError } from '../src/errors.ts';
import { encodeNpy } from '../src/image/npy.ts';
import { checkWritable, makeFolders, writeFileAtomic } from '../src/node/files.ts';
import { expectExit, expectUserError, gradcam, inParallel } from './helpers/cli.ts';
import { COLOUR_SIZE, colourSquaresBytes } from './helpers/colour-squares.ts';

const MODEL = 'googlenet-zoo-seeded';
let dir: string;
const file = (name: string) => join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gradcam-robust-out-'));
  await writeFile(file('x.npy'), encodeNpy([1, 3, 224, 224], new Float32Array(3 * 224 * 224)));
  await writeFile(file('colour.onnx'), colourSquaresBytes());
  await writeFile(file('c.npy'), encodeNpy([1, 3, COLOUR_SIZE, COLOUR_SIZE], new Float32Array(3 * COLOUR_SIZE * COLOUR_SIZE)));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** info's JSON document for the model (parsed), from a file. */
async function infoJson(path: string) {
  return JSON.parse(await readFile(path, 'utf8')) as { model: string; onnxOps: Record<string, number> };
}

describe('writeFileAtomic and checkWritable (in process)', () => {
  test('a new file and an existing one: written whole, the existing file keeps its mode, no temporary file left', async () => {
    const sub = join(dir, 'plain');
    await mkdir(sub);
    await writeFileAtomic(join(sub, 'new.txt'), 'one\n');
    expect(await readFile(join(sub, 'new.txt'), 'utf8')).toBe('one\n');
    await writeFile(join(sub, 'old.txt'), 'old');
    await chmod(join(sub, 'old.txt'), 0o640);
    await writeFileAtomic(join(sub, 'old.txt'), 'two\n');
    expect(await readFile(join(sub, 'old.txt'), 'utf8')).toBe('two\n');
    expect((await stat(join(sub, 'old.txt'))).mode & 0o777).toBe(0o640);
    expect(readdirSync(sub).sort()).toEqual(['new.txt', 'old.txt']);
  });

  test('symbolic links are written through: a link to a file, a chain of relative links, a dangling link', async () => {
    const sub = join(dir, 'links');
    await mkdir(sub);
    await writeFile(join(sub, 'target.json'), 'old');
    await symlink('target.json', join(sub, 'link.json'));
    await symlink('link.json', join(sub, 'link2.json'));
    await symlink(join(sub, 'not-yet.json'), join(sub, 'dangling.json'));
    await writeFileAtomic(join(sub, 'link2.json'), 'through two links');
    await writeFileAtomic(join(sub, 'dangling.json'), 'created');
    expect(lstatSync(join(sub, 'link.json')).isSymbolicLink()).toBe(true);
    expect(lstatSync(join(sub, 'link2.json')).isSymbolicLink()).toBe(true);
    expect(await readlink(join(sub, 'link2.json'))).toBe('link.json');
    expect(await readFile(join(sub, 'target.json'), 'utf8')).toBe('through two links');
    expect(lstatSync(join(sub, 'dangling.json')).isSymbolicLink()).toBe(true);
    expect(await readFile(join(sub, 'not-yet.json'), 'utf8')).toBe('created');
    // A loop of links is an error, not a hang.
    await symlink('loop-b', join(sub, 'loop-a'));
    await symlink('loop-a', join(sub, 'loop-b'));
    await expect(writeFileAtomic(join(sub, 'loop-a'), 'x')).rejects.toThrow(/loop-a: cannot write \(too many (levels of )?symbolic links\)/);
  });

  test('a folder, an empty name, a missing folder: refused by checkWritable before any work, with the reason', async () => {
    const refusal = async (p: string) => {
      const err = await checkWritable(p).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(GradcamError);
      return (err as Error).message;
    };
    expect(await refusal(dir)).toBe(`${dir}: cannot write (it is a folder)`);
    expect(await refusal('')).toBe('an empty output file name was given');
    expect(await refusal(join(dir, 'nowhere', 'x.json'))).toBe(`${join(dir, 'nowhere', 'x.json')}: cannot write (no such folder: ${join(dir, 'nowhere')})`);
    await expect(writeFileAtomic('', 'x')).rejects.toThrow('an empty output file name was given');
    await expect(checkWritable('/dev/null')).resolves.toBeUndefined();
  });

  test('makeFolders creates missing levels; under /proc it fails at once instead of looping', async () => {
    await makeFolders(join(dir, 'a', 'b', 'c'));
    expect(statSync(join(dir, 'a', 'b', 'c')).isDirectory()).toBe(true);
    await makeFolders(join(dir, 'a', 'b', 'c')); // there already: fine
    const t0 = Date.now();
    await expect(makeFolders('/proc/nonexistent/a/b')).rejects.toThrow('/proc does not allow new folders');
    expect(Date.now() - t0).toBeLessThan(1000);
    await writeFile(join(dir, 'a-file'), '');
    await expect(makeFolders(join(dir, 'a-file', 'sub'))).rejects.toThrow(`${join(dir, 'a-file')} is not a folder`);
  });
});

describe('the CLI: --json into a FIFO, /dev/null, /dev/stdout, a symbolic link', () => {
  test('a FIFO with a reader gets the JSON and stays a FIFO', async () => {
    const fifo = file('out.fifo');
    execFileSync('mkfifo', [fifo]);
    // The reader opens the FIFO (in libuv's thread pool) and collects what the CLI writes.
    const read = new Promise<string>((resolve, reject) => {
      let text = '';
      createReadStream(fifo, 'utf8').on('data', (d) => (text += d)).on('end', () => resolve(text)).on('error', reject);
    });
    const run = await gradcam(['info', MODEL, '--json', fifo]);
    expectExit(run, 0);
    const doc = JSON.parse(await read);
    expect(doc.onnxOps.Conv).toBe(57);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  test('/dev/null stays a character device (it used to be renamed over, as root)', async () => {
    const before = statSync('/dev/null');
    expect(before.isCharacterDevice()).toBe(true);
    const run = await gradcam(['info', MODEL, '--json', '/dev/null']);
    expectExit(run, 0);
    const after = lstatSync('/dev/null');
    expect(after.isCharacterDevice()).toBe(true);
    expect([after.rdev, after.ino]).toEqual([before.rdev, before.ino]);
    expect(readdirSync('/dev').filter((f) => f.startsWith('.null.'))).toEqual([]);
  });

  test('/dev/stdout is stdout (written through, not replaced), also for classify, which runs in a child process', async () => {
    const info = await gradcam(['info', MODEL, '--json', '/dev/stdout']);
    expectExit(info, 0);
    const text = info.stdout.slice(info.stdout.indexOf('\n{') + 1);
    expect(JSON.parse(text).onnxOps.Conv).toBe(57);
    expect(lstatSync('/dev/stdout').isSymbolicLink()).toBe(true);

    // The GPU child's plumbing is the point, not the model: the tiny one of test/helpers/colour-squares.ts.
    const classify = await gradcam(['classify', file('c.npy'), '--model', file('colour.onnx'), '--json', '/dev/stdout'], 180_000);
    expectExit(classify, 0);
    const [table, json] = [classify.stdout.slice(0, classify.stdout.indexOf('{')), classify.stdout.slice(classify.stdout.indexOf('{'))];
    expect(table).toMatch(/^rank  class  label/);
    expect(JSON.parse(json).logits).toHaveLength(5);
    expect(classify.stderr).not.toContain('{"model"');
  });

  test('a symbolic link to a file is written through and stays a link', async () => {
    await writeFile(file('real.json'), 'old');
    await symlink(file('real.json'), file('link.json'));
    const run = await gradcam(['info', MODEL, '--json', file('link.json')]);
    expectExit(run, 0);
    expect(lstatSync(file('link.json')).isSymbolicLink()).toBe(true);
    expect((await infoJson(file('real.json'))).onnxOps.Conv).toBe(57);
  });
});

describe('the CLI: bad output paths are refused before any work', () => {
  test("an empty name (--json '', --out '', --save-input ''): a usage error", async () => {
    const cases = [
      ['info', MODEL, '--json', ''],
      ['classify', file('x.npy'), '--model', MODEL, '--json', ''],
      ['classify', file('x.npy'), '--model', MODEL, '--save-input', ''],
      ['explain', file('x.npy'), '--model', MODEL, '--out', ''],
      ['explain', file('x.npy'), '--model', MODEL, '--json', ''],
    ];
    for (const [i, run] of (await inParallel(cases, (args) => gradcam(args))).entries()) {
      const args = cases[i];
      expectExit(run, 2);
      const option = args[args.length - 2];
      expect(run.stderr).toMatch(new RegExp(`^gradcam: ${option} takes a file name, got an empty one\nusage: gradcam ${args[0]} `));
      expect(run.stdout).toBe('');
    }
  });

  test('classify: --json and --save-input in a missing folder fail before the GPU starts (no table printed first)', async () => {
    const options = ['--json', '--save-input'];
    const runs = await inParallel(options, (option) => gradcam(['classify', file('x.npy'), '--model', MODEL, option, file(`no-such-folder/${option.slice(2)}.out`)]));
    for (const [i, run] of runs.entries()) {
      const option = options[i];
      expectUserError(run, new RegExp(`^gradcam: .*no-such-folder/${option.slice(2)}\\.out: cannot write \\(no such folder: .*no-such-folder\\)$`));
      expect(run.stderr).not.toContain('SwiftShader');
    }
  });

  test('a folder as --out (explain) or --json (classify, info): refused before the work', async () => {
    const runs = await inParallel([
      ['explain', file('x.npy'), '--model', MODEL, '--out', dir],
      ['classify', file('x.npy'), '--model', MODEL, '--json', dir],
      ['info', MODEL, '--json', dir],
    ], (args) => gradcam(args));
    for (const run of runs) {
      expectUserError(run, new RegExp(`^gradcam: ${dir}: cannot write \\(it is a folder\\)$`));
      expect(run.stderr).not.toContain('SwiftShader');
    }
    expect(existsSync(join(dir, 'x.npy'))).toBe(true);
  });
});
