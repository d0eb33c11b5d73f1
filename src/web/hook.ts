/**
 * `window.gradcam`: what the page has done, for the end-to-end tests and for anyone poking at the
 * page from the console. Read-only by convention, except `loseDevice()` (simulates a GPU reset) and
 * `gradCAM(options)` (the API on the picture in view).
 */
import type { DeviceLimits } from '../gpu/dispatch.ts';
import type { GradcamMap, GradcamOptions, GradcamResult } from '../gradcam/types.ts';
import { hotSpot } from './draw.ts';
import type { LabelSet } from './labels.ts';
import type { ModelFacts } from './model-card.ts';
import type { TuningFacts } from './tuning.ts';

export interface RunSummary {
  model: string;
  width: number;
  height: number;
  /** The map shown in the big view. */
  map: {
    layer: string; method: string; counterfactual: boolean; class: number; label: string; reduction: string; shape: [number, number]; max: number; raw: number[];
    /** The smoothing that made it (eigen-smooth, aug-smooth), when any. */
    smoothing?: { eigen?: true; aug?: true };
  };
  /** Every layer with a map in this run (every block with the layer strip). */
  layers: string[];
  /** Every method with a map in this run (all of them with the grid), and its own time when the result has one. */
  methods: { method: string; ms?: number }[];
  /** The inspector's report on the map shown, in brief (with `inspect: true`). */
  inspection?: {
    channels: number; weights?: number; negativeShare: number; diagnosis: string;
    branches?: { kind: string; channels: [number, number]; contribution: number }[];
    camIdentity?: { applies: boolean; maxAbsDiff?: number; scale?: number };
  };
  /** The centre of the hottest feature cell, in picture pixels. */
  hot: { x: number; y: number };
  predictions: { class: number; label: string; probability: number }[];
  timings: GradcamResult['timings'];
}

export interface PageHook {
  state: 'starting' | 'ready' | 'no-webgpu' | 'error';
  noWebGpuReason?: 'no-api' | 'no-adapter';
  /** Grad-CAM runs drawn so far. */
  runs: number;
  /** performance.now() (ms since navigation started) when the first map was drawn. */
  firstMapMs?: number;
  /** source: 'cache' | 'server' | 'download' | 'generated' | 'file'; url: where a file came from. */
  model?: { name: string; source: string; demo: boolean; url?: string };
  /** The model card: the input as run, the recipe with its source and why, the labels' source. */
  modelCard?: ModelFacts;
  last?: RunSummary;
  errors: string[];
  /** The gallery of many pictures: how far it is. */
  gallery?: { pictures: number; done: number; failed: number; running: boolean };
  /** The device's buffer limits (the model picker marks a model too big for them). */
  limits?: DeviceLimits;
  /** The slow methods' last progress report (passes done of the run's total). */
  passes?: { done: number; total: number; method: string };
  /** Slow runs stopped (the Stop button, or superseded by a newer request). */
  stopped: number;
  /** Device losses recovered. */
  recoveries: number;
  /** Where the loaded model's conv variants come from (src/web/tuning.ts), after each load and each Tune. */
  tuning?: TuningFacts;
  /** The Tune button's last progress report (measurements done of the total). */
  tuneProgress?: { done: number; total: number };
  loseDevice(): void;
  /**
   * gradCAM(picture in view, options) on the page's network, through its queue, as plain data: the API
   * as a program calls it, for comparing with what the page shows (set once the page has a model's session).
   */
  gradCAM?(options: GradcamOptions): Promise<{ layer: string; method: string; class: number; smoothing?: { eigen?: true; aug?: true }; raw: number[] }[]>;
}

export const hook: PageHook = { state: 'starting', runs: 0, errors: [], stopped: 0, recoveries: 0, loseDevice: () => undefined };
(globalThis as unknown as { gradcam: PageHook }).gradcam = hook;

export function publishResult(r: GradcamResult, map: GradcamMap, labels: LabelSet, model: string): void {
  hook.last = {
    model,
    width: r.width,
    height: r.height,
    map: { layer: map.layer, method: map.method, counterfactual: map.counterfactual, class: map.class, label: labels.of(map.class), reduction: map.reduction, shape: map.shape, max: map.max, raw: [...map.raw],
      ...(map.smoothing ? { smoothing: map.smoothing } : {}) },
    layers: [...new Set(r.maps.map((m) => m.layer))],
    methods: [...new Set(r.maps.map((m) => m.method))].map((method) => ({ method, ms: r.timings.methodMs?.[method] })),
    hot: hotSpot(map, r.width, r.height),
    inspection: map.inspection && {
      channels: map.inspection.contributions.length, weights: map.inspection.weights?.length, negativeShare: map.inspection.negativeShare,
      diagnosis: map.inspection.diagnosis, branches: map.inspection.branches?.map((b) => ({ kind: b.kind, channels: b.channels, contribution: b.contribution })),
      camIdentity: map.inspection.camIdentity && { applies: map.inspection.camIdentity.applies, maxAbsDiff: map.inspection.camIdentity.maxAbsDiff, scale: map.inspection.camIdentity.scale },
    },
    predictions: r.predictions.map((p) => ({ class: p.class, label: labels.of(p.class), probability: p.probability })),
    timings: r.timings,
  };
}
