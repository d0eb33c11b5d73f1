/**
 * The bench's HTML report (bench/charts.ts, bench/html-report.ts, bench/report-cli.ts; issue 21
 * item 4) on two small result JSONs from real runs (test/fixtures/bench/: the kernel lab and a
 * Grad-CAM on a 3-conv model on SwiftShader, one with the CPU family's fixed rules, one with the
 * GPU family's, GRADCAM_KERNELS=gpu, standing in for a second device). No GPU here: the report is
 * text. Checks that the page is well-formed (the report is XML as well as HTML, so an XML parser
 * reads it strictly), that every chart's marks carry the fixture's numbers, that the roofline's
 * axes are logarithmic and the roof is the measured peaks, and that comparing two files is one
 * command that writes one page with both runs and their ratios.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SaxesParser } from 'saxes';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { num, rooflineSvg, stageBars } from '../bench/charts.ts';
import type { BenchResult } from '../bench/harness.ts';
import { roofOf } from '../bench/kernels.ts';
import { renderReport } from '../bench/html-report.ts';
import { ROOT } from './helpers/cli.ts';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'bench');
const load = (name: string): BenchResult => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8'));

interface Element { name: string; attributes: Record<string, string>; text: string; children: Element[] }

/** Parses `xml` strictly (throws on anything malformed) into a tree of elements with their direct text. */
function parseXml(xml: string): Element {
  const parser = new SaxesParser();
  const root: Element = { name: '#root', attributes: {}, text: '', children: [] };
  const stack = [root];
  parser.on('error', (e) => { throw e; });
  parser.on('opentag', (t) => {
    const el: Element = { name: t.name, attributes: t.attributes as Record<string, string>, text: '', children: [] };
    stack[stack.length - 1].children.push(el);
    stack.push(el);
  });
  parser.on('text', (t) => { stack[stack.length - 1].text += t; });
  parser.on('closetag', () => { stack.pop(); });
  parser.write(xml).close();
  return root.children[0];
}

function all(el: Element, pred: (e: Element) => boolean, out: Element[] = []): Element[] {
  if (pred(el)) out.push(el);
  for (const c of el.children) all(c, pred, out);
  return out;
}
const byClass = (root: Element, name: string, cls: string) => all(root, (e) => e.name === name && (e.attributes.class ?? '').split(' ').includes(cls));

describe('the HTML report', () => {
  const cpu = load('cpu.json');
  const gpu = load('gpu-family.json');

  test('one run: well-formed, self-contained, every chart carries the run\'s numbers', () => {
    const html = renderReport([{ result: cpu, source: 'cpu.json' }]);
    const doc = parseXml(html.replace(/^<!DOCTYPE html>\n/, ''));
    expect(doc.name).toBe('html');
    // Nothing fetched: no src or href attributes, no external script.
    expect(all(doc, (e) => 'src' in e.attributes || 'href' in e.attributes)).toEqual([]);
    // The data itself, embedded.
    const data = JSON.parse(all(doc, (e) => e.attributes.id === 'bench-data')[0].text);
    expect(data[0].result).toEqual(cpu);

    const lab = cpu.kernels!;
    // Bars: one per conv row (forward and data gradient charts) and per GEMM row, with their numbers.
    const bars = all(doc, (e) => e.name === 'g' && e.attributes.class === 'bar');
    expect(bars.length).toBe(lab.conv.length + lab.gemm.length);
    for (const r of lab.conv) {
      const b = bars.find((x) => x.attributes['data-shape'] === r.shape && x.attributes['data-variant'] === r.variant && Number(x.attributes['data-ms']) === r.medianMs);
      expect(b, `${r.shape} ${r.direction} ${r.variant}`).toBeDefined();
      expect(Number(b!.attributes['data-gflops'])).toBe(r.gflopPerS);
    }
    // Roofline: a point per row that ran, at its intensity and rate.
    const points = all(doc, (e) => e.name === 'g' && e.attributes.class === 'point');
    expect(points.length).toBe([...lab.conv, ...lab.gemm].filter((r) => !r.error && r.gflopPerS > 0).length);
    // Stages: forward, backward, CAM and the rest of the wall time for each Grad-CAM case.
    const stages = all(doc, (e) => e.name === 'g' && e.attributes.class === 'stage');
    expect(stages.map((s) => s.attributes['data-stage'])).toEqual(cpu.gradcamStages.flatMap(() => ['forward', 'backward', 'CAM', 'read-back + overhead']));
    const g = cpu.gradcamStages[0];
    const wall = cpu.measurements.find((m) => m.name === g.name)!.medianMs;
    expect(stages.map((s) => Number(s.attributes['data-ms']))).toEqual([g.forwardMs, g.backwardMs, g.mapMs, Math.max(0, wall - g.forwardMs - g.backwardMs - g.mapMs)]);
    // The peaks table and the winners table.
    expect(byClass(doc, 'table', 'peaks')[0].children.length).toBe(3);
    expect(byClass(doc, 'table', 'winners')[0].children.length).toBe(1 + new Set(lab.conv.map((r) => `${r.shape} ${r.direction}`)).size);
  });

  test('the roofline: log axes, the roof from the measured peaks, points where their numbers put them', () => {
    const lab = cpu.kernels!;
    const svg = parseXml(rooflineSvg(lab));
    const points = all(svg, (e) => e.name === 'g' && e.attributes.class === 'point');
    const pos = points.map((p) => {
      const c = p.children.find((e) => e.name === 'circle' || e.name === 'rect')!;
      return { i: Number(p.attributes['data-intensity']), f: Number(p.attributes['data-gflops']), x: Number(c.attributes.cx ?? Number(c.attributes.x) + 3), y: Number(c.attributes.cy ?? Number(c.attributes.y) + 3) };
    });
    // Log axes: x and y are affine in log10 of intensity and GFLOP/s (fit two points, check the rest).
    const a = pos.reduce((p, q) => (q.i < p.i ? q : p)), b = pos.reduce((p, q) => (q.i > p.i ? q : p));
    const sx = (b.x - a.x) / (Math.log10(b.i) - Math.log10(a.i));
    const fa = pos.reduce((p, q) => (q.f < p.f ? q : p)), fb = pos.reduce((p, q) => (q.f > p.f ? q : p));
    const sy = (fb.y - fa.y) / (Math.log10(fb.f) - Math.log10(fa.f));
    expect(sx).toBeGreaterThan(0);
    expect(sy).toBeLessThan(0); // SVG's y grows downwards
    for (const p of pos) {
      expect(Math.abs(a.x + sx * (Math.log10(p.i) - Math.log10(a.i)) - p.x)).toBeLessThan(0.2);
      expect(Math.abs(fa.y + sy * (Math.log10(p.f) - Math.log10(fa.f)) - p.y)).toBeLessThan(0.2);
    }
    // The roof: flat at the FMA peak, and on the bandwidth slope left of the ridge.
    const roof = all(svg, (e) => e.name === 'polyline' && e.attributes.class === 'roof')[0];
    const pts = roof.attributes.points.split(' ').map((p) => p.split(',').map(Number));
    const yOf = (f: number) => fa.y + sy * (Math.log10(f) - Math.log10(fa.f));
    const xOf = (i: number) => a.x + sx * (Math.log10(i) - Math.log10(a.i));
    const roofs = roofOf(lab);
    const ridge = roofs.gflopPerS / roofs.gbPerS;
    expect(pts.length).toBe(3);
    expect(Math.abs(pts[1][0] - xOf(ridge))).toBeLessThan(0.2);
    expect(Math.abs(pts[1][1] - yOf(roofs.gflopPerS))).toBeLessThan(0.2);
    expect(Math.abs(pts[2][1] - yOf(roofs.gflopPerS))).toBeLessThan(0.2);
    // Left of the ridge the roof is intensity × bandwidth: its slope is 1 decade per decade.
    expect((pts[1][1] - pts[0][1]) / (pts[1][0] - pts[0][0])).toBeCloseTo(sy / sx, 3);
  });

  test('stage bars: read-back + overhead is the wall time beyond the GPU stages, never negative', () => {
    const bars = stageBars({ ...cpu, gradcamStages: [{ name: 'gradcam.auto.k1', source: 'gpu', forwardMs: 5, backwardMs: 2, mapMs: 1 }], measurements: [{ name: 'gradcam.auto.k1', runs: 1, medianMs: 11, minMs: 11, maxMs: 11 }] });
    expect(bars[0].segments).toEqual([{ stage: 'forward', ms: 5 }, { stage: 'backward', ms: 2 }, { stage: 'CAM', ms: 1 }, { stage: 'read-back + overhead', ms: 3 }]);
    const under = stageBars({ ...cpu, gradcamStages: [{ name: 'x', source: 'gpu', forwardMs: 5, backwardMs: 2, mapMs: 1 }], measurements: [{ name: 'x', runs: 1, medianMs: 7, minMs: 7, maxMs: 7 }] });
    expect(under[0].segments[3].ms).toBe(0);
  });

  test('text from the runs is escaped', () => {
    const evil = { ...cpu, model: { ...cpu.model, name: '<script>alert(1)</script>&.onnx' } };
    const html = renderReport([{ result: evil, source: 'a"b<c>.json' }]);
    expect(html).not.toContain('<script>alert');
    expect(() => parseXml(html.replace(/^<!DOCTYPE html>\n/, ''))).not.toThrow();
  });

  test('two runs side by side: both runs, and each common measurement and kernel with its ratio to run 1', () => {
    const html = renderReport([{ result: cpu, source: 'cpu.json' }, { result: gpu, source: 'gpu-family.json' }]);
    const doc = parseXml(html.replace(/^<!DOCTYPE html>\n/, ''));
    const runs = all(doc, (e) => e.name === 'div' && e.attributes.class === 'run');
    expect(runs.length).toBe(2);
    expect(all(doc, (e) => e.attributes.class === 'chart roofline').length).toBe(2);
    const compare = byClass(doc, 'table', 'compare')[0];
    const row = (what: string) => compare.children.find((tr) => tr.children[0].text === what)!;
    const med = (r: BenchResult, n: string) => r.measurements.find((m) => m.name === n)!.medianMs;
    const fwd = row('forward');
    expect(fwd.children.map((td) => td.text)).toEqual(['forward', `${num(med(cpu, 'forward'))} ms`, `${num(med(gpu, 'forward'))} ms`, `${num(med(gpu, 'forward') / med(cpu, 'forward'))}×`]);
    const peak = row('peak FMA');
    expect(peak.children[3].text).toBe(`${num(gpu.kernels!.peaks.fma.gflopPerS / cpu.kernels!.peaks.fma.gflopPerS)}×`);
    // Every kernel both runs measured, by time, with the ratio.
    const kernels = byClass(doc, 'table', 'compare-kernels')[0];
    const r0 = cpu.kernels!.conv.find((r) => r.variant === 'winograd' && r.direction === 'forward')!;
    const r1 = gpu.kernels!.conv.find((r) => r.variant === 'winograd' && r.direction === 'forward' && r.shape === r0.shape)!;
    const tr = kernels.children.find((x) => x.children[0].text === `conv ${r0.shape} forward winograd`)!;
    expect(tr.children.map((td) => td.text)).toEqual([tr.children[0].text, `${num(r0.medianMs)} ms`, `${num(r1.medianMs)} ms`, `${num(r1.medianMs / r0.medianMs)}×`]);
    // The GPU family's fixed rules pick gemm-tiled where the CPU family's pick gemm-blocked: the charts say so.
    expect(gpu.kernels!.family).toBe('gpu');
    expect(gpu.kernels!.gemm.filter((r) => r.fixed).every((r) => r.variant === 'gemm-tiled')).toBe(true);
  });
});

describe('npm run bench:report', () => {
  let dir: string;
  const report = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'dist', 'bench-report.mjs'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
    execFileSync(process.execPath, ['scripts/build.mjs', '--quiet', 'bench-report'], { cwd: ROOT });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('a.json b.json --out report.html: one report with both runs', () => {
    const out = join(dir, 'sub', 'report.html');
    const r = report(join(FIXTURES, 'cpu.json'), join(FIXTURES, 'gpu-family.json'), '--out', out);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('2 runs');
    const html = readFileSync(out, 'utf8');
    expect(html).toContain('cpu.json');
    expect(html).toContain('gpu-family.json');
    expect(html.match(/class="run"/g)?.length).toBe(2);
    expect(existsSync(`${out}.tmp`)).toBe(false);
  });

  test('refusals: no file (usage, exit 2), a missing file and a JSON that is no bench result (exit 1, named)', () => {
    const none = report('--out', join(dir, 'x.html'));
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/no result files given\nusage: npm run bench:report/);
    const missing = report(join(dir, 'nope.json'), '--out', join(dir, 'x.html'));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain(`${join(dir, 'nope.json')}: cannot read it (ENOENT)`);
    const notBench = report(join(ROOT, 'package.json'), '--out', join(dir, 'x.html'));
    expect(notBench.status).toBe(1);
    expect(notBench.stderr).toMatch(/package\.json: not a bench result/);
    expect(existsSync(join(dir, 'x.html'))).toBe(false);
  });
});
