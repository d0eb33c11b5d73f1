/**
 * The page's smoothing rules (src/web/smoothing.ts), without a browser: which calls a render makes
 * when the smoothing checkboxes are on (each method with the smoothings that apply to it, as
 * src/gradcam/smoothing.ts's checkSmoothing allows), how their results merge into one, the note's
 * refusals, and the grid's marks. The page itself (a map equal to the API's, the pass counts under
 * aug-smooth, Stop) is checked in test/e2e/own-model.test.ts.
 */
import { expect, test } from 'vitest';
import { METHODS, type Method } from '../src/gradcam/methods.ts';
import { checkSmoothing } from '../src/gradcam/smoothing.ts';
import type { GradcamMap, GradcamResult } from '../src/gradcam/types.ts';
import { mergeResults, smoothingCalls, smoothingLabel, smoothingRefusal, unsmoothedMark } from '../src/web/smoothing.ts';

test('every method lands in exactly one call, and each call is one the API accepts', () => {
  for (const eigen of [false, true]) {
    for (const aug of [false, true]) {
      const calls = smoothingCalls(METHODS, { eigen, aug });
      expect(calls.flatMap((c) => c.methods).sort()).toEqual([...METHODS].sort());
      for (const c of calls) expect(() => checkSmoothing(c.methods, { eigenSmooth: c.eigenSmooth, augSmooth: c.augSmooth })).not.toThrow();
      // No smoothing that is off is ever asked for; none that is on is left out where it applies.
      for (const c of calls) {
        if (!eigen) expect(c.eigenSmooth).toBe(false);
        if (!aug) expect(c.augSmooth).toBe(false);
        for (const m of c.methods) {
          if (eigen && !c.eigenSmooth) expect(() => checkSmoothing([m], { eigenSmooth: true }), m).toThrow();
          if (aug && !c.augSmooth) expect(() => checkSmoothing([m], { augSmooth: true }), m).toThrow();
        }
      }
      // Both on: both for the channel sums, aug-smooth only for the eigen methods, neither for the maps at the input.
      expect(calls.length).toBe(eigen && aug ? 3 : eigen || aug ? 2 : 1);
    }
  }
  expect(smoothingCalls(['gradcam', 'scorecam'], { eigen: true, aug: true })).toEqual([{ methods: ['gradcam', 'scorecam'], eigenSmooth: true, augSmooth: true }]);
  expect(smoothingCalls(['eigencam'], { eigen: true, aug: true })).toEqual([{ methods: ['eigencam'], eigenSmooth: false, augSmooth: true }]);
});

test('the note beside the picker: the API\'s reason in the page\'s words, for each smoothing that does not apply', () => {
  expect(smoothingRefusal('gradcam', { eigen: true, aug: true })).toBe('');
  expect(smoothingRefusal('guided-backprop', { eigen: false, aug: false })).toBe('');
  const both = smoothingRefusal('guided-backprop', { eigen: true, aug: true });
  expect(both).toMatch(/^eigen-smooth does not apply to guided-backprop: it replaces a map's sum over channels .*; aug-smooth does not apply to guided-backprop: .* these maps are at the input\. The map is shown without it\.$/);
  expect(both).not.toMatch(/eigenSmooth|augSmooth/);
  expect(smoothingRefusal('eigencam', { eigen: true, aug: true })).toMatch(/^eigen-smooth does not apply to eigencam: [^;]*\. The map is shown without it\.$/);
});

const map = (method: Method, smoothing?: GradcamMap['smoothing']) => ({ method, layer: 'a', raw: new Float32Array(1), ...(smoothing ? { smoothing } : {}) }) as GradcamMap;
const result = (maps: GradcamMap[], timings: Partial<GradcamResult['timings']>) =>
  ({ width: 1, height: 1, predictions: [], logits: new Float32Array(1), probabilities: new Float32Array(1), maps,
    timings: { forwardMs: 1, backwardMs: 2, camMs: 3, totalMs: 10, source: 'cpu', ...timings } }) as GradcamResult;

test('merged results: the maps in the request\'s method order, every method\'s own time, the first call\'s passes, the wall clock of all', () => {
  const methods: Method[] = ['gradcam', 'eigencam', 'guided-backprop', 'hirescam'];
  const a = result([map('gradcam', { eigen: true }), map('hirescam', { eigen: true })], { methodMs: { gradcam: 1, hirescam: 2 } });
  const b = result([map('eigencam')], { methodMs: { eigencam: 3 }, forwardMs: 7, totalMs: 5 });
  const c = result([map('guided-backprop')], { methodMs: { 'guided-backprop': 4 }, totalMs: 6 });
  const r = mergeResults([a, b, c], methods);
  expect(r.maps.map((m) => m.method)).toEqual(methods);
  expect(r.timings).toMatchObject({ forwardMs: 1, backwardMs: 2, totalMs: 21, methodMs: { gradcam: 1, hirescam: 2, eigencam: 3, 'guided-backprop': 4 } });
  expect(r.timings.passesMs).toBeUndefined();
  // Without per-method times in one of them: none claimed.
  expect(mergeResults([a, result([map('eigencam')], {})], methods).timings.methodMs).toBeUndefined();
  // The passes of the slow methods: their sums.
  const p = mergeResults([result([map('scorecam', { aug: true })], { passesMs: 5, methodPassesMs: { scorecam: 5 } }), result([map('smoothgrad')], { passesMs: 7, methodPassesMs: { smoothgrad: 7 } })], ['scorecam', 'smoothgrad']);
  expect(p.timings).toMatchObject({ passesMs: 12, methodPassesMs: { scorecam: 5, smoothgrad: 7 } });
  expect(mergeResults([a], methods)).toBe(a);
});

test('labels and marks: what smoothing made a map, and which asked for it did not apply', () => {
  expect(smoothingLabel(undefined)).toBe('');
  expect(smoothingLabel({ eigen: true })).toBe('eigen-smooth');
  expect(smoothingLabel({ aug: true })).toBe('aug-smooth');
  expect(smoothingLabel({ eigen: true, aug: true })).toBe('eigen-smooth + aug-smooth');
  expect(unsmoothedMark(map('gradcam', { eigen: true, aug: true }), { eigen: true, aug: true })).toBe('');
  expect(unsmoothedMark(map('eigencam', { aug: true }), { eigen: true, aug: true })).toBe('unsmoothed (eigen-smooth does not apply)');
  expect(unsmoothedMark(map('saliency'), { eigen: true, aug: true })).toBe('unsmoothed (eigen-smooth and aug-smooth do not apply)');
  expect(unsmoothedMark(map('saliency'), { eigen: false, aug: false })).toBe('');
});
