/**
 * Headless Chromium for the end-to-end tests: the system's /usr/bin/chromium (never a downloaded
 * one), WebGPU on SwiftShader (a CPU Vulkan driver, so no GPU is needed), a fake camera, and no
 * network traffic of its own. Also builds the page once per test run.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';
import type { PageHook } from '../../src/web/hook.ts';

export const CHROMIUM = process.env.GRADCAM_CHROMIUM ?? '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);

/** Flags for a machine with no network: no background requests, no updates, no sync. */
const QUIET = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** WebGPU through SwiftShader: navigator.gpu gets an adapter ("google / swiftshader") with these. */
export const WEBGPU = ['--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'];
/** A fake camera (a moving test pattern) that needs no permission prompt. */
const FAKE_CAMERA = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];

export function launch(webgpu: boolean): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: [...(webgpu ? [...WEBGPU, ...FAKE_CAMERA] : []), ...QUIET] });
}

/** Builds the page (vite build) into `outDir`; returns outDir. */
export async function buildPage(root: string, outDir: string): Promise<string> {
  await build({ root, configFile: join(root, 'vite.config.ts'), logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  return outDir;
}

/** window.gradcam, as plain data (without the bulky raw map unless asked). */
export function hookOf(page: Page, withRaw = false): Promise<PageHook> {
  return page.evaluate((raw) => {
    const h = (window as unknown as { gradcam: PageHook }).gradcam;
    const copy = JSON.parse(JSON.stringify(h)) as PageHook;
    if (!raw && copy.last) copy.last.map.raw = [];
    return copy;
  }, withRaw);
}

/** Waits until the page has drawn at least `runs` maps (or has failed). */
export async function waitForRuns(page: Page, runs: number, timeout = 240_000): Promise<PageHook> {
  await page.waitForFunction((n) => {
    const h = (window as unknown as { gradcam?: PageHook }).gradcam;
    return !!h && (h.runs >= n || h.state === 'error' || h.errors.length > 0);
  }, runs, { timeout, polling: 100 });
  const h = await hookOf(page);
  if (h.errors.length || h.state === 'error') throw new Error(`the page failed: ${h.errors.join('; ')}`);
  return h;
}

/**
 * The page looks for `models/<name>.onnx` next to itself before downloading (src/web/download.ts);
 * where there is none, Chromium logs the 404 as a console error. That one is expected.
 */
function isModelProbe404(text: string, url: string): boolean {
  return /^Failed to load resource: .*\b404\b/.test(text) && /\/models\/[^/]+\.onnx$/.test(new URL(url || 'about:blank').pathname);
}

/** Collects the page's console errors and uncaught exceptions (not the 404 of an absent models/<name>.onnx). */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !isModelProbe404(m.text(), m.location().url)) errors.push(`console: ${m.text()}`);
  });
  return errors;
}
