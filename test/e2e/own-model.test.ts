/**
 * The page with one's own classifier (issue 19, item 5), in headless Chromium on SwiftShader: the
 * model picker's groups, sizes and marks (cached, on this server, too big for this device); a local
 * .onnx file (the generated 10-class ResNet, resnet-finetuned-10: not an inception model) opened
 * with its labels file: the class names, the input, the recipe and its source, the labels' source;
 * a recipe changed in the model card changes the result (and Reset gives the first one back); the
 * layer picker and the strip show the ResNet's stage outputs; the inspector's branch view appears
 * at a residual Add and not at the stem; the smoothing switches (eigen-smooth's map bit for bit the
 * API's, aug-smooth's six-fold pass counts and Stop under it, the note where one does not apply);
 * the Tune button on a tiny model (its plan kept in
 * IndexedDB and taken with no timing after a reload). The page starts with `?model=none`, so no GoogLeNet runs.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelFitsDevice } from '../../src/gradcam/limits.ts';
import type { PageHook } from '../../src/web/hook.ts';
import { encodeOnnx } from '../../src/onnx/write.ts';
import { ensureGeneratedModel } from '../../weights/generate/index.ts';
import type { ManifestModel } from '../../weights/manifest.ts';
import { buildPage, hasChromium, hookOf, launch, waitForRuns, watchErrors, CHROMIUM } from './browser.ts';
import { picturePng } from './pictures.ts';
import { buildModel, ints, node, weight } from '../reference/models.ts';
import { randomTensor, rng } from '../reference/tensor.ts';
import { startServer, type TestServer } from './server.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const MODEL = 'resnet-finetuned-10';
const CIFAR = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
/** resnet-finetuned-10's stage outputs (torch.onnx names): the stem's ReLU, then each layer's last ReLU (after its residual Add). */
const STAGES = ['/relu/Relu_output_0', ...[1, 2, 3, 4].map((i) => `/layer${i}/layer${i}.0/relu_1/Relu_output_0`)];
const manifest = JSON.parse(readFileSync(join(ROOT, 'weights', 'manifest.json'), 'utf8')) as { models: ManifestModel[] };
const entryOf = (name: string) => manifest.models.find((m) => m.name === name)!;

/** A run's class → probability. */
const probabilities = (h: PageHook) => new Map(h.last!.predictions.map((p) => [p.class, p.probability]));

describe.skipIf(!hasChromium)(`the page with one's own model (${CHROMIUM}, WebGPU on SwiftShader)`, () => {
  let out: string;
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let errors: string[];

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'gradcam-e2e-own-'));
    process.env.GRADCAM_CACHE = join(out, 'cache'); // an empty model cache: nothing copied into the build's models/
    const t0 = performance.now();
    await buildPage(ROOT, join(out, 'web'));
    console.log(`e2e own model: vite build ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    server = await startServer(join(out, 'web'));
    // squeezenet1.1-7 "on this server": a body of the manifest's size at models/<name>.onnx (the picker only asks HEAD).
    server.route('/models/squeezenet1.1-7.onnx', { body: new Uint8Array(entryOf('squeezenet1.1-7').bytes!) });
    browser = await launch(true);
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    errors = watchErrors(page);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (out) rmSync(out, { recursive: true, force: true });
  });

  const ready = () => page.waitForFunction(() => (window as unknown as { gradcam?: PageHook }).gradcam?.state === 'ready', undefined, { timeout: 60_000 });

  it('groups the model picker (generated; the zoo by family), with sizes, marks cached and served models and those too big for this device', async () => {
    await page.goto(`${server.origin}/?model=none`);
    await ready();
    // mobilenetv2-12 "cached": an entry at its Cache Storage key (download.ts: its URL with the SHA-256), as a finished download leaves it.
    const mobilenet = entryOf('mobilenetv2-12');
    await page.evaluate(async (e) => {
      const key = new URL(e.url!, location.href);
      key.searchParams.set('gradcam-sha256', e.sha256!);
      await (await caches.open('gradcam-models')).put(key.href, new Response(new Uint8Array(8)));
    }, mobilenet);
    await page.reload();
    await ready();
    expect(await page.textContent('#model-note')).toContain('No model loaded yet');
    const groups = await page.$$eval('#model optgroup', (gs) => gs.map((g) => ({
      label: (g as HTMLOptGroupElement).label,
      options: [...g.querySelectorAll('option')].map((o) => ({ value: o.value, text: o.textContent!, where: o.dataset.where, tooBig: o.dataset.tooBig === 'true' })),
    })));
    const labels = groups.map((g) => g.label);
    expect(labels[0]).toBe('generated (built in this page)');
    for (const family of ['GoogLeNet and Inception', 'ResNet', 'MobileNet', 'SqueezeNet', 'ShuffleNet', 'DenseNet', 'EfficientNet', 'VGG', 'AlexNet and CaffeNet']) {
      expect(labels).toContain(`ONNX Model Zoo: ${family}`);
    }
    const options = groups.flatMap((g) => g.options.map((o) => ({ ...o, group: g.label })));
    // Every manifest model once, in the group of its family.
    expect(options.map((o) => o.value).sort()).toEqual(manifest.models.map((m) => m.name).sort());
    expect(options.find((o) => o.value === 'resnet50-v2-7')!.group).toBe('ONNX Model Zoo: ResNet');
    expect(options.find((o) => o.value === 'caffenet-12')!.group).toBe('ONNX Model Zoo: AlexNet and CaffeNet');
    const { limits } = await hookOf(page);
    for (const m of manifest.models.filter((x) => x.kind === 'onnx-zoo')) {
      const o = options.find((x) => x.value === m.name)!;
      // The size in MB, as the manifest states it; the too-big mark exactly where its largest weight exceeds the device's binding.
      expect(o.text).toContain(`${(m.bytes! / 1e6).toFixed(m.bytes! < 1e7 ? 1 : 0)} MB`);
      expect(o.tooBig, m.name).toBe(modelFitsDevice(m, limits!) !== undefined);
      expect(o.where, m.name).toBe(m.name === 'mobilenetv2-12' ? 'cached' : m.name === 'squeezenet1.1-7' ? 'server' : 'download');
    }
    expect(options.find((o) => o.value === 'mobilenetv2-12')!.text).toContain('✓ cached');
    expect(options.find((o) => o.value === 'squeezenet1.1-7')!.text).toContain('on this server');
    console.log(`e2e own model: device binds ${limits!.maxStorageBufferBindingSize} bytes; too big: ${options.filter((o) => o.tooBig).map((o) => o.value).join(', ') || 'none'}`);
    expect(errors).toEqual([]);
  });

  it(`opens ${MODEL}.onnx with its labels: the class names, the input, the recipe and its source; a changed recipe changes the result`, async () => {
    const bytes = await readFile(await ensureGeneratedModel(MODEL));
    const labels = await readFile(join(ROOT, 'weights', 'labels', `${MODEL}.txt`));
    const runs = (await hookOf(page)).runs;
    await page.setInputFiles('#model-file', [
      { name: `${MODEL}.onnx`, mimeType: 'application/octet-stream', buffer: bytes },
      { name: `${MODEL}.txt`, mimeType: 'text/plain', buffer: labels },
    ]);
    const first = await waitForRuns(page, runs + 1);
    const firstMap = (await hookOf(page, true)).last!.map.raw;
    expect(first.model).toMatchObject({ name: `${MODEL}.onnx`, source: 'file', demo: false });
    // The labels file names the classes: in the predictions, the class picker and the search list.
    expect(first.last!.predictions.length).toBe(5);
    for (const p of first.last!.predictions) expect(p.label).toBe(CIFAR[p.class]);
    const picker = await page.$$eval('#class option', (os) => os.map((o) => o.textContent!));
    expect(picker[0]).toBe(`top prediction (${CIFAR[first.last!.predictions[0].class]})`);
    for (const p of first.last!.predictions) expect(picker.some((t) => t.startsWith(`${CIFAR[p.class]} (`))).toBe(true);
    expect(await page.$$eval('#class-list option', (os) => os.map((o) => (o as HTMLOptionElement).value))).toEqual(CIFAR.map((c, i) => `${c} · ${i}`));
    // The model card: the input as in the file and as run, the recipe guessed (nothing states one) and why, the labels' source.
    expect(first.modelCard).toMatchObject({
      input: { name: 'x', fileShape: [1, 3, 64, 64], shape: [1, 3, 64, 64], layout: 'NCHW', openSize: false },
      recipe: { name: 'imagenet-rgb', source: 'guess' }, labels: `${MODEL}.txt (a labels file)`, classes: 10,
    });
    expect(await page.isVisible('#model-facts')).toBe(false); // (inside the closed <details>)
    await page.click('#model-details summary');
    const facts = await page.textContent('#model-facts');
    expect(facts).toContain('[1, 3, 64, 64] in the file');
    expect(await page.textContent('#recipe-source')).toMatch(/^from a guess: no recipe stated/);
    expect(await page.textContent('#labels-source')).toBe(`${MODEL}.txt (a labels file)`);
    expect(await page.isDisabled('#recipe-size')).toBe(true); // the file fixes 64×64

    // Another recipe (Caffe's BGR, 0–255 minus the means): the same size and layout, swapped in without recompiling.
    await page.selectOption('#recipe-preset', 'caffe-bgr');
    await page.click('#model-apply');
    const caffe = await waitForRuns(page, runs + 2);
    const caffeMap = (await hookOf(page, true)).last!.map.raw;
    expect(caffe.modelCard!.recipe).toMatchObject({ name: 'caffe-bgr', source: 'user', why: 'recipe caffe-bgr' });
    expect(await page.textContent('#recipe-description')).toContain('caffe-bgr (BGR, 0–255');
    const before = probabilities(first), after = probabilities(caffe);
    const shared = [...before.keys()].filter((c) => after.has(c));
    const change = Math.max(...shared.map((c) => Math.abs(before.get(c)! - after.get(c)!)), shared.length < 5 ? 1 : 0);
    expect(change).toBeGreaterThan(1e-3);
    expect(caffeMap.length).toBe(firstMap.length);
    expect(caffeMap).not.toEqual(firstMap);

    // Reset: the guessed recipe again, and the first result again (same input, same kernels: equal up to float32 rounding of a re-run, 1e-6).
    await page.click('#model-reset');
    const again = await waitForRuns(page, runs + 3);
    expect(again.modelCard!.recipe).toMatchObject({ name: 'imagenet-rgb', source: 'guess' });
    expect(again.last!.predictions.map((p) => p.class)).toEqual(first.last!.predictions.map((p) => p.class));
    again.last!.predictions.forEach((p, i) => expect(p.probability).toBeCloseTo(first.last!.predictions[i].probability, 6));
    expect(errors).toEqual([]);
  });

  it('shows the stage outputs in the layer picker and the strip; the branch view at a residual Add only', async () => {
    const groups = await page.$$eval('#layer optgroup', (gs) => gs.map((g) => ({ label: (g as HTMLOptGroupElement).label, values: [...g.querySelectorAll('option')].map((o) => o.value) })));
    expect(groups[0]).toEqual({ label: 'stage outputs', values: STAGES });
    expect(await page.textContent('#show-strip-what')).toBe('every stage output');
    let runs = (await hookOf(page)).runs;
    await page.check('#show-inspector');
    await waitForRuns(page, ++runs);
    await page.check('#show-strip');
    let h = await waitForRuns(page, ++runs);
    expect(h.last!.layers).toEqual(STAGES);
    const tiles = await page.$$eval('#strip [data-layer]', (ts) => ts.map((t) => ({ layer: (t as HTMLElement).dataset.layer, title: t.querySelector('.thumb-title')!.textContent })));
    expect(tiles).toEqual(STAGES.map((layer, i) => ({ layer, title: i === 0 ? 'relu' : `layer${i}.0/relu_1` })));
    expect(await page.textContent('#strip-note')).toContain('5 stages');
    // The automatic layer is layer4's residual Add (+ ReLU): the inspector splits the map between the residual branch and the shortcut.
    expect(h.last!.map.layer).toBe(STAGES[4]);
    expect(h.last!.inspection!.branches!.map((b) => b.kind)).toEqual(['residual', 'identity']);
    expect(await page.$$eval('#inspector-branches tbody td:first-child', (ts) => ts.map((t) => t.textContent))).toEqual(['residual branch', 'shortcut (identity)']);
    // The stem's ReLU has no branches: no branch view, and no branch column in the channel table.
    // (A tile only redraws: its map, with its inspection, is in the result already.)
    await page.click(`#strip [data-layer="${STAGES[0]}"]`);
    await page.waitForFunction((l) => (window as unknown as { gradcam: PageHook }).gradcam.last?.map.layer === l, STAGES[0], { timeout: 10_000 });
    h = await hookOf(page);
    expect(h.runs).toBe(runs);
    expect(h.last!.map.layer).toBe(STAGES[0]);
    expect(h.last!.inspection!.branches).toBeUndefined();
    expect(await page.$('#inspector-branches')).toBeNull();
    expect(await page.$$eval('#inspector-channels th', (ts) => ts.map((t) => (t as HTMLElement).dataset.key))).toEqual(['channel', 'weight', 'contribution']);
    expect(errors).toEqual([]);
  });

  it('profiles the forward kernels; each row links to its kernel\'s WGSL source and generated header, with the formula from the file\'s opening comment', async () => {
    await page.click('#profile');
    await page.waitForSelector('#profile-out table', { timeout: 60_000 });
    const rows = await page.$$eval('#profile-out tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('a.kernel-link')].map((a) => ({ kernel: (a as HTMLElement).dataset.kernel!, part: (a as HTMLElement).dataset.part! }))));
    expect(rows.length).toBeGreaterThan(0);
    for (const links of rows) expect(links.map((l) => l.part)).toEqual(['source', 'header']);
    // Every row's kernel: its file's text is the body shown, its opening comment the formula shown (read here from shaders/ on disk).
    const opening = (text: string) => {
      const lines: string[] = [];
      for (const line of text.split('\n')) {
        if (!/^\s*\/\//.test(line)) break;
        lines.push(line.replace(/^\s*\/\/ ?/, ''));
      }
      return lines.join('\n').trim();
    };
    const seen = new Set<string>();
    for (const [source, header] of rows) {
      if (seen.has(source.kernel)) continue;
      seen.add(source.kernel);
      await page.click(`#profile-out a[data-kernel="${source.kernel}"][data-part="source"]`);
      await page.waitForFunction((k) => document.getElementById('kernel-name')?.textContent === k, source.kernel);
      expect(await page.isVisible('#kernel-view')).toBe(true);
      const heading = await page.textContent('#kernel-view h2');
      const file = /(shaders\/[\w-]+\.wgsl)/.exec(heading!)?.[1];
      expect(file, heading!).toBeDefined();
      const text = readFileSync(join(ROOT, file!), 'utf8');
      expect(await page.textContent('#kernel-body')).toBe(text);
      expect(await page.textContent('#kernel-formula')).toBe(opening(text));
      expect(opening(text).length).toBeGreaterThan(40);
      // The generated header: the Params struct and the bindings, which no body declares itself.
      await page.click(`#profile-out a[data-kernel="${header.kernel}"][data-part="header"]`);
      const generated = await page.textContent('#kernel-header');
      expect(generated).toContain("@group(0) @binding(0) var<uniform> p: Params;");
      expect(generated).toMatch(/@group\(0\) @binding\(1\) var<storage, read(_write)?>/);
      expect(text).not.toContain('var<uniform> p: Params');
    }
    console.log(`e2e own model: profile rows ${rows.length}, kernels shown: ${[...seen].join(', ')}`);
    expect(errors).toEqual([]);
  });

  it('puts the slow methods in their own group with their pass counts; Stop cancels their passes; the grid has them only on request', async () => {
    let runs = (await hookOf(page)).runs;
    await page.uncheck('#show-strip');
    await waitForRuns(page, ++runs);
    await page.uncheck('#show-inspector');
    await waitForRuns(page, ++runs);
    await page.selectOption('#layer', 'auto'); // layer4's output: 64 channels at 2×2
    await waitForRuns(page, ++runs);
    const slow = await page.$$eval('#method optgroup', (gs) => gs.map((g) => ({ label: (g as HTMLOptGroupElement).label,
      options: [...g.querySelectorAll('option')].map((o) => ({ value: o.value, text: o.textContent!, passes: o.dataset.passes })) })));
    expect(slow[0].label).toBe('one forward and backward pass');
    expect(slow[0].options.map((o) => o.value)).toContain('gradcam');
    expect(slow[1].label).toMatch(/^slow: many passes/);
    // 1 + C passes for Score-CAM and Ablation-CAM (METHOD_SPECS), C = 64 here.
    for (const m of ['scorecam', 'ablationcam']) expect(slow[1].options.find((o) => o.value === m)).toEqual({ value: m, text: `${m} — 65 passes`, passes: '65' });
    expect(slow[0].options.some((o) => o.value === 'scorecam')).toBe(false);

    const t0 = Date.now();
    const phase = (what: string) => console.log(`e2e own model: ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // Stop: clicked as soon as the first batch of passes reports progress (the runner checks the signal before each batch).
    await page.evaluate(() => {
      const text = document.getElementById('busy-text')!;
      const seen = new MutationObserver(() => {
        if (/passes/.test(text.textContent ?? '') && / of /.test(text.textContent ?? '')) {
          seen.disconnect();
          (document.getElementById('stop') as HTMLButtonElement).click();
        }
      });
      seen.observe(text, { childList: true, characterData: true, subtree: true });
    });
    const shown = (await hookOf(page)).last!.map.method;
    await page.selectOption('#method', 'scorecam');
    await page.waitForFunction(() => (window as unknown as { gradcam: PageHook }).gradcam.stopped >= 1, undefined, { timeout: 60_000 });
    let h = await hookOf(page);
    expect(h.passes!.done).toBeLessThan(h.passes!.total);
    expect(h.passes!.total).toBe(64); // the passes after the shared first one
    expect(h.runs).toBe(runs);
    expect(h.last!.map.method).toBe(shown); // the last finished result stays in view
    expect(await page.textContent('#notice')).toContain('Stopped');
    expect(await page.isHidden('#stop')).toBe(true);
    expect(h.errors).toEqual([]);

    phase('stopped');
    // Run again (the method picked again; gradcam's result is the one in view, so picking it only redraws): all 64 passes, and the map is scorecam's.
    await page.selectOption('#method', 'gradcam');
    await page.selectOption('#method', 'scorecam');
    h = await waitForRuns(page, ++runs);
    expect(h.last!.map.method).toBe('scorecam');
    expect(h.passes).toEqual({ done: 64, total: 64, method: 'scorecam' });

    phase('scorecam');
    // The grid with its opt-in: the slow methods' passes run too (at least Score-CAM's and Ablation-CAM's 64 + 64); stopped as
    // soon as they report progress (running them all takes long on SwiftShader). Without the opt-in: none of them.
    await page.selectOption('#method', 'gradcam');
    await waitForRuns(page, ++runs);
    expect(await page.textContent('#grid-slow-passes')).toMatch(/^\d+ methods, [\d,]+ passes$/);
    await page.evaluate(() => {
      const text = document.getElementById('busy-text')!;
      const seen = new MutationObserver(() => {
        if (/ of [\d,]+ passes/.test(text.textContent ?? '')) {
          seen.disconnect();
          (document.getElementById('stop') as HTMLButtonElement).click();
        }
      });
      seen.observe(text, { childList: true, characterData: true, subtree: true });
    });
    await page.check('#grid-slow');
    await page.check('#show-grid');
    await page.waitForFunction(() => (window as unknown as { gradcam: PageHook }).gradcam.stopped >= 2, undefined, { timeout: 120_000 });
    h = await hookOf(page);
    expect(h.passes!.total).toBeGreaterThanOrEqual(128);
    expect(h.runs).toBe(runs);
    phase('grid with the slow methods, stopped');
    await page.uncheck('#grid-slow');
    h = await waitForRuns(page, ++runs);
    const fast = h.last!.methods.map((m) => m.method);
    expect(fast).toEqual(expect.arrayContaining(['gradcam', 'hirescam', 'eigencam']));
    expect(fast).not.toContain('scorecam');
    expect(fast).not.toContain('ablationcam');
    expect(await page.$$eval('#grid [data-method]', (ts) => ts.map((t) => (t as HTMLElement).dataset.method))).toEqual(fast);
    phase('grid');
    await page.uncheck('#show-grid');
    await waitForRuns(page, ++runs);
    expect(errors).toEqual([]);
  });

  it('smoothing: eigen-smooth\'s map is the API\'s; aug-smooth shows 6× a slow method\'s passes and Stop works under it; a method it does not apply to is said beside the picker', async () => {
    // A 64×64 picture (the model's size: no resampling) whose PNG has no colour profile: the browser's pixels are the file's.
    const png = await picturePng(64, 64, [{ x: 8, y: 20, w: 30, h: 24, rgb: [200, 60, 30] }]);
    const t0 = Date.now();
    const phase = (what: string) => console.log(`e2e own model: smoothing: ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    let runs = (await hookOf(page)).runs;
    await page.setInputFiles('#image-file', { name: 'smooth.png', mimeType: 'image/png', buffer: png });
    const unsmoothed = (await waitForRuns(page, ++runs).then(() => hookOf(page, true))).last!.map;
    await page.check('#eigen-smooth');
    const eigen = await waitForRuns(page, ++runs).then(() => hookOf(page, true));
    expect(eigen.last!.map).toMatchObject({ method: 'gradcam', layer: STAGES[4], smoothing: { eigen: true } });
    expect(await page.textContent('#caption')).toContain('gradcam, eigen-smooth');
    phase('the picture, then eigen-smooth');
    // The API called directly (window.gradcam.gradCAM: Network.gradCAM on the page's network and picture, past the page's
    // own request-making) with eigenSmooth: the same kernels on the same device and input, so the same numbers, bit for bit.
    // (The same call in Node's Dawn gave the same bits too, max |diff| 0, but loading the model there took ~60 s at load 40.)
    const [api] = await page.evaluate((o) => (window as unknown as { gradcam: PageHook }).gradcam.gradCAM!(o),
      { classes: [eigen.last!.map.class], featureLayers: STAGES[4], methods: ['gradcam' as const], eigenSmooth: true });
    expect(api).toMatchObject({ method: 'gradcam', layer: STAGES[4], smoothing: { eigen: true } });
    expect(eigen.last!.map.raw).toEqual(api.raw);
    expect(eigen.last!.map.raw).not.toEqual(unsmoothed.raw); // (the principal component is not the sum here)
    phase('the API');

    // A method the smoothings do not apply to: said beside the picker before it runs, and its map shown without them.
    // (The method and aug-smooth in one request: one run.)
    await page.evaluate(() => {
      (document.getElementById('aug-smooth') as HTMLInputElement).checked = true;
      (document.getElementById('method') as HTMLSelectElement).value = 'guided-backprop';
      for (const id of ['method', 'aug-smooth']) document.getElementById(id)!.dispatchEvent(new Event('change'));
    });
    expect(await page.textContent('#smooth-note')).toMatch(/^eigen-smooth does not apply to guided-backprop: .*; aug-smooth does not apply to guided-backprop: .*The map is shown without it\.$/);
    const guided = await waitForRuns(page, ++runs);
    expect(guided.last!.map.method).toBe('guided-backprop');
    expect(guided.last!.map.smoothing).toBeUndefined();
    phase('guided-backprop');

    // aug-smooth: the slow methods' pass counts are six times the plain ones (65 and 64 in the test above), before and while they run; Stop works.
    const passes = await page.$eval('#method option[value="scorecam"]', (o) => (o as HTMLOptionElement).dataset.passes);
    expect(passes).toBe(String(6 * 65));
    await page.evaluate(() => {
      const text = document.getElementById('busy-text')!;
      const lines: string[] = ((window as unknown as { smoothLines: string[] }).smoothLines = []);
      const seen = new MutationObserver(() => {
        lines.push(text.textContent ?? '');
        if (/ of [\d,]+ passes/.test(text.textContent ?? '')) {
          seen.disconnect();
          (document.getElementById('stop') as HTMLButtonElement).click();
        }
      });
      seen.observe(text, { childList: true, characterData: true, subtree: true });
    });
    const stopped = (await hookOf(page)).stopped;
    await page.selectOption('#method', 'scorecam');
    expect(await page.isHidden('#smooth-note')).toBe(true); // (scorecam takes both)
    await page.waitForFunction((n) => (window as unknown as { gradcam: PageHook }).gradcam.stopped > n, stopped, { timeout: 60_000 });
    const h = await hookOf(page);
    expect(h.passes!.total).toBe(6 * 64);
    expect(h.passes!.done).toBeLessThan(h.passes!.total);
    const lines = await page.evaluate(() => (window as unknown as { smoothLines: string[] }).smoothLines);
    expect(lines[0]).toContain(`scorecam (${6 * 65} passes)`);
    expect(lines.at(-1)).toMatch(new RegExp(`^scorecam: [\\d,]+ of ${6 * 64} passes`));
    expect(h.runs).toBe(runs);
    phase('scorecam under aug-smooth, stopped');

    // Both off and gradcam again, in one request (one run), for the tests after this one.
    await page.evaluate(() => {
      for (const id of ['aug-smooth', 'eigen-smooth']) (document.getElementById(id) as HTMLInputElement).checked = false;
      const method = document.getElementById('method') as HTMLSelectElement;
      method.value = 'gradcam';
      // (The method first: the run it starts reads the boxes, already off; their own requests then find that result.)
      for (const id of ['method', 'aug-smooth', 'eigen-smooth']) document.getElementById(id)!.dispatchEvent(new Event('change'));
    });
    const plain = await waitForRuns(page, ++runs);
    expect(plain.last!.map.method).toBe('gradcam');
    expect(plain.last!.map.smoothing).toBeUndefined();
    expect(errors).toEqual([]);
  });

  it('refuses a malformed field and a labels file of the wrong length, saying which and why; the model stays as it was', async () => {
    const runs = (await hookOf(page)).runs;
    await page.fill('#recipe-mean', '0.5,0.5');
    await page.click('#model-apply');
    await page.waitForFunction(() => (window as unknown as { gradcam: PageHook }).gradcam.errors.length >= 1);
    expect(await page.textContent('#notice')).toBe("the model card: mean takes three numbers separated by commas (R,G,B), got '0.5,0.5'");
    await page.fill('#recipe-mean', '');
    await page.setInputFiles('#labels-file', { name: 'three.txt', mimeType: 'text/plain', buffer: Buffer.from('a\nb\nc\n') });
    await page.waitForFunction(() => (window as unknown as { gradcam: PageHook }).gradcam.errors.length >= 2);
    expect(await page.textContent('#notice')).toContain('three.txt: 3 class names, but the model has 10 classes');
    let h = await hookOf(page);
    expect(h.runs).toBe(runs);
    expect(h.modelCard!.labels).toBe(`${MODEL}.txt (a labels file)`);
    // A layout the model's input contradicts: refused when compiled, and the model as it was is compiled again and runs.
    await page.selectOption('#recipe-layout', 'NHWC');
    await page.click('#model-apply');
    await page.waitForFunction(() => (window as unknown as { gradcam: PageHook }).gradcam.errors.length >= 3, undefined, { timeout: 60_000 });
    console.log(`e2e own model: NHWC on an NCHW input: ${await page.textContent('#notice')}`);
    h = await hookOf(page);
    expect(h.modelCard!.input.layout).toBe('NCHW');
    await page.evaluate(() => {
      (window as unknown as { gradcam: PageHook }).gradcam.errors.length = 0; // (waitForRuns fails on any error)
    });
    await page.fill('#class-search', 'cat · 3');
    await page.dispatchEvent('#class-search', 'change');
    h = await waitForRuns(page, runs + 1);
    expect(h.last!.map).toMatchObject({ class: 3, label: 'cat' });
  });

  it('Tune kernels (issue 21): times every conv variant of a tiny model with a progress line, keeps the plan in IndexedDB; after a reload the same model takes it with no timing', async () => {
    const seen = errors.length;
    await page.goto(`${server.origin}/?model=none`); // (a page of its own: this test does not need the ones above)
    await ready();
    // A tiny model: two 3×3 convs (+ ReLU) of the same shape, so 2 conv layers and one distinct layer shape to
    // time (tuning times each distinct shape once: 8 measurements, where a conv and a Gemm took 13), opened as a local file.
    const r = rng(21);
    const conv = (x: string, w: string, b: string, out: string) => node('Conv', [x, w, b], [out], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) });
    const onnx = Buffer.from(encodeOnnx(buildModel({
      inputs: { x: [1, 3, 9, 7] },
      outputs: ['logits'],
      weights: [weight('w1', randomTensor([3, 3, 3, 3], r)), weight('b1', randomTensor([3], r, 0, 0.2)), weight('w2', randomTensor([3, 3, 3, 3], r)), weight('b2', randomTensor([3], r, 0, 0.2))],
      nodes: [
        conv('x', 'w1', 'b1', 'c1'), node('Relu', ['c1'], ['a1']), conv('a1', 'w2', 'b2', 'c2'), node('Relu', ['c2'], ['a2']),
        node('GlobalAveragePool', ['a2'], ['g']), node('Flatten', ['g'], ['logits']),
      ],
    })));
    const open = async () => {
      const runs = (await hookOf(page)).runs;
      await page.setInputFiles('#model-file', { name: 'small.onnx', mimeType: 'application/octet-stream', buffer: onnx });
      return waitForRuns(page, runs + 1);
    };
    let h = await open();
    expect(h.tuning).toMatchObject({ source: 'fixed rules', layers: 2, changed: 0, timedSubmissions: 0 });
    expect(await page.textContent('#tune-note')).toMatch(/^Conv kernels: the fixed rules \(2 layers\)/);
    // The veil's lines while tuning runs.
    await page.evaluate(() => {
      const lines: string[] = ((window as unknown as { tuneLines: string[] }).tuneLines = []);
      const text = document.getElementById('busy-text')!;
      new MutationObserver(() => lines.push(text.textContent ?? '')).observe(text, { childList: true, characterData: true, subtree: true });
    });
    const t0 = Date.now();
    await page.click('#tune');
    h = await waitForRuns(page, h.runs + 1);
    console.log(`e2e own model: Tune on the tiny model: ${h.tuning!.measurements} measurements, ${((Date.now() - t0) / 1000).toFixed(1)} s with the run after it`);
    const measured = h.tuning!;
    expect(measured.source).toBe('measured');
    // At least the fixed rules' variant and one other in both directions on the one layer shape; the plan for both layers.
    expect(measured.measurements).toBeGreaterThanOrEqual(4);
    expect(measured.layers).toBe(2);
    expect(measured.timedSubmissions).toBeGreaterThanOrEqual(measured.measurements!);
    expect(h.tuneProgress).toEqual({ done: measured.measurements, total: measured.measurements });
    const lines = await page.evaluate(() => (window as unknown as { tuneLines: string[] }).tuneLines);
    expect(lines.filter((l) => /^tuning: \d+ of \d+ measurements \(/.test(l)).length).toBeGreaterThan(1);
    expect(await page.textContent('#tune-note')).toMatch(/^Conv kernels: tuned now \(\d+ measurements, (GPU timestamps|wall time)\) and kept in this browser's IndexedDB/);
    const stored = () => page.evaluate(() => new Promise<number>((resolve, reject) => {
      const req = indexedDB.open('gradcam-webgpu');
      req.onerror = () => reject(req.error);
      req.onsuccess = () => {
        const count = req.result.transaction('plans').objectStore('plans').count();
        count.onsuccess = () => {
          resolve(count.result);
          req.result.close();
        };
        count.onerror = () => reject(count.error);
      };
    }));
    expect(await stored()).toBe(1);

    // A new page (the timing counter starts at 0 again), the same model: the plan from IndexedDB, nothing timed.
    await page.reload();
    await ready();
    h = await open();
    expect(h.tuning).toEqual({ ...measured, source: 'cache', timedSubmissions: 0, where: measured.where });
    expect(await page.textContent('#tune-note')).toMatch(/^Conv kernels: the tuned plan for this GPU and model, measured .* from this browser's IndexedDB/);
    expect(await stored()).toBe(1);
    expect(errors.slice(seen)).toEqual([]);
  });

  it('recovers from a lost GPU device without a reload: the engine re-created, the same map again', async () => {
    // On the Tune test's page and tiny model (not GoogLeNet, in page.test.ts as it was: the recovery compiles the model
    // again on the new device, which took ~5 s there).
    const seen = errors.length;
    const before = await hookOf(page);
    await page.evaluate(() => {
      (window as unknown as { e2eMark: boolean }).e2eMark = true; // (gone after a reload)
      (window as unknown as { gradcam: PageHook }).gradcam.loseDevice();
    });
    await page.waitForFunction(() => (window as unknown as { gradcam: PageHook }).gradcam.recoveries >= 1, null, { timeout: 120_000 });
    const h = await waitForRuns(page, before.runs + 1);
    expect(await page.textContent('#notice')).toContain('the engine was re-created');
    expect(h.model).toEqual(before.model);
    expect(h.last!.map).toMatchObject({ class: before.last!.map.class, layer: before.last!.map.layer, method: before.last!.map.method });
    expect(await page.evaluate(() => (window as unknown as { e2eMark?: boolean }).e2eMark)).toBe(true); // no reload
    expect(errors.slice(seen)).toEqual([]);
  });
});
