/**
 * The browser bench page (bench/index.html, bench/page.ts; issue 21 item 4) in headless Chromium on
 * SwiftShader, served by Vite's dev server as `npm run dev` serves it: Grad-CAM's stages are drawn
 * live, as soon as their case is measured and while the run goes on, by the same code as the HTML report (bench/charts.ts); at the end the charts hold the
 * result's numbers. The small test model (4 conv layers), two runs per measurement, no onnxruntime:
 * the kernel lab's live charts come through the same redraw (bench-kernels checks its rows, the
 * report its pictures) and are left out here for time.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';
import type { BenchResult } from '../bench/harness.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { hasChromium, launch } from './e2e/browser.ts';
import { ROOT } from './helpers/cli.ts';
import { smallModel } from './helpers/small-model.ts';

declare global {
  interface Window { benchResult?: BenchResult; benchError?: string; benchLiveCharts?: number; liveCharts?: { stages: string[]; finished: boolean }[] }
}

describe.skipIf(!hasChromium)('the bench page', () => {
  let server: ViteDevServer;
  let browser: Browser;

  beforeAll(async () => {
    server = await createServer({ root: ROOT, configFile: join(ROOT, 'vite.config.ts'), logLevel: 'warn', server: { host: '127.0.0.1', port: 0 } });
    await server.listen();
    browser = await launch(true);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  test("draws Grad-CAM's stages live, while the run goes on, and the result's numbers at the end", async () => {
    const t0 = performance.now();
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const origin = server.resolvedUrls!.local[0].replace(/\/$/, '');
    // gradcam: the 'auto' case (GoogLeNet's layers are skipped on this model); guided: measured after it, so the run goes on.
    await page.goto(`${origin}/bench/?runs=2&warmup=0&only=gradcam,guided&ort=0`);
    await page.waitForSelector('#run:not([disabled])', { timeout: 60_000 });
    // Every redraw of the charts: the stage marks shown, and whether the run had finished by then.
    await page.evaluate(() => {
      const snapshots: { stages: string[]; finished: boolean }[] = (window.liveCharts = []);
      const charts = document.getElementById('charts')!;
      new MutationObserver(() => snapshots.push({
        stages: [...charts.querySelectorAll('g.stage')].map((g) => `${(g as SVGElement).dataset.case} ${(g as SVGElement).dataset.stage}`),
        finished: window.benchResult !== undefined,
      })).observe(charts, { childList: true });
    });
    await page.setInputFiles('#model', { name: 'small.onnx', mimeType: 'application/octet-stream', buffer: Buffer.from(encodeOnnx(smallModel(5, 'flatten'))) });
    await page.click('#run');
    await page.waitForFunction(() => window.benchResult !== undefined || window.benchError !== undefined, undefined, { timeout: 120_000, polling: 200 });
    expect(await page.evaluate(() => window.benchError)).toBeUndefined();
    const result = (await page.evaluate(() => window.benchResult))!;
    const snapshots = (await page.evaluate(() => window.liveCharts))!;
    const stages = ['forward', 'backward', 'CAM', 'read-back + overhead'].map((s) => `gradcam.auto.k1 ${s}`);
    // Live: the stacked bar drawn while the run went on (before its result), with its four segments.
    expect(await page.evaluate(() => window.benchLiveCharts)).toBeGreaterThanOrEqual(1);
    expect(snapshots.some((s) => !s.finished && JSON.stringify(s.stages) === JSON.stringify(stages)), JSON.stringify(snapshots)).toBe(true);
    expect(result.measurements.map((m) => m.name)).toEqual(expect.arrayContaining(['gradcam.auto.k1', 'guided.k1']));
    // At the end: the same chart, its segments the result's stage medians.
    const g = result.gradcamStages.find((x) => x.name === 'gradcam.auto.k1')!;
    const shown = await page.$$eval('#charts g.stage', (gs) => gs.map((x) => [(x as SVGElement).dataset.stage, Number((x as SVGElement).dataset.ms)] as const));
    expect(Object.fromEntries(shown.slice(0, 3))).toEqual({ forward: g.forwardMs, backward: g.backwardMs, CAM: g.mapMs });
    expect(errors).toEqual([]);
    console.log(`bench page: ${snapshots.length} redraws of the charts, ${((performance.now() - t0) / 1000).toFixed(1)} s from opening the page`);
    await page.close();
  });
});
