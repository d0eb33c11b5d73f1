/** The result as text: the measurement table, the ratios, the sanity check, the profile. Platform-neutral. */
import { describeAdapter } from '../src/gpu/device.ts';
import { formatBatches } from './batch.ts';
import type { BenchResult } from './harness.ts';
import { roofOf, type KernelLab } from './kernels.ts';
import { formatOpTypes, formatProfileRows } from './profile.ts';
import { fmtMs } from './stats.ts';

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

/** For a measurement: its ratio to our forward (gradcam), or ours to it (rivals). */
export function ratioColumns(r: BenchResult): Map<string, string> {
  const med = (n: string) => r.measurements.find((m) => m.name === n)?.medianMs;
  const out = new Map<string, string>();
  const fwd = med('forward'), fwdGpu = med('forward.gpu');
  for (const m of r.measurements) {
    if (m.name.startsWith('gradcam.') && m.name.endsWith('.gpu') && fwdGpu) out.set(m.name, `${(m.medianMs / fwdGpu).toFixed(2)}× forward.gpu`);
    else if (m.name.startsWith('gradcam.') && fwd) out.set(m.name, `${(m.medianMs / fwd).toFixed(2)}× forward`);
    else if (m.name.endsWith('.forward') && m.name.startsWith('ort-') && fwd) out.set(m.name, `forward / this = ${(fwd / m.medianMs).toFixed(3)}: ours ${fwd <= m.medianMs ? `${(m.medianMs / fwd).toFixed(1)}× faster` : `${(fwd / m.medianMs).toFixed(1)}× slower`}`);
  }
  return out;
}

export function formatHeader(r: BenchResult): string {
  const load = (l?: number[]) => (l ? l.map((x) => x.toFixed(2)).join(' ') : '—');
  return [
    `gradcam-webgpu bench, ${r.date} (${r.platform})`,
    `adapter: ${describeAdapter(r.adapter)}${r.adapter.isSoftware ? ' (software)' : ''}; timestamps ${r.adapter.features.timestamps ? 'yes' : 'no'}, subgroups ${r.adapter.features.subgroups ? 'yes' : 'no'}, f16 ${r.adapter.features.f16 ? 'yes' : 'no'}; kernels: ${r.adapter.kernelVariant ?? '?'}`,
    `model: ${r.model.name} (${(r.model.bytes / 1e6).toFixed(1)} MB, sha256 ${r.model.sha256.slice(0, 12)}…), input ${r.model.input.name} [${r.model.input.shape}]`,
    `machine: ${r.machine.cpuModel ?? '?'} × ${r.machine.cores ?? '?'}; load average at start ${load(r.machine.loadAverageStart)}, at end ${load(r.machine.loadAverageEnd)}`,
    `versions: ${Object.entries(r.versions).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `runs: ${r.options.runs} after ${r.options.warmup} warm-up (ORT: ${r.options.ortRuns ?? r.options.runs} after ${r.options.ortWarmup ?? r.options.warmup}); load: ${r.options.loadRuns}`,
  ].join('\n');
}

export function formatTable(r: BenchResult): string {
  const ratios = ratioColumns(r);
  const lines = [`${pad('measurement', 32)}${lpad('runs', 5)}${lpad('median', 11)}${lpad('min', 11)}${lpad('max', 11)}  ratio`];
  for (const m of r.measurements) {
    lines.push(`${pad(m.name, 32)}${lpad(String(m.runs), 5)}${lpad(fmtMs(m.medianMs), 11)}${lpad(fmtMs(m.minMs), 11)}${lpad(fmtMs(m.maxMs), 11)}  ${ratios.get(m.name) ?? ''}`);
  }
  return lines.join('\n');
}

export function formatRatios(r: BenchResult): string {
  const lines = ['ratios (medians):'];
  for (const x of r.ratios) {
    const verdict = x.target ? `  target ${x.target}: ${x.met ? 'met' : 'NOT met'}` : '';
    lines.push(`  ${pad(x.name, 52)}${lpad(x.value === null ? '—' : x.value.toFixed(3), 9)}${verdict}`);
  }
  for (const g of r.gradcamStages ?? []) {
    lines.push(`  ${pad(`${g.name} stages (${g.source})`, 52)} forward ${fmtMs(g.forwardMs)}, backward ${fmtMs(g.backwardMs)}, map ${fmtMs(g.mapMs)}`);
  }
  for (const s of r.sanity) {
    lines.push(`  logits vs ${s.against}: max |Δ| ${s.maxAbsDiff.toExponential(2)} = ${s.relDiff.toExponential(2)} of max |logit|; top-1 ${s.top1Agrees ? 'same' : 'DIFFERENT'}; top-5 overlap ${s.top5Overlap}/5 → ${s.ok ? 'agree' : 'DISAGREE'}`);
  }
  return lines.join('\n');
}

export function formatProfile(r: BenchResult): string {
  const p = r.profile;
  if (!p) return '';
  return [
    `Per-kernel profile (timestamp queries, one pass per dispatch, median of ${p.runs} runs)`,
    formatProfileRows('forward', p.forward),
    formatProfileRows(`Grad-CAM backward + map (${p.gradcamRequest})`, p.gradcam),
    formatOpTypes(p.byOpType),
  ].join('\n\n');
}

/** The kernel lab as text: the peaks, then per layer shape and direction every variant (★ the fixed rules'), then the GEMM sweep's best. */
export function formatKernels(lab: KernelLab): string {
  const p = lab.peaks;
  const lines = [
    `Kernel lab (${lab.timing === 'timestamps' ? 'GPU timestamps' : 'wall time to a fence'}, median of ${lab.runs} after ${lab.warmup} warm-up; FLOPs of the direct sum, compulsory bytes):`,
    `  peaks: ${p.bandwidth.gbPerS.toFixed(1)} GB/s (${p.bandwidth.what}), ${p.fma.gflopPerS.toFixed(1)} GFLOP/s (${p.fma.what})`,
    `  roof: ${roofOf(lab).gflopPerS} GFLOP/s (${roofOf(lab).flopsFrom}), ${roofOf(lab).gbPerS} GB/s (${roofOf(lab).bandwidthFrom}); ridge ${(roofOf(lab).gflopPerS / roofOf(lab).gbPerS).toFixed(2)} FLOP/byte`,
  ];
  const keys = [...new Set(lab.conv.map((r) => `${r.shape}\u0000${r.direction}`))];
  for (const k of keys) {
    const [shape, direction] = k.split('\u0000');
    const rows = lab.conv.filter((r) => r.shape === shape && r.direction === direction);
    const ok = rows.filter((r) => !r.error);
    const best = ok.length ? ok.reduce((a, r) => (r.medianMs < a.medianMs ? r : a)) : undefined;
    lines.push(`  ${pad(shape, 46)} ${pad(direction, 9)} ${rows.map((r) => `${r.fixed ? '★' : ''}${r.variant} ${r.error ? 'failed' : `${fmtMs(r.medianMs)} ${r.gflopPerS.toFixed(1)} GFLOP/s ${(r.ofRoof * 100).toFixed(0)}%roof`}${r === best ? ' (fastest)' : ''}`).join(', ')}`);
  }
  for (const v of [...new Set(lab.gemm.map((r) => r.variant))]) {
    const rows = lab.gemm.filter((r) => r.variant === v && !r.error);
    if (!rows.length) continue;
    const best = rows.reduce((a, r) => (r.gflopPerS > a.gflopPerS ? r : a));
    lines.push(`  GEMM ${pad(v, 13)} best ${best.shape}: ${best.gflopPerS.toFixed(1)} GFLOP/s (${(best.ofPeakFlops * 100).toFixed(1)} % of the FMA peak); ${rows.length} shapes`);
  }
  return lines.join('\n');
}

export function formatReport(r: BenchResult, withProfile: boolean): string {
  return [
    formatHeader(r), '', formatTable(r), '', formatRatios(r),
    ...(r.batches?.length ? ['', 'throughput by batch size (images/s; ratio to B = 1):', formatBatches(r.batches)] : []),
    ...(r.kernels ? ['', formatKernels(r.kernels)] : []),
    ...(r.notes.length ? ['', 'notes:', ...r.notes.map((n) => `  - ${n}`)] : []),
    ...(withProfile && r.profile ? ['', formatProfile(r)] : []),
  ].join('\n');
}
