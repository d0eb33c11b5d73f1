/**
 * The bench's HTML report: one static, self-contained file (inline SVG from bench/charts.ts and
 * inline CSS; no script, no network, no server). One run, or several side by side (two devices,
 * or before and after a change: `npm run bench:report -- a.json b.json --out report.html`), with a
 * comparison of what the runs have in common: each measurement's median and its ratio to the first
 * run's, the peaks, and each kernel (shape, direction, variant) by time.
 * The runs' JSON is embedded too (<script type="application/json" id="bench-data">), so the report
 * carries its own data.
 */
import { describeAdapter } from '../src/gpu/device.ts';
import { chartsHtml, esc, num } from './charts.ts';
import type { BenchResult } from './harness.ts';
import type { KernelRow } from './kernels.ts';

export interface ReportRun {
  result: BenchResult;
  /** Where it came from (a file name), shown under the run's title. */
  source?: string;
}

const CSS = `body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem;color:#1b1b1b}
h1{font-size:1.4rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}h3{font-size:1rem}
.runs{display:grid;gap:1.5rem;align-items:start}.run{min-width:0;overflow-x:auto}
table{border-collapse:collapse;margin:.5rem 0;font-variant-numeric:tabular-nums;font-size:12px}
th,td{padding:.15rem .55rem;border-bottom:1px solid #ddd;text-align:right}th:first-child,td:first-child,td.text{text-align:left}
.note,.meta{color:#555;font-size:12px}svg.chart{display:block;margin:.75rem 0;max-width:none}.faster{color:#176317}.slower{color:#8a1c1c}`;

/** A run's title: adapter, model, date. */
export function runTitle(r: BenchResult): string {
  return `${describeAdapter(r.adapter)}${r.adapter.isSoftware ? ' (software)' : ''} · ${r.model.name} · ${r.date.slice(0, 16).replace('T', ' ')}`;
}

function meta(run: ReportRun, i: number): string {
  const r = run.result;
  const load = (l?: number[]) => (l ? l.map((x) => x.toFixed(2)).join(' ') : '—');
  return `<h3>Run ${i + 1}: ${esc(runTitle(r))}</h3><p class="meta">${run.source ? `${esc(run.source)}<br/>` : ''}`
    + `${esc(r.platform)}; ${esc(r.machine.cpuModel ?? r.machine.userAgent ?? '')} × ${r.machine.cores ?? '?'} cores; load ${load(r.machine.loadAverageStart)} → ${load(r.machine.loadAverageEnd)}<br/>`
    + `${esc(Object.entries(r.versions).map(([k, v]) => `${k} ${v}`).join(', '))}; kernels ${esc(r.adapter.kernelVariant ?? '?')}; timestamps ${r.adapter.features.timestamps ? 'yes' : 'no'}</p>`;
}

/** x / base; coloured as faster or slower (for times, lower is faster; for rates, `rate`, higher). */
function ratioCell(x: number | undefined, base: number | undefined, rate = false): string {
  if (x === undefined || base === undefined || base === 0) return '<td>—</td>';
  const q = x / base;
  const better = rate ? q > 1.03 : q < 0.97, worse = rate ? q < 0.97 : q > 1.03;
  return `<td class="${better ? 'faster' : worse ? 'slower' : ''}">${num(q)}×</td>`;
}

/** The side-by-side comparison of two or more runs: medians (time; ratio to run 1), peaks, kernels. */
function comparison(runs: ReportRun[]): string {
  const rs = runs.map((r) => r.result);
  const head = `<tr><th>what</th>${rs.map((_, i) => `<th>run ${i + 1}</th>${i ? `<th>/ run 1</th>` : ''}`).join('')}</tr>`;
  const names = [...new Set(rs.flatMap((r) => r.measurements.map((m) => m.name)))];
  const measRows = names.map((n) => {
    const v = rs.map((r) => r.measurements.find((m) => m.name === n)?.medianMs);
    return `<tr><td>${esc(n)}</td>${v.map((x, i) => `<td>${x === undefined ? '—' : `${num(x)} ms`}</td>${i ? ratioCell(x, v[0]) : ''}`).join('')}</tr>`;
  }).join('');
  const peakRow = (label: string, f: (r: BenchResult) => number | undefined, unit: string) => {
    const v = rs.map(f);
    return `<tr><td>${label}</td>${v.map((x, i) => `<td>${x === undefined ? '—' : `${num(x)} ${unit}`}</td>${i ? ratioCell(x, v[0], true) : ''}`).join('')}</tr>`;
  };
  const peaks = rs.some((r) => r.kernels)
    ? peakRow('peak bandwidth', (r) => r.kernels?.peaks.bandwidth.gbPerS, 'GB/s') + peakRow('peak FMA', (r) => r.kernels?.peaks.fma.gflopPerS, 'GFLOP/s') : '';
  const kernelKey = (k: KernelRow) => `${k.kind} ${k.shape} ${k.direction} ${k.variant}`;
  const keys = [...new Set(rs.flatMap((r) => [...(r.kernels?.conv ?? []), ...(r.kernels?.gemm ?? [])].filter((k) => !k.error).map(kernelKey)))];
  // Only the kernels at least two runs measured (two models share few layer shapes).
  const kernelRows = keys.map((key) => {
    const v = rs.map((r) => [...(r.kernels?.conv ?? []), ...(r.kernels?.gemm ?? [])].find((k) => kernelKey(k) === key && !k.error)?.medianMs);
    if (v.filter((x) => x !== undefined).length < 2) return '';
    return `<tr><td class="text">${esc(key)}</td>${v.map((x, i) => `<td>${x === undefined ? '—' : `${num(x)} ms`}</td>${i ? ratioCell(x, v[0]) : ''}`).join('')}</tr>`;
  }).join('');
  return `<h2>Comparison (medians; ratio &lt; 1: faster than run 1)</h2><table class="compare">${head}${measRows}${peaks}</table>`
    + (kernelRows ? `<h3>Kernels, each alone</h3><table class="compare-kernels">${head}${kernelRows}</table>` : '');
}

/** The whole report: one run, or several side by side with their comparison. */
export function renderReport(runs: ReportRun[], title = 'gradcam-webgpu bench report'): string {
  if (!runs.length) throw new Error('renderReport: no runs');
  // < and & as JSON escapes: the script element's text can neither close it nor start an entity.
  const data = JSON.stringify(runs.map((r) => ({ source: r.source, result: r.result }))).replace(/</g, '\\u003c').replace(/&/g, '\\u0026');
  const columns = `grid-template-columns:repeat(${runs.length},minmax(0,1fr))`;
  // Well-formed XML as well as HTML (void elements closed, DOCTYPE upper case): any XML parser reads it.
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"/><meta name="viewport" content="width=device-width, initial-scale=1"/>
<title>${esc(title)}</title><style>${CSS}</style></head>
<body>
<h1>${esc(title)}</h1>
<p class="meta">${runs.length === 1 ? '1 run' : `${runs.length} runs side by side`}; written ${esc(new Date().toISOString())}. Software adapters' absolute times mean little: compare ratios within a run. Hover a mark for its numbers.</p>
${runs.length > 1 ? comparison(runs) : ''}
<div class="runs" style="${columns}">
${runs.map((run, i) => `<div class="run">${meta(run, i)}\n${chartsHtml(run.result) || '<p class="note">No kernel lab and no Grad-CAM stages in this run.</p>'}</div>`).join('\n')}
</div>
<script type="application/json" id="bench-data">${data}</script>
</body></html>
`;
}
