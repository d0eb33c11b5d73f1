#!/usr/bin/env node
// Runs the benchmark page (bench/index.html) in headless Chromium and saves its JSON:
//   node bench/browser.mjs [--runs N] [--only a,b] [--profile] [--kernels] [--ort-runs N] [--warmup N] [--load-runs N]
//                          [--model FILE.onnx] [--headed] [--out DIR] [--timeout S]
// It starts the Vite dev server (as `npm run dev` does), opens /bench/?autorun=1&… and waits for
// the result. Chromium: /usr/bin/chromium (GRADCAM_CHROMIUM overrides) with WebGPU on SwiftShader
// unless --gpu is given (then the browser's own adapter choice). Writes
// bench/results/<date>-<adapter>-browser.json and bench/results/latest-browser.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createServer } from 'vite';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const value = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};

const QUIET = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SWIFTSHADER = ['--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'];
const GPU = ['--enable-unsafe-webgpu', '--enable-features=Vulkan'];

// --model: the page's file input gets the file and Run is pressed (the page cannot read a path).
const modelFile = value('--model', undefined);
const params = new URLSearchParams(modelFile ? {} : { autorun: '1' });
for (const key of ['runs', 'warmup', 'load-runs', 'ort-runs', 'only', 'kernel-runs', 'gemm-sizes', 'peak-sizes']) {
  const v = value(`--${key}`, undefined);
  if (v !== undefined) params.set(key, v);
}
if (flag('--profile')) params.set('profile', '1');
if (flag('--kernels')) params.set('kernels', '1');
if (flag('--no-ort')) params.set('ort', '0');
const timeoutMs = Number(value('--timeout', '7200')) * 1000;
const out = resolve(value('--out', join(root, 'bench', 'results')));

const server = await createServer({ root, configFile: join(root, 'vite.config.ts'), logLevel: 'warn', server: { host: '127.0.0.1', port: 0 } });
await server.listen();
const origin = server.resolvedUrls?.local[0]?.replace(/\/$/, '') ?? `http://127.0.0.1:${server.httpServer.address().port}`;
const browser = await chromium.launch({
  executablePath: process.env.GRADCAM_CHROMIUM ?? '/usr/bin/chromium',
  headless: !flag('--headed'),
  args: [...(flag('--gpu') ? GPU : SWIFTSHADER), ...QUIET],
});
let code = 0;
try {
  const page = await browser.newPage();
  page.on('console', (m) => process.stderr.write(`[page] ${m.text()}\n`));
  page.on('pageerror', (e) => process.stderr.write(`[page error] ${e.message}\n`));
  const url = `${origin}/bench/?${params}`;
  process.stderr.write(`opening ${url}\n`);
  await page.goto(url);
  if (modelFile) {
    await page.setInputFiles('#model', resolve(modelFile));
    await page.click('#run:not([disabled])', { timeout: 120_000 });
  }
  await page.waitForFunction(() => window.benchResult !== undefined || window.benchError !== undefined, undefined, { timeout: timeoutMs, polling: 1000 });
  const error = await page.evaluate(() => window.benchError);
  if (error) throw new Error(`the page failed: ${error}`);
  const result = await page.evaluate(() => window.benchResult);
  const report = await page.evaluate(() => document.getElementById('report')?.textContent ?? '');
  console.log(report);
  mkdirSync(out, { recursive: true });
  const file = join(out, result.fileName.replace(/\.json$/, '-browser.json'));
  const json = `${JSON.stringify(result, null, 1)}\n`;
  writeFileSync(file, json);
  writeFileSync(join(out, 'latest-browser.json'), json);
  process.stderr.write(`wrote ${file} and ${join(out, 'latest-browser.json')}\n`);
  // The page's HTML report (bench/html-report.ts), when the run has charts.
  const charts = await page.evaluate(() => document.querySelectorAll('#charts svg.chart').length);
  process.stderr.write(`the page shows ${charts} charts\n`);
  const html = await page.evaluate(() => window.benchReportHtml);
  if (html && (result.kernels || result.gradcamStages?.length)) {
    writeFileSync(file.replace(/\.json$/, '.html'), html);
    process.stderr.write(`wrote ${file.replace(/\.json$/, '.html')}\n`);
  }
} catch (e) {
  process.stderr.write(`bench/browser.mjs: ${e.stack ?? e}\n`);
  code = 1;
} finally {
  await browser.close();
  await server.close();
}
process.exit(code);
