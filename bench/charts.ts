/**
 * The bench's pictures as SVG text (no DOM, no script): the kernel lab's per-layer bar chart of
 * the variants, its roofline plot, and Grad-CAM's stages as a stacked bar. One module for both
 * places that draw them: the static HTML report (bench/html-report.ts, written by every bench run
 * with the data and by `npm run bench:report`) and the browser bench page (bench/page.ts, live).
 * Every mark carries a <title> (the browser's tooltip) with its numbers.
 */
import type { BenchResult } from './harness.ts';
import { roofOf, type KernelLab, type KernelRow } from './kernels.ts';

/** Text for SVG and HTML: &, <, >, " escaped. */
export const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const VARIANT_COLOURS: Record<string, string> = {
  'gemm-blocked': '#1f77b4', 'gemm-tiled': '#ff7f0e', winograd: '#2ca02c', im2col: '#d62728', direct: '#9467bd', gather: '#8c564b',
};
const SPARE = ['#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** A variant's colour: the table's six fixed, any other from a spare list by its name. */
export function variantColour(name: string): string {
  if (VARIANT_COLOURS[name]) return VARIANT_COLOURS[name];
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return SPARE[h % SPARE.length];
}

/** Numbers with 3 significant digits, plain (no exponent) in the ranges charts show. */
export function num(x: number): string {
  if (!Number.isFinite(x)) return '—';
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  if (a >= 100) return x.toFixed(1).replace(/\.0$/, '');
  if (a >= 1) return x.toPrecision(3);
  if (a === 0) return '0';
  return x.toPrecision(2);
}

const ms = (x: number) => (x >= 1000 ? `${num(x / 1000)} s` : `${num(x)} ms`);

function legend(names: string[], x: number, y: number): string {
  return names.map((n, i) => `<g transform="translate(${x + i * 130},${y})"><rect width="12" height="12" fill="${variantColour(n)}"/>`
    + `<text x="16" y="10" font-size="11">${esc(n)}</text></g>`).join('');
}

/**
 * Per layer shape, one horizontal bar per variant: GFLOP/s (longer is faster), its time as text;
 * ★ marks what the engine's fixed rules run, a black outline the fastest. One chart per direction.
 */
export function variantBarsSvg(rows: readonly KernelRow[], title: string): string {
  const ok = rows.filter((r) => !r.error);
  if (!rows.length) return '';
  const shapes = [...new Set(rows.map((r) => r.shape))];
  const variants = [...new Set(rows.map((r) => r.variant))];
  const max = Math.max(1e-9, ...ok.map((r) => r.gflopPerS));
  const [labelW, barW, barH, gap, top] = [330, 420, 13, 8, 62];
  let y = top;
  const parts: string[] = [];
  for (const shape of shapes) {
    const group = rows.filter((r) => r.shape === shape);
    const fastest = group.filter((r) => !r.error).reduce<KernelRow | undefined>((a, r) => (!a || r.medianMs < a.medianMs ? r : a), undefined);
    const layers = group[0].layers ?? [];
    const label = `${shape}${layers.length ? `  (${layers[0]}${layers.length > 1 ? ` +${layers.length - 1}` : ''})` : ''}`;
    parts.push(`<text x="0" y="${y + 10}" font-size="10"><title>${esc(`${shape}\nlayers: ${layers.join(', ') || '—'}`)}</title>${esc(label.length > 58 ? `${label.slice(0, 57)}…` : label)}</text>`);
    for (const r of group) {
      const w = r.error ? 0 : Math.max(1, (r.gflopPerS / max) * barW);
      const tip = r.error ? `${r.variant}: ${r.error}` : `${r.variant} ${r.direction}: ${ms(r.medianMs)}, ${num(r.gflopPerS)} GFLOP/s, ${num(r.gbPerS)} GB/s, `
        + `${num(r.ofRoof * 100)} % of the roof${r.fixed ? ' (fixed rules)' : ''}${r === fastest ? ' (fastest)' : ''}\nkernels: ${r.kernels.join(', ')}`;
      parts.push(`<g class="bar" data-variant="${esc(r.variant)}" data-shape="${esc(shape)}" data-gflops="${r.gflopPerS}" data-ms="${r.medianMs}"><title>${esc(tip)}</title>`
        + `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${variantColour(r.variant)}"${r === fastest ? ' stroke="#000" stroke-width="1.5"' : ''}/>`
        + `<text x="${labelW + w + 4}" y="${y + 9}" font-size="10">${r.fixed ? '★ ' : ''}${esc(r.error ? `${r.variant}: failed` : `${r.variant} ${num(r.gflopPerS)} GFLOP/s · ${ms(r.medianMs)}`)}</text></g>`);
      y += barH;
    }
    y += gap;
  }
  const width = labelW + barW + 270;
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart variant-bars" width="${width}" height="${y + 4}" viewBox="0 0 ${width} ${y + 4}" font-family="system-ui, sans-serif">`
    + `<text x="0" y="14" font-size="13" font-weight="600">${esc(title)}</text>`
    + `<text x="0" y="30" font-size="10" fill="#555">GFLOP/s (direct-sum FLOPs; longer is faster, max ${num(max)}); ★ the fixed rules' choice; outlined: fastest</text>`
    + legend(variants, 0, 38)
    + parts.join('') + '</svg>';
}

const log10 = Math.log10;

/**
 * The roofline: arithmetic intensity (FLOP per compulsory byte) against GFLOP/s, both log axes; the
 * roof min(peak GFLOP/s, intensity × peak GB/s) from the measured peaks; each conv layer × variant
 * × direction a circle, each GEMM a square, coloured by variant.
 */
export function rooflineSvg(lab: KernelLab, title = 'Roofline'): string {
  const pts = [...lab.conv, ...lab.gemm].filter((r) => !r.error && r.gflopPerS > 0);
  const roofs = roofOf(lab);
  const pf = roofs.gflopPerS, pb = roofs.gbPerS;
  const ridge = pf / pb;
  const xs = [...pts.map((r) => r.intensity), ridge];
  const ys = [...pts.map((r) => r.gflopPerS), pf];
  const [x0, x1] = [Math.floor(log10(Math.min(...xs) / 2)), Math.ceil(log10(Math.max(...xs) * 2))];
  const [y0, y1] = [Math.floor(log10(Math.min(...ys) / 2)), Math.ceil(log10(Math.max(...ys) * 1.5))];
  const [W, H, L, B, T, R] = [640, 420, 62, 44, 40, 150];
  const px = (v: number) => L + ((log10(v) - x0) / Math.max(1, x1 - x0)) * (W - L - R);
  const py = (v: number) => H - B - ((log10(v) - y0) / Math.max(1, y1 - y0)) * (H - B - T);
  const out: string[] = [];
  for (let e = x0; e <= x1; e++) {
    out.push(`<line x1="${px(10 ** e)}" y1="${T}" x2="${px(10 ** e)}" y2="${H - B}" stroke="#e4e4e4"/><text x="${px(10 ** e)}" y="${H - B + 14}" font-size="10" text-anchor="middle">${num(10 ** e)}</text>`);
  }
  for (let e = y0; e <= y1; e++) {
    out.push(`<line x1="${L}" y1="${py(10 ** e)}" x2="${W - R}" y2="${py(10 ** e)}" stroke="#e4e4e4"/><text x="${L - 4}" y="${py(10 ** e) + 3}" font-size="10" text-anchor="end">${num(10 ** e)}</text>`);
  }
  const xa = 10 ** x0, xb = 10 ** x1;
  const roof = [[xa, Math.min(pf, xa * pb)], ...(ridge > xa && ridge < xb ? [[ridge, pf]] : []), [xb, Math.min(pf, xb * pb)]];
  out.push(`<polyline class="roof" fill="none" stroke="#000" stroke-width="2" points="${roof.map(([a, b]) => `${px(a).toFixed(1)},${py(b).toFixed(1)}`).join(' ')}">`
    + `<title>${esc(`roof: min(${num(pf)} GFLOP/s, intensity × ${num(pb)} GB/s); ridge at ${num(ridge)} FLOP/byte`)}</title></polyline>`);
  out.push(`<text x="${W - R - 4}" y="${py(pf) - 5}" font-size="10" text-anchor="end">${num(pf)} GFLOP/s (${esc(roofs.flopsFrom)})</text>`);
  out.push(`<text x="${px(xa) + 6}" y="${py(Math.min(pf, xa * pb)) - 6}" font-size="10">${num(pb)} GB/s (${esc(roofs.bandwidthFrom)})</text>`);
  for (const r of pts) {
    const [cx, cy] = [px(r.intensity).toFixed(1), py(r.gflopPerS).toFixed(1)];
    const c = variantColour(r.variant);
    const tip = `${r.kind} ${r.shape} ${r.direction} · ${r.variant}${r.fixed ? ' (fixed rules)' : ''}: ${num(r.gflopPerS)} GFLOP/s at ${num(r.intensity)} FLOP/byte, ${num(r.ofRoof * 100)} % of the roof, ${ms(r.medianMs)}`;
    const shape = r.kind === 'gemm'
      ? `<rect x="${Number(cx) - 3}" y="${Number(cy) - 3}" width="6" height="6" fill="none" stroke="${c}" stroke-width="1.3"/>`
      : `<circle cx="${cx}" cy="${cy}" r="${r.fixed ? 4 : 3}" fill="${c}" fill-opacity="0.75"${r.direction === 'backward' ? ` stroke="#000" stroke-width="0.6"` : ''}/>`;
    out.push(`<g class="point" data-kind="${r.kind}" data-variant="${esc(r.variant)}" data-intensity="${r.intensity}" data-gflops="${r.gflopPerS}"><title>${esc(tip)}</title>${shape}</g>`);
  }
  const variants = [...new Set(pts.map((r) => r.variant))];
  out.push(variants.map((v, i) => `<g transform="translate(${W - R + 12},${T + i * 16})"><circle cx="5" cy="5" r="4" fill="${variantColour(v)}"/><text x="14" y="9" font-size="11">${esc(v)}</text></g>`).join(''));
  const ly = T + variants.length * 16 + 8;
  out.push(`<g transform="translate(${W - R + 12},${ly})" font-size="10" fill="#444"><circle cx="5" cy="5" r="3" fill="#999"/><text x="14" y="9">conv forward</text>`
    + `<circle cx="5" cy="21" r="3" fill="#999" stroke="#000" stroke-width="0.6"/><text x="14" y="25">conv backward</text>`
    + `<rect x="2" y="34" width="6" height="6" fill="none" stroke="#999"/><text x="14" y="41">GEMM sweep</text></g>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart roofline" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif">`
    + `<text x="0" y="16" font-size="13" font-weight="600">${esc(title)}</text>`
    + out.join('')
    + `<text x="${(L + W - R) / 2}" y="${H - 8}" font-size="11" text-anchor="middle">arithmetic intensity (FLOP per compulsory byte, log)</text>`
    + `<text x="14" y="${(T + H - B) / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 14 ${(T + H - B) / 2})">GFLOP/s (log)</text></svg>`;
}

export interface StageBar {
  name: string;
  /** Segments in order: forward, backward, CAM, read-back + overhead (ms). */
  segments: { stage: string; ms: number }[];
  source: string;
}

const STAGE_COLOURS: Record<string, string> = { forward: '#4c78a8', backward: '#f58518', CAM: '#54a24b', 'read-back + overhead': '#bab0ac' };

/**
 * Grad-CAM's stages per measured case: forward, backward and CAM from the run's own stage timings
 * (GPU timestamps per stage, or CPU time per submitted stage), and read-back + overhead: the
 * case's wall-time median minus those three (the read-back, mapping and JavaScript around them).
 */
export function stageBars(r: Pick<BenchResult, 'gradcamStages' | 'measurements'>): StageBar[] {
  const med = (n: string) => r.measurements.find((m) => m.name === n)?.medianMs;
  return (r.gradcamStages ?? []).map((g) => {
    const wall = med(g.name);
    const gpu = g.forwardMs + g.backwardMs + g.mapMs;
    return {
      name: g.name, source: g.source,
      segments: [
        { stage: 'forward', ms: g.forwardMs }, { stage: 'backward', ms: g.backwardMs }, { stage: 'CAM', ms: g.mapMs },
        ...(wall !== undefined ? [{ stage: 'read-back + overhead', ms: Math.max(0, wall - gpu) }] : []),
      ],
    };
  });
}

export function stagesSvg(r: Pick<BenchResult, 'gradcamStages' | 'measurements'>, title = "Grad-CAM's stages"): string {
  const bars = stageBars(r);
  if (!bars.length) return '';
  const total = (b: StageBar) => b.segments.reduce((a, s) => a + s.ms, 0);
  const max = Math.max(1e-9, ...bars.map(total));
  const [labelW, barW, barH, top] = [250, 440, 22, 46];
  const parts = bars.map((b, i) => {
    const y = top + i * (barH + 8);
    let x = labelW;
    const segs = b.segments.map((s) => {
      const w = (s.ms / max) * barW;
      const seg = `<g class="stage" data-case="${esc(b.name)}" data-stage="${esc(s.stage)}" data-ms="${s.ms}"><title>${esc(`${b.name}: ${s.stage} ${ms(s.ms)} (${num((s.ms / total(b)) * 100)} %)`)}</title>`
        + `<rect x="${x.toFixed(1)}" y="${y}" width="${Math.max(0, w).toFixed(1)}" height="${barH}" fill="${STAGE_COLOURS[s.stage] ?? '#999'}"/></g>`;
      x += w;
      return seg;
    }).join('');
    return `<text x="0" y="${y + 15}" font-size="11">${esc(b.name)}</text>${segs}<text x="${x + 4}" y="${y + 15}" font-size="10">${ms(total(b))} (${b.source === 'gpu' ? 'GPU stages' : 'CPU stages'})</text>`;
  });
  const h = top + bars.length * (barH + 8) + 4;
  const w = labelW + barW + 150;
  const keys = Object.keys(STAGE_COLOURS).map((k, i) => `<g transform="translate(${labelW + i * 110},22)"><rect width="12" height="12" fill="${STAGE_COLOURS[k]}"/><text x="16" y="10" font-size="11">${esc(k)}</text></g>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart stages" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="system-ui, sans-serif">`
    + `<text x="0" y="14" font-size="13" font-weight="600">${esc(title)}</text>${keys}${parts.join('')}</svg>`;
}

function peaksTable(lab: KernelLab): string {
  const p = lab.peaks;
  return `<table class="peaks"><tr><th>probe</th><th>what</th><th>median</th><th>rate</th></tr>`
    + `<tr><td>bandwidth</td><td>${esc(p.bandwidth.what)}</td><td>${ms(p.bandwidth.medianMs)}</td><td>${num(p.bandwidth.gbPerS)} GB/s</td></tr>`
    + `<tr><td>FMA</td><td>${esc(p.fma.what)}</td><td>${ms(p.fma.medianMs)}</td><td>${num(p.fma.gflopPerS)} GFLOP/s</td></tr></table>`
    + `<p class="note">Roof: ${num(roofOf(lab).gflopPerS)} GFLOP/s (${esc(roofOf(lab).flopsFrom)}), ${num(roofOf(lab).gbPerS)} GB/s (${esc(roofOf(lab).bandwidthFrom)}); ridge point ${num(roofOf(lab).gflopPerS / roofOf(lab).gbPerS)} FLOP/byte. `
    + `Timing: ${lab.timing === 'timestamps' ? 'GPU timestamps around one pass' : 'wall time to a fence (no timestamp-query)'}; median of ${lab.runs} runs after ${lab.warmup} warm-up.</p>`;
}

/** Per direction: for each layer shape, the fastest variant and its speed-up over the fixed rules' choice. */
function winnersTable(rows: readonly KernelRow[]): string {
  const keys = [...new Set(rows.map((r) => `${r.direction}\u0000${r.shape}`))];
  const lines = keys.map((k) => {
    const [direction, shape] = k.split('\u0000');
    const g = rows.filter((r) => r.direction === direction && r.shape === shape && !r.error);
    if (!g.length) return '';
    const best = g.reduce((a, r) => (r.medianMs < a.medianMs ? r : a));
    const fixed = g.find((r) => r.fixed);
    return `<tr><td>${esc(direction)}</td><td>${esc(shape)}</td><td>${esc((g[0].layers ?? []).join(', '))}</td><td>${esc(best.variant)}</td><td>${ms(best.medianMs)}</td>`
      + `<td>${fixed ? `${esc(fixed.variant)} ${ms(fixed.medianMs)}` : '—'}</td><td>${fixed ? `${num(fixed.medianMs / best.medianMs)}×` : '—'}</td><td>${num(best.ofRoof * 100)} %</td></tr>`;
  }).join('');
  return `<table class="winners"><tr><th>direction</th><th>layer shape</th><th>layers</th><th>fastest</th><th>time</th><th>fixed rules</th><th>fixed / fastest</th><th>of roof</th></tr>${lines}</table>`;
}

/** The kernel lab's charts and tables: peaks, the variants per layer shape (forward, data gradient), the roofline, the GEMM sweep, the winners. */
export function kernelLabHtml(lab: KernelLab, adapter: string): string {
  const out = [`<section class="kernel-lab"><h3>Kernel lab</h3>${peaksTable(lab)}`];
  for (const d of ['forward', 'backward'] as const) {
    const rows = lab.conv.filter((x) => x.direction === d);
    if (rows.length) out.push(variantBarsSvg(rows, `Conv variants per layer shape, ${d === 'forward' ? 'forward' : 'data gradient'}`));
  }
  if (lab.conv.length || lab.gemm.length) out.push(rooflineSvg(lab, `Roofline: ${adapter}`));
  if (lab.gemm.length) out.push(variantBarsSvg(lab.gemm, `GEMM sweep (M×N×K), ${lab.gemm.filter((g) => g.source === 'model').length / 2} shapes from the model`));
  if (lab.conv.length) out.push(`<h4>Fastest variant per layer shape</h4>${winnersTable(lab.conv)}`);
  if (lab.notes.length) out.push(`<ul>${lab.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`);
  out.push('</section>');
  return out.join('\n');
}

/** Every chart and table a result has data for, as one HTML fragment: the kernel lab's, then Grad-CAM's stages. */
export function chartsHtml(r: BenchResult): string {
  const out: string[] = [];
  if (r.kernels) out.push(kernelLabHtml(r.kernels, r.adapterSlug));
  const stages = stagesSvg(r);
  if (stages) out.push(`<section class="stages">${stages}</section>`);
  return out.join('\n');
}

/** Whether a result has anything chartsHtml draws (the bench writes a report only then). */
export function hasCharts(r: BenchResult): boolean {
  return !!r.kernels || (r.gradcamStages?.length ?? 0) > 0;
}
