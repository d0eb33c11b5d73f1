/**
 * The page's kernel tuning (issue 21, item 2): tuned plans kept in this browser's IndexedDB, taken
 * at every load of a model with no timing (`storedOnly`), measured by the Tune button; and what
 * the loaded network's conv variants come from, in words, for the Timings card and window.gradcam.
 */
import type { Network } from '../gradcam/network.ts';
import { convLowering } from '../kernels/variants.ts';
import { IndexedDbPlanStore } from '../runtime/plan-store.ts';
import { tuneCounters, type TuneProgress } from '../runtime/tune.ts';

/** IndexedDB 'gradcam-webgpu', object store 'plans': one record per adapter, model, input and engine version. */
export const planStore = new IndexedDbPlanStore();

export interface TuningFacts {
  /** 'fixed rules': no tuned plan for this adapter and model here; 'cache': taken from IndexedDB; 'measured': timed now. */
  source: 'fixed rules' | 'cache' | 'measured';
  /** Conv layers of the model, and the layer directions whose variant differs from the fixed rules'. */
  layers: number;
  changed: number;
  /** The plan's measurements, when, how timed, and where kept. */
  measurements?: number;
  date?: string;
  method?: 'timestamps' | 'wall';
  where?: string;
  /** Timing submissions tuning made since the page was loaded (a load that takes a stored plan makes none). */
  timedSubmissions: number;
}

export function tuningFacts(net: Network): TuningFacts {
  const t = net.tuning;
  const family = net.engine.env.variant;
  let layers = 0, changed = 0;
  for (const op of net.graph.ops) {
    if (op.kind !== 'conv') continue;
    layers++;
    const chosen = net.engine.env.choices.get(op.name);
    for (const d of ['forward', 'backward'] as const) if (chosen && chosen[d] !== convLowering(op, family, d)) changed++;
  }
  return {
    source: t ? t.source : 'fixed rules', layers, changed, timedSubmissions: tuneCounters.timedSubmissions,
    ...(t ? { measurements: t.tuned.timings.length, date: t.tuned.date, method: t.tuned.method, where: t.where } : {}),
  };
}

/** One sentence for the Timings card. */
export function tuningNote(f: TuningFacts): string {
  if (f.source === 'fixed rules') return `Conv kernels: the fixed rules (${f.layers} layers). Tune times every variant on every layer shape on this GPU and keeps the fastest, in this browser.`;
  const when = f.date ? new Date(f.date).toLocaleString() : '';
  const how = f.method === 'timestamps' ? 'GPU timestamps' : 'wall time';
  const what = `${f.changed} of ${2 * f.layers} layer directions differ from the fixed rules`;
  return f.source === 'cache'
    ? `Conv kernels: the tuned plan for this GPU and model, measured ${when} (${f.measurements} measurements, ${how}), from this browser's IndexedDB; ${what}.`
    : `Conv kernels: tuned now (${f.measurements} measurements, ${how}) and kept in this browser's IndexedDB for the next load; ${what}.`;
}

/** The Tune button's progress line: measurements done, the last one, and the time left at the rate so far. */
export function tuneProgressText(p: TuneProgress, startedMs: number): string {
  const elapsed = (performance.now() - startedMs) / 1000;
  const left = p.done > 0 ? (elapsed / p.done) * (p.total - p.done) : undefined;
  const time = left === undefined ? '' : left >= 90 ? `, about ${Math.round(left / 60)} min left` : `, about ${Math.ceil(left)} s left`;
  return `tuning: ${p.done} of ${p.total} measurements (${p.layer.split('+')[0]} ${p.direction === 'forward' ? 'forward' : 'data gradient'}, ${p.variant} ${p.ms.toFixed(2)} ms)${time}`;
}
