/**
 * The benchmark page (/bench/ under `npm run dev`): the same harness as `npm run bench`, on
 * navigator.gpu, with onnxruntime-web ('onnxruntime-web/webgpu': its WebGPU EP, and its wasm EP
 * from the same module) as the rivals. ORT loads its .wasm from next to its own module file, which
 * the dev server serves from node_modules (vite.config.ts keeps onnxruntime-web out of dependency
 * pre-bundling and sends the cross-origin isolation headers for /bench/, so the wasm EP can use
 * threads). URL parameters preset the form (?runs=2&only=forward,ort-wasm&profile=1&kernels=1) and
 * `autorun=1` starts at once (used by bench/browser.mjs); `window.benchResult` holds the result.
 * The charts (bench/charts.ts, the same code that draws the HTML report) show under the table, and
 * live while the run goes: Grad-CAM's stages as each case is measured, the kernel lab's per-layer
 * bars and roofline as its rows come in (`window.benchLiveCharts` counts the live redraws).
 */
import * as ort from 'onnxruntime-web/webgpu';
import { describeAdapter, requestGpu, type GpuContext } from '../src/gpu/device.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { chartsHtml, kernelLabHtml, stagesSvg } from './charts.ts';
import { DEFAULT_OPTIONS, runBench, type BenchOptions, type BenchResult } from './harness.ts';
import { renderReport } from './html-report.ts';
import type { OrtModule, OrtProvider } from './ort.ts';
import { formatReport, ratioColumns } from './report.ts';
import { fmtMs } from './stats.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('status');
const log = (line: string) => {
  status.textContent += `${line}\n`;
  status.scrollTop = status.scrollHeight;
  console.log(line);
};

declare global {
  interface Window { benchResult?: BenchResult; benchError?: string; benchReportHtml?: string; benchLiveCharts?: number }
}

async function modelBytes(): Promise<{ name: string; bytes: Uint8Array }> {
  const file = $<HTMLInputElement>('model').files?.[0];
  if (file) return { name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) };
  log('generating googlenet-zoo-seeded (the zoo GoogLeNet topology, seeded weights)…');
  const { googlenetZoo } = await import('../weights/generate/googlenet-zoo.ts');
  return { name: 'googlenet-zoo-seeded.onnx', bytes: encodeOnnx(googlenetZoo(1)) };
}

function readOptions(): BenchOptions {
  const num = (id: string) => Number($<HTMLInputElement>(id).value);
  const only = $<HTMLInputElement>('only').value.split(',').map((s) => s.trim()).filter(Boolean);
  const ortRuns = $<HTMLInputElement>('ort-runs').value;
  return {
    ...DEFAULT_OPTIONS,
    runs: num('runs'), warmup: num('warmup'), loadRuns: num('load-runs'),
    ortRuns: ortRuns ? Number(ortRuns) : undefined,
    only: only.length ? only : null, profile: $<HTMLInputElement>('profile').checked,
    kernels: $<HTMLInputElement>('kernels').checked || only.includes('kernels'),
    // The lab's sizes from the URL only (?kernel-runs=1&gemm-sizes=16,40&peak-sizes=tiny), as the CLI's options.
    ...labOptionsFromUrl(),
  };
}

function labOptionsFromUrl(): Pick<BenchOptions, 'kernelRuns' | 'gemmSizes' | 'peakSizes'> {
  const q = new URLSearchParams(location.search);
  const runs = Number(q.get('kernel-runs'));
  const sizes = q.get('gemm-sizes');
  return {
    ...(Number.isInteger(runs) && runs >= 1 ? { kernelRuns: runs } : {}),
    ...(sizes !== null ? { gemmSizes: sizes === 'none' ? [] : sizes.split(',').map(Number).filter((n) => Number.isInteger(n) && n >= 1) } : {}),
    ...(q.get('peak-sizes') === 'tiny' ? { peakSizes: 'tiny' as const } : {}),
  };
}

function presetFromUrl(): boolean {
  const q = new URLSearchParams(location.search);
  const set = (id: string, key: string) => { if (q.has(key)) $<HTMLInputElement>(id).value = q.get(key)!; };
  set('runs', 'runs'); set('warmup', 'warmup'); set('load-runs', 'load-runs'); set('ort-runs', 'ort-runs'); set('only', 'only');
  if (q.has('profile')) $<HTMLInputElement>('profile').checked = q.get('profile') !== '0';
  if (q.has('ort')) $<HTMLInputElement>('ort').checked = q.get('ort') !== '0';
  if (q.has('kernels')) $<HTMLInputElement>('kernels').checked = q.get('kernels') !== '0';
  return q.get('autorun') === '1';
}

function providers(): OrtProvider[] {
  // Threads need cross-origin isolation (SharedArrayBuffer); set before the first session.
  const threads = globalThis.crossOriginIsolated ? Math.min(2, navigator.hardwareConcurrency || 1) : 1;
  ort.env.wasm.numThreads = threads;
  const module = ort as unknown as OrtModule;
  const build = "onnxruntime-web/webgpu (ort.webgpu.bundle.min.mjs, ort-wasm-simd-threaded.asyncify.wasm)";
  return [
    { name: 'ort-wasm', module, executionProvider: 'wasm', threads, build },
    { name: 'ort-webgpu', module, executionProvider: 'webgpu', threads, build },
  ];
}

function showTable(r: BenchResult): void {
  const ratios = ratioColumns(r);
  const table = $<HTMLTableElement>('table');
  table.innerHTML = '<tr><th>measurement</th><th>runs</th><th>median</th><th>min</th><th>max</th><th>ratio</th></tr>';
  for (const m of r.measurements) {
    const tr = table.insertRow();
    for (const v of [m.name, String(m.runs), fmtMs(m.medianMs), fmtMs(m.minMs), fmtMs(m.maxMs), ratios.get(m.name) ?? '']) tr.insertCell().textContent = v;
    tr.cells[5].className = 'text';
  }
  $('report').textContent = formatReport(r, true);
  $('charts').innerHTML = chartsHtml(r);
  const a = $<HTMLAnchorElement>('download');
  a.href = URL.createObjectURL(new Blob([JSON.stringify(r, null, 1)], { type: 'application/json' }));
  a.download = r.fileName;
  // The static report (the same file `npm run bench` writes next to its JSON), for download.
  window.benchReportHtml = renderReport([{ result: r, source: 'bench page' }]);
  const html = $<HTMLAnchorElement>('download-report');
  html.href = URL.createObjectURL(new Blob([window.benchReportHtml], { type: 'text/html' }));
  html.download = r.fileName.replace(/\.json$/, '.html');
  $('results').hidden = false;
}

async function run(gpu: GpuContext): Promise<void> {
  const button = $<HTMLButtonElement>('run');
  button.disabled = true;
  status.textContent = '';
  $('charts').innerHTML = '';
  try {
    const model = await modelBytes();
    const useOrt = $<HTMLInputElement>('ort').checked;
    // The charts so far, in chartsHtml's order (the kernel lab's, then Grad-CAM's stages), redrawn at most once per frame.
    const live = { lab: '', stages: '' };
    let pending = 0;
    const redraw = () => {
      if (pending) return;
      pending = requestAnimationFrame(() => {
        pending = 0;
        $('charts').innerHTML = [live.lab, live.stages].filter(Boolean).join('\n');
        window.benchLiveCharts = (window.benchLiveCharts ?? 0) + 1;
      });
    };
    const result = await runBench({
      platform: 'browser', gpu, model, ort: useOrt ? providers() : [], log, options: readOptions(),
      versions: { browser: navigator.userAgent },
      machine: () => ({ cores: navigator.hardwareConcurrency, userAgent: navigator.userAgent }),
      // The kernel lab's charts as its rows come in, Grad-CAM's stages as each case is measured.
      onKernels: (lab) => {
        live.lab = kernelLabHtml(lab, gpu.adapter.description || gpu.adapter.architecture);
        redraw();
      },
      onStages: (r) => {
        const svg = stagesSvg(r);
        live.stages = svg && `<section class="stages">${svg}</section>`;
        redraw();
      },
      notes: [
        ...(useOrt && !globalThis.crossOriginIsolated ? ['The page is not cross-origin isolated: ORT wasm runs on 1 thread.'] : []),
        ...(useOrt ? [] : ['onnxruntime-web not measured']),
      ],
    });
    cancelAnimationFrame(pending); // the final charts below, not a late live frame
    window.benchResult = result;
    showTable(result);
    log('done');
  } catch (e) {
    const msg = (e as Error).stack ?? String(e);
    window.benchError = msg;
    log(`failed: ${msg}`);
  } finally {
    button.disabled = false;
  }
}

async function start(): Promise<void> {
  const autorun = presetFromUrl();
  let gpu: GpuContext;
  try {
    gpu = await requestGpu(navigator.gpu);
  } catch (e) {
    $('adapter').innerHTML = `<span class="warn">${(e as Error).message}</span>`;
    window.benchError = (e as Error).message;
    return;
  }
  $('adapter').textContent = `Adapter: ${describeAdapter(gpu.adapter)}${gpu.adapter.isSoftware ? ' (software: absolute times mean little, ratios do)' : ''}; `
    + `timestamps ${gpu.features.timestamps ? 'yes' : 'no'}; cross-origin isolated ${globalThis.crossOriginIsolated ? 'yes' : 'no'}.`;
  const button = $<HTMLButtonElement>('run');
  button.disabled = false;
  $('form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void run(gpu);
  });
  if (autorun) await run(gpu);
}

void start();
