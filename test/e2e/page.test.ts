/**
 * The page (index.html, src/web/) in headless Chromium, WebGPU on SwiftShader: built with Vite,
 * served from 127.0.0.1 by a small server that counts requests.
 *
 * On SwiftShader one Grad-CAM of GoogLeNet takes seconds, so the tests share one page where they
 * can and run few maps. The known-answer model (class 0 = red, 1 = green, 2 = blue) makes the right
 * answer known: the map of a class lies over the patch of its colour.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PageHook } from '../../src/web/hook.ts';
import { encodeOnnx } from '../../src/onnx/write.ts';
import { buildPage, hasChromium, hookOf, launch, waitForRuns, watchErrors, CHROMIUM } from './browser.ts';
import { inside, picturePng, type Rect } from './pictures.ts';
import { startServer, type TestServer } from './server.ts';
import { buildModel, int, ints, node, weight } from '../reference/models.ts';
import { randomTensor, rng } from '../reference/tensor.ts';

const ROOT = join(import.meta.dirname, '..', '..');
/** The README's picture: written when missing or with GRADCAM_UPDATE_SCREENSHOT=1 (`npm run screenshot`), else to test-output/. */
const SCREENSHOT = join(ROOT, 'docs', 'screenshot.png');

/** The centroid of the heat canvas's hottest pixels (jet value ≥ 0.75: red ≥ ½, green ≤ ½, no blue). */
function hotPixels(page: Page): Promise<{ x: number; y: number; count: number; total: number }> {
  return page.evaluate(() => {
    const c = document.getElementById('heat') as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let sx = 0, sy = 0, n = 0;
    for (let i = 0; i < c.width * c.height; i++) {
      if (d[4 * i] >= 120 && d[4 * i + 1] <= 130 && d[4 * i + 2] <= 16) {
        sx += i % c.width;
        sy += Math.floor(i / c.width);
        n++;
      }
    }
    return { x: sx / n, y: sy / n, count: n, total: c.width * c.height };
  });
}

async function setPicture(page: Page, png: Buffer, name: string): Promise<void> {
  await page.setInputFiles('#image-file', { name, mimeType: 'image/png', buffer: png });
}

/** Drops a file on the view, as a person dragging it from the desktop would. */
async function dropFile(page: Page, png: Buffer, name: string): Promise<void> {
  const dataTransfer = await page.evaluateHandle(({ b64, name }) => {
    const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], name, { type: 'image/png' }));
    return dt;
  }, { b64: png.toString('base64'), name });
  await page.dispatchEvent('#view', 'dragover', { dataTransfer });
  await page.dispatchEvent('#view', 'drop', { dataTransfer });
}

describe.skipIf(!hasChromium)(`the page in headless Chromium (${CHROMIUM}, WebGPU on SwiftShader)`, () => {
  let out: string;
  let server: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'gradcam-e2e-'));
    // An empty model cache: a googlenet-12 fetched by the CLI would otherwise be copied into the
    // build's models/ folder and become the page's default model.
    process.env.GRADCAM_CACHE = join(out, 'cache');
    const t0 = performance.now();
    await buildPage(ROOT, join(out, 'web'));
    console.log(`e2e: vite build ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    server = await startServer(join(out, 'web'));
    browser = await launch(true);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (out) rmSync(out, { recursive: true, force: true });
  });

  describe('with the known-answer model (the default without a cached googlenet-12)', () => {
    let page: Page;
    let errors: string[];

    let first: PageHook;

    // The first visit: the page picks the demonstration model by itself and explains the sample photo.
    beforeAll(async () => {
      page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
      errors = watchErrors(page);
      const t0 = Date.now();
      await page.goto(`${server.origin}/`);
      first = await waitForRuns(page, 1);
      const t = first.last!.timings;
      console.log(`e2e: load to first map (known-answer model, sample photo): ${(first.firstMapMs! / 1000).toFixed(1)} s ` +
        `(navigation start → map drawn; ${((Date.now() - t0) / 1000).toFixed(1)} s as the test saw it); that first Grad-CAM ` +
        `${t.totalMs.toFixed(0)} ms with its kernels' compilation (forward ${t.forwardMs.toFixed(0)}, backward ${t.backwardMs.toFixed(0)}, ` +
        `map ${t.camMs.toFixed(0)} ms, ${t.source} timers)`);
    });

    afterAll(async () => {
      await page?.context().close();
    });

    it('loads, explains the sample photo, then puts the map of "red" over the red square of a picture given by the file input', async () => {
      expect(first.model).toEqual({ name: 'googlenet-known-answer', source: 'generated', demo: true });
      expect(first.last!.width).toBe(451); // chelsea.png, the sample photo
      expect(await page.textContent('#model-note')).toContain('class 0 = red, 1 = green, 2 = blue');
      expect(await page.textContent('footer')).toContain('Chelsea the cat');
      expect(await page.isVisible('#no-webgpu')).toBe(false);

      const runs = (await hookOf(page)).runs;
      const square: Rect = { x: 64, y: 256, w: 128, h: 128, rgb: [230, 20, 20] };
      await setPicture(page, await picturePng(448, 448, [square]), 'red-square.png');
      const h = await waitForRuns(page, runs + 1);
      expect(h.last!.width).toBe(448);
      expect(h.last!.predictions[0]).toMatchObject({ class: 0, label: 'red' });
      expect(h.last!.map).toMatchObject({ class: 0, label: 'red', layer: 'inception_5b/output_1', shape: [7, 7] });
      // The hottest feature cell, and the centroid of the hottest overlay pixels, lie on the square.
      expect(inside(h.last!.hot, square), JSON.stringify(h.last!.hot)).toBe(true);
      const hot = await hotPixels(page);
      expect(hot.count).toBeGreaterThan(0);
      expect(inside(hot, square), JSON.stringify(hot)).toBe(true);
      expect(await page.textContent('#predictions')).toContain('red');
      expect(errors).toEqual([]);
    });

    it('changes the map with the class picker (search box) and the layer picker; takes the screenshot', async () => {
      // 640×448: feature cells of 91×64 pixels at 7×7; each patch is at least 1.5 cells on each side,
      // the size for which googlenet-known-answer.ts guarantees the maximum inside the patch.
      const red: Rect = { x: 64, y: 64, w: 160, h: 160, rgb: [230, 20, 20] };
      const blue: Rect = { x: 400, y: 256, w: 160, h: 128, rgb: [20, 40, 230] };
      const green: Rect = { x: 420, y: 48, w: 144, h: 96, rgb: [30, 200, 40] };
      let runs = (await hookOf(page)).runs;
      await dropFile(page, await picturePng(640, 448, [red, blue, green]), 'red-green-blue.png');
      let h = await waitForRuns(page, ++runs);
      expect(h.last!.map.class).toBe(0);
      expect(inside(h.last!.hot, red)).toBe(true);
      const redMap = (await hookOf(page, true)).last!.map.raw;

      // The class picker: search "blue".
      await page.fill('#class-search', 'blue · 2');
      await page.dispatchEvent('#class-search', 'change');
      h = await waitForRuns(page, ++runs);
      expect(h.last!.map).toMatchObject({ class: 2, label: 'blue', shape: [7, 7] });
      expect(inside(h.last!.hot, blue), JSON.stringify(h.last!.hot)).toBe(true);
      expect(inside(await hotPixels(page), blue)).toBe(true);
      const blueMap = (await hookOf(page, true)).last!.map.raw;
      expect(blueMap).not.toEqual(redMap);
      expect(await page.inputValue('#class')).toBe('2');

      // The layer picker: every inception block is offered; inception_4e has a 14×14 map.
      const layers = await page.$$eval('#layer option', (os) => os.map((o) => (o as HTMLOptionElement).value));
      for (const b of ['3a', '3b', '4a', '4b', '4c', '4d', '4e', '5a', '5b']) expect(layers).toContain(`inception_${b}/output_1`);
      await page.selectOption('#layer', 'inception_4e/output_1');
      h = await waitForRuns(page, ++runs);
      expect(h.last!.map).toMatchObject({ class: 2, layer: 'inception_4e/output_1', shape: [14, 14] });
      expect(inside(h.last!.hot, blue, 16), JSON.stringify(h.last!.hot)).toBe(true);

      // Back to the automatic layer and the top class, for the screenshot.
      await page.selectOption('#layer', 'auto');
      await waitForRuns(page, ++runs);
      await page.selectOption('#class', 'top');
      h = await waitForRuns(page, ++runs);
      expect(h.last!.map).toMatchObject({ class: 0, shape: [7, 7] });
      await page.locator('#class-search').blur();
      await page.mouse.move(0, 0);
      const path = !existsSync(SCREENSHOT) || process.env.GRADCAM_UPDATE_SCREENSHOT ? SCREENSHOT : join(ROOT, 'test-output', 'screenshot.png');
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, await page.screenshot({ type: 'png' }));
      console.log(`e2e: screenshot → ${path}`);
      expect(errors).toEqual([]);
    });

    // (The recovery from a lost GPU device is checked in own-model.test.ts, on a small ResNet: recompiling
    // GoogLeNet on the new device cost this file ~5 s, and the recovery does not depend on the model.)
    it('times the forward kernels with the profile button', async () => {
      await page.click('#profile');
      await page.waitForSelector('#profile-out table', { timeout: 120_000 });
      expect(await page.$$eval('#profile-out tbody tr', (rows) => rows.length)).toBe(10);
      expect(errors).toEqual([]);
    });

    it('runs the webcam frame after frame (Chromium\'s fake camera), shows the frame rate, and stops', async () => {
      const before = (await hookOf(page)).runs;
      await page.click('#webcam');
      await waitForRuns(page, before + 3);
      expect(await page.textContent('#fps')).toMatch(/frames\/s/);
      expect((await hookOf(page)).last!.width).toBe(640); // the fake camera's 640×480 frames
      await page.click('#webcam');
      expect(await page.textContent('#webcam')).toBe('Start webcam');
      expect(errors).toEqual([]);
    });
  });

  it('downloads a manifest model once, keeps it in Cache Storage, and uses the cached copy after a reload', async () => {
    // The test's own googlenet-12: a tiny classifier (a 3×3 conv, global average pool, a Gemm to 1000 classes
    // for the ImageNet labels; 0.3 MB) served by the test server under that name, with its real size and hash.
    // The point is the download and the cache, not the model: a GoogLeNet here compiled and ran twice on
    // SwiftShader (18 s), the small ResNet (resnet-ci) compiled its many kernels twice.
    const r = rng(12);
    const bytes = Buffer.from(encodeOnnx(buildModel({
      inputs: { x: [1, 3, 16, 16] },
      outputs: ['logits'],
      weights: [weight('w', randomTensor([64, 3, 3, 3], r)), weight('b', randomTensor([64], r, 0, 0.2)), weight('fc', randomTensor([1000, 64], r)), weight('fcb', randomTensor([1000], r))],
      nodes: [
        node('Conv', ['x', 'w', 'b'], ['c'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }), node('Relu', ['c'], ['a']),
        node('GlobalAveragePool', ['a'], ['g']), node('Flatten', ['g'], ['f']), node('Gemm', ['f', 'fc', 'fcb'], ['logits'], { transB: int(1) }),
      ],
    })));
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const bundled = JSON.parse(await readFile(join(ROOT, 'weights', 'manifest.json'), 'utf8')) as { models: { name: string }[] };
    const entry = {
      name: 'googlenet-12', kind: 'onnx-zoo', description: 'e2e: a tiny classifier served by the test server under a zoo name',
      url: '/e2e/googlenet.onnx', bytes: bytes.length, sha256, recipe: 'caffe-bgr', labels: 'imagenet',
    };
    server.route('/e2e/manifest.json', { body: JSON.stringify({ models: [entry, ...bundled.models.filter((m) => m.name !== entry.name)] }) });
    server.route(entry.url, { body: bytes });

    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(`${server.origin}/?manifest=/e2e/manifest.json&model=googlenet-12`);
    let h = await waitForRuns(page, 1);
    expect(server.hits(entry.url)).toBe(1);
    expect(h.model).toMatchObject({ name: 'googlenet-12', source: 'download' });
    expect(await page.evaluate(async () => (await (await caches.open('gradcam-models')).keys()).length)).toBe(1);

    // A second visit: no ?model, so the page picks googlenet-12 by itself because it is cached.
    await page.goto(`${server.origin}/?manifest=/e2e/manifest.json`);
    h = await waitForRuns(page, 1);
    expect(server.hits(entry.url)).toBe(1);
    expect(h.model).toMatchObject({ name: 'googlenet-12', source: 'cache' });
    expect(h.last!.predictions).toHaveLength(5);
    expect(await page.textContent('#model')).toContain(`googlenet-12 (✓ cached, ${(bytes.length / 1e6).toFixed(1)} MB)`); // (one decimal under 10 MB)
    expect(errors).toEqual([]);
    await context.close();
  });

  it('says which browsers have WebGPU when there is none (no adapter, or no navigator.gpu)', async () => {
    const plain = await launch(false);
    try {
      const page = await plain.newPage();
      await page.goto(`${server.origin}/`);
      await page.waitForFunction(() => (window as unknown as { gradcam?: { state: string } }).gradcam?.state === 'no-webgpu');
      expect((await hookOf(page)).noWebGpuReason).toBe('no-adapter');
      const text = await page.textContent('#no-webgpu');
      for (const s of ['Chrome and Edge 113', 'Safari 26', 'Firefox 141', 'Windows']) expect(text).toContain(s);
      expect(await page.isVisible('#no-webgpu')).toBe(true);
      expect(await page.isVisible('#app')).toBe(false);

      const bare = await plain.newPage();
      await bare.addInitScript(() => delete (Navigator.prototype as { gpu?: unknown }).gpu);
      await bare.goto(`${server.origin}/`);
      await bare.waitForFunction(() => (window as unknown as { gradcam?: { state: string } }).gradcam?.state === 'no-webgpu');
      expect((await hookOf(bare)).noWebGpuReason).toBe('no-api');
      expect(await bare.textContent('#no-webgpu-reason')).toContain('navigator.gpu is missing');
    } finally {
      await plain.close();
    }
  });
});
