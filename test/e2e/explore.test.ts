/**
 * The page's tools for studying a map (issues 12 and 13), in headless Chromium with WebGPU on
 * SwiftShader: the grid of every CAM method with its time and the counterfactual (on the small
 * generated ResNet, resnet-ci, opened as a file: the grid replays each method's kernels alone, the
 * guided and input methods with a backward pass to the input, which took 157 s on GoogLeNet); then,
 * on the page's default model, the known-answer GoogLeNet (class 0 = red, 1 = green, 2 = blue): the
 * layer strip (one map per inception block), the inspector (all C channel weights, the signed map's
 * negative share, the branches, the CAM identity) and the gallery of many pictures (a broken file is
 * an error tile; zip and JSONL downloads). The methods' numbers are checked in
 * test/cam-methods-googlenet.test.ts and test/model-families.test.ts (resnet-ci).
 *
 * SwiftShader runs GoogLeNet in seconds per pass, so the tests share one page and small pictures.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync, strFromU8 } from 'fflate';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMultiPass, METHODS as ALL_METHODS } from '../../src/gradcam/methods.ts';
import type { PageHook } from '../../src/web/hook.ts';
import { ensureGeneratedModel } from '../../weights/generate/index.ts';
import { buildPage, hasChromium, hookOf, launch, waitForRuns, watchErrors, CHROMIUM } from './browser.ts';
import { inside, picturePng, type Rect } from './pictures.ts';
import { startServer, type TestServer } from './server.ts';

/** The grid's methods: every method but the multi-pass ones (many passes each; src/web/main.ts). */
const METHODS = ALL_METHODS.filter((m) => !isMultiPass(m));

const ROOT = join(import.meta.dirname, '..', '..');
/** GoogLeNet's inception blocks: the layer strip has one map for each. */
const BLOCKS = ['3a', '3b', '4a', '4b', '4c', '4d', '4e', '5a', '5b'].map((b) => `inception_${b}/output_1`);
/** resnet-ci's automatic layer: layer4's output (its residual Add + ReLU), 48 channels at 2×2. */
const RESNET_LAST = '/layer4/layer4.0/relu_1/Relu_output_0';

/** Clicks a "Show" checkbox (or another toggle) and waits for the run it asks for. */
async function toggle(page: Page, selector: string, on: boolean): Promise<void> {
  const runs = (await hookOf(page)).runs;
  if (on) await page.check(selector);
  else await page.uncheck(selector);
  await waitForRuns(page, runs + 1);
}

describe.skipIf(!hasChromium)(`the page's grid, strip, inspector and gallery in headless Chromium (${CHROMIUM}, SwiftShader)`, () => {
  let out: string;
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let errors: string[];
  // 224×224 (the model's own size: no resampling to speak of); feature cells of 32 pixels at 7×7.
  const red: Rect = { x: 32, y: 96, w: 96, h: 96, rgb: [230, 20, 20] };

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'gradcam-e2e-explore-'));
    process.env.GRADCAM_CACHE = join(out, 'cache'); // the demonstration model, not a cached googlenet-12
    await buildPage(ROOT, join(out, 'web'));
    server = await startServer(join(out, 'web'));
    server.route('/e2e/red.png', { body: await picturePng(224, 224, [red]) });
    browser = await launch(true);
    page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 }, acceptDownloads: true })).newPage();
    errors = watchErrors(page);
    await page.goto(`${server.origin}/?image=/e2e/red.png`);
    const h = await waitForRuns(page, 1);
    expect(h.last!.map).toMatchObject({ class: 0, method: 'gradcam', counterfactual: false, layer: 'inception_5b/output_1' });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('shows every CAM method side by side, each with its own time, from one call; a tile picks the method; the counterfactual', async () => {
    // Its own page, with resnet-ci (48×48) opened as a file over the red picture: the grid's point is the page, not the model.
    const own = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
    const ownErrors = watchErrors(own);
    try {
      await own.goto(`${server.origin}/?model=none&image=/e2e/red.png`);
      await own.waitForFunction(() => (window as unknown as { gradcam?: PageHook }).gradcam?.state === 'ready', undefined, { timeout: 60_000 });
      const bytes = await readFile(await ensureGeneratedModel('resnet-ci'));
      await own.setInputFiles('#model-file', { name: 'resnet-ci.onnx', mimeType: 'application/octet-stream', buffer: bytes });
      const first = await waitForRuns(own, 1);
      expect(first.model).toMatchObject({ name: 'resnet-ci.onnx', source: 'file' });
      expect(first.last!.map).toMatchObject({ method: 'gradcam', counterfactual: false, layer: RESNET_LAST, shape: [2, 2] });

      // The counterfactual (G := −G) first, so that one grid run shows it: every gradient method's tile says so; Eigen-CAM reads no gradient.
      await toggle(own, '#counterfactual', true);
      expect((await hookOf(own)).last!.map).toMatchObject({ method: 'gradcam', counterfactual: true });
      await toggle(own, '#show-grid', true);
      const h = await hookOf(own, true);
      expect(h.last!.methods.map((m) => m.method)).toEqual(METHODS);
      for (const m of h.last!.methods) expect(m.ms, m.method).toBeGreaterThan(0);
      const tiles = await own.$$eval('#grid .thumb', (ts) => ts.map((t) => ({ method: (t as HTMLElement).dataset.method, text: t.textContent ?? '' })));
      expect(tiles.map((t) => t.method)).toEqual(METHODS);
      for (const t of tiles) expect(t.text, t.method).toMatch(/\d ms/);
      expect(tiles.filter((t) => t.text.includes('counterfactual')).map((t) => t.method)).toEqual(METHODS.filter((m) => m !== 'eigencam'));
      expect(await own.textContent('#grid-note')).toContain('replayed alone');
      expect(await own.textContent('#caption')).toContain('counterfactual');

      // Picking a tile shows that method's map without another run (it is in the result).
      await own.click('#grid .thumb[data-method="layercam"]');
      await own.waitForFunction(() => (window as unknown as { gradcam: { last: { map: { method: string } } } }).gradcam.last.map.method === 'layercam');
      const picked = await hookOf(own, true);
      expect(picked.runs).toBe(h.runs);
      expect(picked.last!.map).toMatchObject({ method: 'layercam', counterfactual: true });
      expect(await own.inputValue('#method')).toBe('layercam');
      expect(await own.textContent('#caption')).toContain('layercam');
      expect(picked.last!.map.raw).not.toEqual(h.last!.map.raw); // (the grid's main map was gradcam's)

      await toggle(own, '#show-grid', false);
      expect(await own.isVisible('#grid-section')).toBe(false);
      // Without the grid, layercam alone: the map its tile showed (the same forward, backward and map kernels on
      // the same input: bitwise the same numbers).
      const alone = await hookOf(own, true);
      expect(alone.last!.methods.map((m) => m.method)).toEqual(['layercam']);
      expect(alone.last!.map).toMatchObject({ method: 'layercam', counterfactual: true });
      expect(alone.last!.map.raw).toEqual(picked.last!.map.raw);
      // Without the counterfactual: another map.
      await toggle(own, '#counterfactual', false);
      const plain = await hookOf(own, true);
      expect(plain.last!.map).toMatchObject({ method: 'layercam', counterfactual: false });
      expect(plain.last!.map.raw).not.toEqual(alone.last!.map.raw);
      expect(await own.textContent('#caption')).not.toContain('counterfactual');
      expect(ownErrors).toEqual([]);
    } finally {
      await own.context().close();
    }
  });

  it('shows the chosen method at every inception block in the layer strip; a tile picks the layer', async () => {
    expect(await page.inputValue('#method')).toBe('gradcam');
    await toggle(page, '#show-strip', true);
    const h = await hookOf(page);
    expect(h.last!.layers).toEqual(BLOCKS);
    expect(h.last!.methods.map((m) => m.method)).toEqual(['gradcam']);
    const tiles = await page.$$eval('#strip .thumb', (ts) => ts.map((t) => (t as HTMLElement).dataset.layer));
    expect(tiles).toEqual(BLOCKS);

    await page.click('#strip .thumb[data-layer="inception_4e/output_1"]');
    await page.waitForFunction(() => (window as unknown as { gradcam: { last: { map: { layer: string } } } }).gradcam.last.map.layer === 'inception_4e/output_1');
    const picked = await hookOf(page);
    expect(picked.runs).toBe(h.runs);
    expect(picked.last!.map.shape).toEqual([14, 14]);
    expect(await page.inputValue('#layer')).toBe('inception_4e/output_1');
    // Back to the automatic layer (inception_5b): in the strip's result too, so no run either.
    await page.selectOption('#layer', 'auto');
    await page.waitForFunction(() => (window as unknown as { gradcam: { last: { map: { layer: string } } } }).gradcam.last.map.layer === 'inception_5b/output_1');
    expect((await hookOf(page)).runs).toBe(h.runs);
    expect(errors).toEqual([]);
    // (The strip is turned off by the next test, in the run that turns the inspector on.)
  });

  it('inspects the map: all C channel weights (sortable), the negative share, the branches, the CAM identity, why a map is zero', async () => {
    // The strip off and the inspector on in one request (one GoogLeNet run): the strip's box is unticked quietly, the
    // inspector's change starts the run, which reads both boxes; the strip's own change then finds that result (a redraw).
    const before = (await hookOf(page)).runs;
    await page.evaluate(() => void ((document.getElementById('show-strip') as HTMLInputElement).checked = false));
    await toggle(page, '#show-inspector', true);
    await page.dispatchEvent('#show-strip', 'change');
    const h = await hookOf(page);
    expect(h.runs).toBe(before + 1);
    expect(h.last!.layers).toEqual(['inception_5b/output_1']);
    expect(await page.isVisible('#strip-section')).toBe(false);
    expect(h.last!.map).toMatchObject({ layer: 'inception_5b/output_1', method: 'gradcam', class: 0, reduction: 'logit' });
    const x = h.last!.inspection!;
    // inception_5b: 384 + 384 + 128 + 128 = 1024 channels, one weight and one table row each.
    expect(x.channels).toBe(1024);
    expect(x.weights).toBe(1024);
    expect(await page.$$eval('#inspector-channels tbody tr', (rows) => rows.length)).toBe(1024);
    expect(x.negativeShare).toBeGreaterThanOrEqual(0);
    expect(x.negativeShare).toBeLessThanOrEqual(1);
    expect(await page.textContent('#inspector-negative-share')).toBe(`negative share ${(100 * x.negativeShare).toFixed(1)} %`);
    expect(await page.textContent('#inspector-diagnosis')).toMatch(/^The map is positive at \d+ of 49 positions/);
    expect(x.branches!.map((b) => b.kind)).toEqual(['1×1', '3×3', '5×5', 'pool proj']);
    expect(x.branches!.map((b) => b.channels)).toEqual([[0, 384], [384, 768], [768, 896], [896, 1024]]);
    expect(await page.$$eval('#inspector-branches tbody tr', (rows) => rows.length)).toBe(4);
    // The CAM identity at inception_5b with the logit score: α_k is the mean over 49 positions of
    // the pooled gradient W[c, k]/49 (each rounded once), so it differs from W[c, k]/49 by the
    // float32 summation of 49 terms: at most 49 + 1 rounding steps of 2⁻²⁴ relative, < 64·2⁻²⁴.
    expect(x.camIdentity!.applies).toBe(true);
    expect(x.camIdentity!.maxAbsDiff!).toBeLessThanOrEqual(64 * 2 ** -24 * x.camIdentity!.scale!);
    expect(await page.textContent('#inspector-cam')).toContain('CAM identity holds here');

    // Sorting: by channel, ascending, then by weight, descending.
    await page.click('#inspector-channels th[data-key="channel"]');
    expect(await page.$$eval('#inspector-channels tbody tr td:first-child', (cs) => cs.slice(0, 3).map((c) => c.textContent))).toEqual(['0', '1', '2']);
    await page.click('#inspector-channels th[data-key="weight"]');
    expect(await page.getAttribute('#inspector-channels th[data-key="weight"]', 'aria-sort')).toBe('descending');

    // Why is my map all zero? "green" on a picture with no green: the diagnosis says why.
    const runs = h.runs;
    await page.fill('#class-search', 'green · 1');
    await page.dispatchEvent('#class-search', 'change');
    const g = await waitForRuns(page, runs + 1);
    expect(g.last!.map).toMatchObject({ class: 1, max: 0 });
    expect(g.last!.inspection!.diagnosis).toMatch(/^The map is all zero because /);
    expect(await page.textContent('#caption')).toContain('zero everywhere');
    // Back to the top class with the inspector off, in one request (one run; as above), for the tests after this one.
    await page.evaluate(() => void ((document.getElementById('show-inspector') as HTMLInputElement).checked = false));
    await page.selectOption('#class', 'top');
    const top = await waitForRuns(page, runs + 2);
    await page.dispatchEvent('#show-inspector', 'change');
    expect(top.last!.map.class).toBe(0);
    expect(top.last!.inspection).toBeUndefined();
    expect(await page.isVisible('#inspector')).toBe(false);
    expect((await hookOf(page)).runs).toBe(runs + 2);
    expect(errors).toEqual([]);
  });

  it('explains three pictures in a gallery (a broken file is an error tile, the rest go on), downloaded as a zip and as JSONL', async () => {
    const blue: Rect = { x: 96, y: 32, w: 96, h: 96, rgb: [20, 40, 230] };
    await page.setInputFiles('#image-file', [
      { name: 'red.png', mimeType: 'image/png', buffer: await picturePng(224, 224, [red]) },
      { name: 'broken.png', mimeType: 'image/png', buffer: Buffer.from('this is not a PNG file') },
      { name: 'blue.png', mimeType: 'image/png', buffer: await picturePng(224, 224, [blue]) },
    ]);
    await page.waitForFunction(() => {
      const g = (window as unknown as { gradcam: { gallery?: { pictures: number; done: number; running: boolean } } }).gradcam.gallery;
      return !!g && g.pictures === 3 && g.done === 3 && !g.running;
    }, null, { timeout: 240_000, polling: 200 });
    expect((await hookOf(page)).gallery).toEqual({ pictures: 3, done: 3, failed: 1, running: false });
    const tiles = await page.$$eval('#gallery .tile', (ts) => ts.map((t) => ({ name: (t as HTMLElement).dataset.name, error: t.classList.contains('error'), text: t.textContent ?? '', canvas: !!t.querySelector('canvas') })));
    expect(tiles.map((t) => [t.name, t.error, t.canvas])).toEqual([['red.png', false, true], ['broken.png', true, false], ['blue.png', false, true]]);
    expect(tiles[0].text).toMatch(/red \d+(\.\d)? %/);
    expect(tiles[2].text).toMatch(/blue \d+(\.\d)? %/);
    for (const t of [tiles[0], tiles[2]]) expect(t.text).toMatch(/\d ms/);
    expect(tiles[1].text).toContain('not a picture the browser can decode');

    // The zip: both overlays (named as the CLI's --out-dir names them) and results.jsonl.
    const [zipped] = await Promise.all([page.waitForEvent('download'), page.click('#gallery-zip')]);
    expect(zipped.suggestedFilename()).toBe('gradcam-gallery.zip');
    const zip = unzipSync(readFileSync(await zipped.path()));
    const pngs = ['red.inception_5b_output_1.class0.gradcam.png', 'blue.inception_5b_output_1.class2.gradcam.png'];
    expect(Object.keys(zip).sort()).toEqual([...pngs, 'results.jsonl'].sort());
    const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
    for (const name of pngs) {
      expect([...zip[name].subarray(0, 8)], name).toEqual(PNG_SIGNATURE);
      // IHDR: the overlay at the picture's size, 224×224.
      const view = new DataView(zip[name].buffer, zip[name].byteOffset);
      expect([view.getUint32(16), view.getUint32(20)], name).toEqual([224, 224]);
    }
    const jsonl = strFromU8(zip['results.jsonl']);
    const lines = jsonl.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    expect(lines.map((l) => l.input)).toEqual(['red.png', 'broken.png', 'blue.png']);
    expect(lines[0].predictions[0]).toMatchObject({ class: 0, label: 'red' });
    expect(lines[0].maps[0]).toMatchObject({ layer: 'inception_5b/output_1', method: 'gradcam', class: 0, shape: [7, 7], overlay: pngs[0] });
    expect(lines[0].maps[0].raw).toHaveLength(49);
    expect(lines[0].timings.totalMs).toBeGreaterThan(0);
    expect(lines[1]).toEqual({ input: 'broken.png', error: expect.stringContaining('broken.png: this file is not a picture') });
    expect(lines[2].predictions[0]).toMatchObject({ class: 2, label: 'blue' });

    // The JSONL alone: the same three lines.
    const [plain] = await Promise.all([page.waitForEvent('download'), page.click('#gallery-jsonl')]);
    expect(plain.suggestedFilename()).toBe('results.jsonl');
    expect(readFileSync(await plain.path(), 'utf8')).toBe(jsonl);
    expect(errors).toEqual([]);
  });

  it('lets a newer request supersede the gallery in progress: a new gallery, then another method; the tiles end with the newest', async () => {
    const green: Rect = { x: 64, y: 64, w: 96, h: 96, rgb: [30, 200, 40] };
    const pictures = async (names: string[], rect: Rect) => Promise.all(names.map(async (name) => ({ name, mimeType: 'image/png', buffer: await picturePng(224, 224, [rect]) })));
    await page.setInputFiles('#image-file', await pictures(['r1.png', 'r2.png', 'r3.png', 'r4.png', 'r5.png'], red));
    // At once, before the first gallery is done: another gallery, then another method for it.
    await page.setInputFiles('#image-file', await pictures(['g1.png', 'g2.png'], green));
    await page.selectOption('#method', 'layercam');
    await page.waitForFunction(() => {
      const g = (window as unknown as { gradcam: { gallery?: { pictures: number; done: number; running: boolean } } }).gradcam.gallery;
      return !!g && g.pictures === 2 && g.done === 2 && !g.running;
    }, null, { timeout: 240_000, polling: 200 });
    const tiles = await page.$$eval('#gallery .tile', (ts) => ts.map((t) => ({ name: (t as HTMLElement).dataset.name, text: t.textContent ?? '' })));
    expect(tiles.map((t) => t.name)).toEqual(['g1.png', 'g2.png']);
    for (const t of tiles) expect(t.text).toMatch(/green \d+(\.\d)? %.*layercam at inception_5b/);
    const [plain] = await Promise.all([page.waitForEvent('download'), page.click('#gallery-jsonl')]);
    const lines = readFileSync(await plain.path(), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.input, l.maps[0].method, l.predictions[0].label])).toEqual([['g1.png', 'layercam', 'green'], ['g2.png', 'layercam', 'green']]);
    // Layer-CAM on the known-answer model: the hottest of the 7×7 cells (32 pixels each) lies on the green square.
    for (const l of lines) {
      const raw = l.maps[0].raw as number[];
      expect(l.maps[0].shape).toEqual([7, 7]);
      const best = raw.indexOf(Math.max(...raw));
      const hot = { x: ((best % 7) + 0.5) * 32, y: (Math.floor(best / 7) + 0.5) * 32 };
      expect(inside(hot, green), `${l.input}: ${JSON.stringify(hot)}`).toBe(true);
    }
    await page.click('#gallery-close');
    expect(await page.isVisible('#gallery-section')).toBe(false);
    expect(errors).toEqual([]);
  });
});
