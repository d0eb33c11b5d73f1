/**
 * The page's smoothing checkboxes, eigen-smooth and aug-smooth (their definition and where they
 * apply: src/gradcam/smoothing.ts). The API refuses a call whose methods do not all take a smoothing
 * asked for; the page instead runs each method with the smoothings that apply to it, and says so:
 *
 *   - the chosen method: a smoothing that does not apply is left out, and the note beside the
 *     picker gives the API's reason (before anything runs, not as a late error);
 *   - the every-method grid: one gradCAM call per set of smoothings that apply (at most three: both,
 *     aug-smooth only for eigencam and eigengradcam, neither for the maps at the input), merged into
 *     one result; the tiles of the methods left unsmoothed are marked.
 */
import { GradcamError } from '../errors.ts';
import { type Method } from '../gradcam/methods.ts';
import { augSmoothApplies, checkSmoothing, eigenSmoothApplies } from '../gradcam/smoothing.ts';
import type { GradcamMap, GradcamResult } from '../gradcam/types.ts';

/** The checkboxes as they stand. */
export interface Smoothing {
  eigen: boolean;
  aug: boolean;
}

/** The smoothings of `s` that apply to method `m`. */
export function smoothingFor(m: Method, s: Smoothing): Smoothing {
  return { eigen: s.eigen && eigenSmoothApplies(m), aug: s.aug && augSmoothApplies(m) };
}

/** The API's names for the options, in the page's (and the CLI's) words. */
const pageWords = (text: string) => text.replace(/\beigenSmooth\b/g, 'eigen-smooth').replace(/\baugSmooth\b/g, 'aug-smooth');

/**
 * Why the smoothings that are on do not apply to `m` (checkSmoothing's refusal, one sentence per
 * option), or '' when they all do.
 */
export function smoothingRefusal(m: Method, s: Smoothing): string {
  const why: string[] = [];
  for (const o of [{ eigenSmooth: s.eigen }, { augSmooth: s.aug }]) {
    try {
      checkSmoothing([m], o);
    } catch (e) {
      if (!(e instanceof GradcamError)) throw e;
      why.push(pageWords(e.message));
    }
  }
  return why.length ? `${why.join('; ')}. The map is shown without it.` : '';
}

/** One gradCAM call of a render: these methods, with these smoothings. */
export interface SmoothingCall {
  methods: Method[];
  eigenSmooth: boolean;
  augSmooth: boolean;
}

/** The calls that run `methods` each with the smoothings that apply to it (one call when they all take the same), in first-seen order. */
export function smoothingCalls(methods: readonly Method[], s: Smoothing): SmoothingCall[] {
  const calls = new Map<string, SmoothingCall>();
  for (const m of methods) {
    const { eigen, aug } = smoothingFor(m, s);
    const key = `${eigen}|${aug}`;
    const call = calls.get(key) ?? { methods: [], eigenSmooth: eigen, augSmooth: aug };
    call.methods.push(m);
    calls.set(key, call);
  }
  return [...calls.values()];
}

/**
 * The results of a render's calls on one picture as one: the maps in the order of `methods`, the
 * first call's predictions and forward/backward/map times (every call ran its own; the predictions
 * are the unaugmented input's in each), the methods' own times and the passes' times of all calls,
 * the wall clock of all.
 */
export function mergeResults(results: GradcamResult[], methods: readonly Method[]): GradcamResult {
  if (results.length === 1) return results[0];
  const [first] = results;
  const maps = results.flatMap((r) => r.maps);
  const order = (m: GradcamMap) => methods.indexOf(m.method);
  const methodMs = results.every((r) => r.timings.methodMs) ? Object.assign({}, ...results.map((r) => r.timings.methodMs)) : undefined;
  const passes = results.filter((r) => r.timings.passesMs !== undefined);
  const passesBy = results.filter((r) => r.timings.methodPassesMs);
  // (The first call's own methodMs, passesMs and methodPassesMs are not the render's: replaced by all calls' below, or left out.)
  const { methodMs: _m, passesMs: _p, methodPassesMs: _mp, ...base } = first.timings;
  return {
    ...first,
    maps: maps.map((m, i) => ({ m, i })).sort((a, b) => order(a.m) - order(b.m) || a.i - b.i).map(({ m }) => m),
    timings: {
      ...base,
      ...(methodMs ? { methodMs } : {}),
      ...(passes.length ? { passesMs: passes.reduce((a, r) => a + r.timings.passesMs!, 0) } : {}),
      ...(passesBy.length ? { methodPassesMs: Object.assign({}, ...passesBy.map((r) => r.timings.methodPassesMs)) } : {}),
      totalMs: results.reduce((a, r) => a + r.timings.totalMs, 0),
    },
  };
}

/** A map's smoothing (GradcamMap.smoothing), or a call's, in words ('' for none): for the caption, the tiles, the progress line. */
export function smoothingLabel(s: { eigen?: boolean; aug?: boolean } | undefined): string {
  return s?.eigen && s.aug ? 'eigen-smooth + aug-smooth' : s?.eigen ? 'eigen-smooth' : s?.aug ? 'aug-smooth' : '';
}

/** The smoothings of `asked` that a map did not get (they do not apply to its method), as a tile's mark; '' when none. */
export function unsmoothedMark(map: Pick<GradcamMap, 'smoothing'>, asked: Smoothing): string {
  const left = [asked.eigen && !map.smoothing?.eigen ? 'eigen-smooth' : '', asked.aug && !map.smoothing?.aug ? 'aug-smooth' : ''].filter(Boolean);
  return left.length ? `unsmoothed (${left.join(' and ')} ${left.length > 1 ? 'do' : 'does'} not apply)` : '';
}
