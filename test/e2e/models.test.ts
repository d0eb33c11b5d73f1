/**
 * Where the page gets model files: the CLI's model cache served same-origin as `models/<name>.onnx`
 * (scripts/model-files.ts, in Vite's dev and preview servers; copied by `vite build`), then the
 * manifest's `url` and `mirrors`. The page runs under `vite preview` with GRADCAM_CACHE pointing at
 * a temporary folder that holds a generated model under a manifest name; a second server on another
 * port of 127.0.0.1, which sends no CORS headers, stands for a third-party host. No test touches the
 * internet.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { createServer, preview, type PreviewServer, type ViteDevServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyCachedModels } from '../../scripts/model-files.ts';
import type { ManifestModel } from '../../weights/manifest.ts';
import { ensureGeneratedModel } from '../../weights/generate/index.ts';
import { buildPage, hasChromium, hookOf, launch, waitForRuns, watchErrors, CHROMIUM } from './browser.ts';
import { startServer, type TestServer } from './server.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const CONFIG = join(ROOT, 'vite.config.ts');
const SHOTS = join(ROOT, 'test-output');

const bundled = JSON.parse(readFileSync(join(ROOT, 'weights', 'manifest.json'), 'utf8')) as { models: ManifestModel[] };
const generated = bundled.models.filter((m) => m.kind === 'generated');

let tmp: string;
let cacheDir: string;
/** The demonstration model's bytes, served as 'googlenet-12' (its labels make the page's answers readable). */
let model: Uint8Array;
let sha256: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'gradcam-models-'));
  cacheDir = join(tmp, 'cache');
  mkdirSync(cacheDir);
  process.env.GRADCAM_CACHE = cacheDir;
  model = await readFile(await ensureGeneratedModel('googlenet-known-answer'));
  sha256 = createHash('sha256').update(model).digest('hex');
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A manifest entry for the page (`?manifest=`): the demonstration model's bytes under a downloadable name. */
function entry(name: string, url: string, mirrors?: string[]): ManifestModel {
  return {
    ...generated.find((m) => m.name === 'googlenet-known-answer')!,
    name, kind: 'onnx-zoo', description: `e2e: googlenet-known-answer as ${name}`, url, mirrors, bytes: model.length, sha256, command: undefined,
  };
}

const originOf = (s: { httpServer: { address(): unknown } | null }) => `http://127.0.0.1:${(s.httpServer!.address() as AddressInfo).port}`;

describe('scripts/model-files.ts: the CLI model cache as models/<name>.onnx', () => {
  let dev: ViteDevServer;
  let origin: string;

  beforeAll(async () => {
    writeFileSync(join(cacheDir, 'googlenet-12.onnx'), model);
    dev = await createServer({ root: ROOT, configFile: CONFIG, logLevel: 'silent', server: { host: '127.0.0.1', port: 0, hmr: false } });
    await dev.listen();
    origin = originOf(dev);
  });

  afterAll(async () => {
    await dev?.close();
  });

  it('the dev server (npm start) answers GET and HEAD with the cached file and its Content-Length', async () => {
    const res = await fetch(`${origin}/models/googlenet-12.onnx`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(Number(res.headers.get('content-length'))).toBe(model.length);
    expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(model))).toBe(true);

    const head = await fetch(`${origin}/models/googlenet-12.onnx`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBe(model.length);
    expect((await head.arrayBuffer()).byteLength).toBe(0);
  });

  it('serves manifest names only: 404 for a missing file (with the fetch command), generated models, other names and escapes', async () => {
    const missing = await fetch(`${origin}/models/googlenet-9.onnx`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toContain('npm run -s gradcam -- fetch googlenet-9');
    for (const path of ['/models/googlenet-known-answer.onnx', '/models/nope.onnx', '/models/', '/models/googlenet-12.onnx.part',
      '/models/..%2Fpackage.json', '/models/%2e%2e%2f%2e%2e%2fetc%2fpasswd', '/models/googlenet-12.onnx%00']) {
      const res = await fetch(`${origin}${path}`);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type'), path).toMatch(/^text\/plain/);
    }
    expect((await fetch(`${origin}/models/googlenet-12.onnx`, { method: 'POST' })).status).toBe(405);
  });

  it('vite build copies only cached models whose size and SHA-256 match the manifest, and says so', async () => {
    const out = join(tmp, 'copy-out');
    const cache = join(tmp, 'copy-cache');
    mkdirSync(cache);
    writeFileSync(join(cache, 'good.onnx'), model);
    writeFileSync(join(cache, 'bad.onnx'), model.subarray(0, 1000));
    const lines: string[] = [];
    const log = { info: (s: string) => lines.push(`info ${s}`), warn: (s: string) => lines.push(`warn ${s}`) };
    const report = await copyCachedModels(cache, out, log, [entry('good', 'x'), entry('bad', 'x'), entry('absent', 'x'), generated[0]]);
    expect(report.copied).toEqual(['good']);
    expect(readFileSync(join(out, 'models', 'good.onnx')).equals(Buffer.from(model))).toBe(true);
    expect(existsSync(join(out, 'models', 'bad.onnx'))).toBe(false);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^info models: copied .*good\.onnx \(\d+\.\d MB, size and SHA-256 checked\) to .*models\/good\.onnx$/);
    expect(lines[1]).toMatch(/^warn models: .*bad\.onnx is not the manifest's file \(1000 bytes; .*not copied; `npm run -s gradcam -- fetch bad`/);
    expect(lines[2]).toMatch(/^info models: absent is not in .*: the page downloads it when picked; .*`npm run -s gradcam -- fetch absent` before building/);
  });
});

describe.skipIf(!hasChromium)(`the page gets its model same-origin first (${CHROMIUM}, WebGPU on SwiftShader)`, () => {
  let web: string;
  let server: PreviewServer;
  let origin: string;
  /** Another origin (another port), which sends no CORS headers. */
  let foreign: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    web = join(tmp, 'web');
    // Built while the cache holds a model that is not the bundled manifest's googlenet-12: not copied.
    writeFileSync(join(cacheDir, 'googlenet-12.onnx'), model);
    await buildPage(ROOT, web);
    expect(existsSync(join(web, 'models'))).toBe(false);
    server = await preview({ root: ROOT, configFile: CONFIG, logLevel: 'warn', build: { outDir: web }, preview: { host: '127.0.0.1', port: 0, strictPort: true } });
    origin = originOf(server);
    foreign = await startServer(join(tmp, 'nothing'));
    browser = await launch(true);
  });

  afterAll(async () => {
    await browser?.close();
    await foreign?.close();
    await server?.close();
  });

  /** Writes a manifest the page reads with `?manifest=e2e/NAME.json` (from the built folder the preview server serves). */
  function writeManifest(name: string, models: ManifestModel[]): string {
    mkdirSync(join(web, 'e2e'), { recursive: true });
    writeFileSync(join(web, 'e2e', `${name}.json`), JSON.stringify({ models: [...models, ...generated] }));
    return `e2e/${name}.json`;
  }

  async function newPage(): Promise<{ page: Page; errors: string[]; requests: string[] }> {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    const requests: string[] = [];
    page.on('request', (r) => requests.push(`${r.method()} ${r.url()}`));
    return { page, errors: watchErrors(page), requests };
  }

  it('loads googlenet-12 from models/ (the CLI cache behind GRADCAM_CACHE) by itself, then a same-origin mirror, with no cross-origin request', async () => {
    foreign.route('/googlenet-12.onnx', { body: model });
    const manifest = writeManifest('same-origin', [
      entry('googlenet-12', `${foreign.origin}/googlenet-12.onnx`),
      // Not in the cache; its url is missing; its mirror (same-origin too) has it.
      entry('googlenet-9', 'e2e/missing.onnx', ['e2e/googlenet-9.onnx']),
    ]);
    writeFileSync(join(web, 'e2e', 'googlenet-9.onnx'), model);

    const { page, errors, requests } = await newPage();
    // No ?model: the page picks googlenet-12 because this server has it (as after `gradcam fetch` and a reload).
    await page.goto(`${origin}/?manifest=${manifest}`);
    let h = await waitForRuns(page, 1);
    expect(h.model).toEqual({ name: 'googlenet-12', source: 'server', demo: false, url: `${origin}/models/googlenet-12.onnx` });
    expect(h.last!.predictions[0]).toMatchObject({ label: expect.stringMatching(/^(red|green|blue)$/) });
    expect(await page.inputValue('#model')).toBe('googlenet-12');
    expect(await page.textContent('#model-note')).toContain("this server's models/ folder");
    expect(await page.isVisible('#notice')).toBe(false);
    await page.mouse.move(0, 0);
    mkdirSync(SHOTS, { recursive: true });
    writeFileSync(join(SHOTS, 'models-same-origin.png'), await page.screenshot({ type: 'png' }));
    // Kept in Cache Storage like a download.
    expect(await page.evaluate(async () => (await (await caches.open('gradcam-models')).keys()).length)).toBe(1);

    // googlenet-9: models/ (404), then url (404), then the mirror.
    await page.selectOption('#model', 'googlenet-9');
    await page.waitForFunction(() => (window as unknown as { gradcam: { model?: { name: string } } }).gradcam.model?.name === 'googlenet-9', null, { timeout: 240_000 });
    h = await hookOf(page);
    expect(h.model).toMatchObject({ name: 'googlenet-9', source: 'download', url: `${origin}/e2e/googlenet-9.onnx` });
    const gets = requests.filter((r) => /googlenet-9|missing/.test(r) && r.startsWith('GET'));
    expect(gets).toEqual([`GET ${origin}/models/googlenet-9.onnx`, `GET ${origin}/e2e/missing.onnx`, `GET ${origin}/e2e/googlenet-9.onnx`]);

    const crossOrigin = requests.filter((r) => /^[A-Z]+ https?:/.test(r) && new URL(r.split(' ')[1]).origin !== origin);
    expect(crossOrigin).toEqual([]);
    expect(foreign.hits('/googlenet-12.onnx')).toBe(0);
    expect(errors.filter((e) => !/Failed to load resource.*404/.test(e))).toEqual([]); // (e2e/missing.onnx: the 404 the test asked for)
    await page.context().close();
  });

  it('says in one sentence on the page that a cross-origin server without CORS headers refused the download, and what to do; then runs the demonstration model', async () => {
    const name = 'googlenet-9'; // a manifest name that is not in the cache: models/googlenet-9.onnx is a 404
    foreign.route('/googlenet-9.onnx', { body: model });
    foreign.route('/mirror/googlenet-9.onnx', { body: model });
    const manifest = writeManifest('cross-origin', [entry(name, `${foreign.origin}/googlenet-9.onnx`, [`${foreign.origin}/mirror/googlenet-9.onnx`])]);

    const { page, requests } = await newPage();
    const t0 = Date.now();
    await page.goto(`${origin}/?manifest=${manifest}&model=${name}`);
    await page.waitForSelector('#notice[data-kind="error"]:not([hidden])', { timeout: 30_000 });
    const seconds = (Date.now() - t0) / 1000;
    console.log(`e2e: the CORS refusal was on the page ${seconds.toFixed(1)} s after navigation`);
    expect(seconds).toBeLessThan(30);

    const text = (await page.textContent('#notice'))!;
    console.log(`e2e: notice: ${text}`);
    expect(text).toContain(`${name}: ${new URL(foreign.origin).host} did not let this page download it (no CORS headers, or not reachable)`);
    expect(text).toContain(`run npm run -s gradcam -- fetch ${name} and reload`);
    expect(text).toContain('open a local .onnx file with the file picker');
    expect(text.match(/[.!?](\s|$)/g), 'one sentence').toHaveLength(1);
    expect(await page.textContent('#notice code')).toBe(`npm run -s gradcam -- fetch ${name}`);
    // Both the url and the mirror were tried, in that order, after this server's models/.
    const tried = requests.filter((r) => r.startsWith('GET') && r.includes(`${name}.onnx`));
    expect(tried).toEqual([`GET ${origin}/models/${name}.onnx`, `GET ${foreign.origin}/${name}.onnx`, `GET ${foreign.origin}/mirror/${name}.onnx`]);
    expect(foreign.hits(`/${name}.onnx`)).toBe(1);
    expect(foreign.hits(`/mirror/${name}.onnx`)).toBe(1);

    // Not a dead end: the demonstration model takes over, the sentence stays.
    const h = await waitForRuns(page, 1);
    expect(h.model).toMatchObject({ name: 'googlenet-known-answer', source: 'generated' });
    expect(await page.textContent('#notice')).toBe(text);
    expect(await page.isVisible('#progress')).toBe(false);
    await page.mouse.move(0, 0);
    mkdirSync(SHOTS, { recursive: true });
    writeFileSync(join(SHOTS, 'models-cors-refused.png'), await page.screenshot({ type: 'png' }));
    await page.context().close();
  });
});
