/**
 * The packed package works for someone who installs it, exactly as they would:
 *   the maintainer's `npm pack` in a copy of the repository's tracked files, as a fresh clone has them
 *   (no dist/: the `prepack` script builds what `exports` and `bin` name; node_modules is this
 *   checkout's, linked), and `npm publish --dry-run` there, which must pack the same files; then the
 *   user's `npm install <tgz>` in an empty folder (the dependencies come from npm's local cache, which
 *   `npm ci` filled: `--prefer-offline`), then
 *   - the `gradcam` bin runs `classify` and `explain` on the default model (the demonstration model,
 *     built on first use) and the sample photo the package ships;
 *   - `import { loadNetwork, gradCAM, readImage } from 'gradcam-webgpu/node'` works from an ES module.
 * The consumer's environment has none of this project's npm settings (npm_config_* variables set by
 * `npm test` are removed) and its own HOME, so nothing leaks in from the checkout.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ROOT } from './helpers/cli.ts';

const work = mkdtempSync(join(tmpdir(), 'gradcam-pack-'));
const app = join(work, 'app');
const clone = join(work, 'clone');
const home = join(work, 'home');

/** The environment of someone who has never seen this checkout. */
function consumerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_|^GRADCAM_|^INIT_CWD$|^VITEST|^NODE_OPTIONS$/.test(k)) env[k] = v;
  }
  // npm's cache stays the machine's (that is where --prefer-offline finds the dependencies).
  return { ...env, HOME: home, XDG_CACHE_HOME: join(home, '.cache'), npm_config_cache: join(process.env.HOME ?? '/root', '.npm') };
}

function run(cmd: string, args: string[], cwd: string, timeout = 180_000) {
  const r = spawnSync(cmd, args, { cwd, env: consumerEnv(), encoding: 'utf8', timeout, killSignal: 'SIGKILL' });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** As `run`, without blocking: for two npm commands side by side. */
function runAsync(cmd: string, args: string[], cwd: string, timeout = 180_000): Promise<ReturnType<typeof run>> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: consumerEnv(), stdio: ['ignore', 'pipe', 'pipe'], timeout, killSignal: 'SIGKILL' });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

function ok(r: ReturnType<typeof run>, what: string) {
  expect(r.signal, `${what} was killed; stderr:\n${r.stderr}`).toBeNull();
  expect(r.code, `${what}: stderr:\n${r.stderr}\nstdout:\n${r.stdout}`).toBe(0);
}

let tarball = '';

/** The files a fresh clone has: git's tracked files (as they are in the work tree), and node_modules linked. */
function freshCopy(to: string): void {
  const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
  for (const f of tracked) if (existsSync(join(ROOT, f))) cpSync(join(ROOT, f), join(to, f), { recursive: false });
  symlinkSync(join(ROOT, 'node_modules'), join(to, 'node_modules'), 'dir');
}

/** The `npm notice` lines of the tarball's contents ("npm notice 1.2kB dist/node.mjs"), as paths. */
const noticedFiles = (stderr: string) => stderr.split('\n').map((l) => /^npm notice [\d.]+[kMG]?B\s+(\S+)$/.exec(l)?.[1]).filter((f): f is string => f !== undefined).sort();

let packed: string[] = [];
/** `npm publish --dry-run` on the fresh copy, its dist/ removed: run beside the user's `npm install`. */
let published: Promise<ReturnType<typeof run>>;

beforeAll(async () => {
  mkdirSync(app);
  mkdirSync(home);
  mkdirSync(clone);
  freshCopy(clone);
  expect(existsSync(join(clone, 'dist'))).toBe(false);
  // The maintainer's command, with the project's .npmrc and no variables of ours.
  const pack = run('npm', ['pack', '--pack-destination', work], clone, 300_000);
  ok(pack, 'npm pack');
  packed = noticedFiles(pack.stderr);
  const tgz = readdirSync(work).filter((f) => f.endsWith('.tgz'));
  expect(tgz).toHaveLength(1);
  tarball = join(work, tgz[0]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // The publish (a second build) and the install (mostly unpacking and linking) side by side.
  rmSync(join(clone, 'dist'), { recursive: true, force: true });
  published = runAsync('npm', ['publish', '--dry-run'], clone, 300_000);
  published.catch(() => undefined); // (a failure is reported by the test that awaits it)
  const install = await runAsync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], app, 300_000);
  await published.catch(() => undefined); // (the work folder is removed only after both)
  ok(install, 'npm install <tgz>');
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

const bin = () => join(app, 'node_modules', '.bin', 'gradcam');
const sample = () => join(app, 'node_modules', 'gradcam-webgpu', 'weights', 'samples', 'chelsea.png');

test('`npm publish --dry-run` on a fresh copy builds and packs the same files as `npm pack`', async () => {
  const pub = await published;
  ok(pub, 'npm publish --dry-run');
  expect(existsSync(join(clone, 'dist', 'gradcam.mjs'))).toBe(true); // built again (dist/ was removed before it)
  expect(packed.length).toBeGreaterThan(0);
  expect(noticedFiles(pub.stderr)).toEqual(packed);
});

test('the tarball holds the built bundles and no test, bench or model file', () => {
  const r = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' });
  const files = r.stdout.split('\n').filter(Boolean);
  for (const f of ['dist/gradcam.mjs', 'dist/index.mjs', 'dist/node.mjs', 'dist/types/src/node.d.ts', 'weights/samples/chelsea.png']) {
    expect(files).toContain(`package/${f}`);
  }
  expect(files.filter((f) => /\.onnx$|^package\/(test|bench)\/|dist\/(bench|web)/.test(f))).toEqual([]);
});

test('the installed `gradcam` classifies and explains with the default model', () => {
  const c = run(bin(), ['classify', sample(), '--top', '3'], app);
  ok(c, 'gradcam classify');
  expect(c.stderr).toMatch(/googlenet-known-answer/); // the default without downloaded weights, said in one line
  expect(c.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(3);

  const e = run(bin(), ['explain', sample(), '--out', 'overlay.png', '--json', 'cam.json'], app);
  ok(e, 'gradcam explain');
  const png = readFileSync(join(app, 'overlay.png'));
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const json = JSON.parse(readFileSync(join(app, 'cam.json'), 'utf8'));
  expect(json.maps.length).toBeGreaterThan(0);
  // Nothing was written inside the installed package (its cache is the user's).
  expect(existsSync(join(app, 'node_modules', 'gradcam-webgpu', 'weights', 'cache'))).toBe(false);
});

test("`import { loadNetwork, gradCAM, readImage } from 'gradcam-webgpu/node'` works", () => {
  writeFileSync(join(app, 'use.mjs'), `
import { gradCAM, loadNetwork, readImage } from 'gradcam-webgpu/node';
const net = await loadNetwork(undefined, { log: () => {} });
const image = await readImage(${JSON.stringify(sample())});
const r = await gradCAM(net, image, { classes: 'top2' });
console.log(JSON.stringify(r.maps.map((m) => ({ layer: m.layer, class: m.class, shape: m.shape, max: m.max }))));
net.destroy();
process.exit(0);
`);
  const r = run(process.execPath, ['use.mjs'], app);
  ok(r, 'node use.mjs');
  const maps = JSON.parse(r.stdout.trim().split('\n').pop()!);
  expect(maps).toHaveLength(2);
  expect(maps[0].shape).toEqual([7, 7]);
  expect(maps[0].max).toBeGreaterThan(0);
});
