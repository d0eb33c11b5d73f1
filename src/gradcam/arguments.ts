/**
 * The arguments of the public calls (gradCAM, classify, profileMethods) checked in one place, before
 * any other work: what an input may be, and every option's name, type and range. A mistake is a
 * GradcamError naming the option (or the input's index), the value given and what it may be. An
 * unknown option name is refused too: a misspelt one (`featureLayer`) would otherwise be a silent
 * default. What depends on the model (class indices, layer names, the input's shape, the picture's
 * size) is checked next by planRequest and the engine.
 *
 * Adding an option: its type in types.ts, and one line in GRADCAM_OPTIONS, CLASSIFY_OPTIONS or
 * BATCH_OPTIONS below.
 */
import { GradcamError } from '../errors.ts';
import { METHODS } from './methods.ts';
import { REDUCTIONS } from './types.ts';

/** A value as a message shows it: numbers and strings as written, other things by kind. */
export function shown(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (typeof v === 'string') return `'${v.length > 40 ? `${v.slice(0, 40)}…` : v}'`;
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'function') return 'a function';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  const name = (Object.getPrototypeOf(v) as { constructor?: { name?: string } } | null)?.constructor?.name;
  if (name && name !== 'Object') return `a ${name}`;
  const keys = Object.keys(v as object);
  return keys.length ? `an object with ${keys.slice(0, 5).map((k) => `'${k}'`).join(', ')}${keys.length > 5 ? ', …' : ''}` : 'an empty object';
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;

const WHAT_AN_INPUT_IS = 'An input is a picture { width, height, data } (RGBA bytes, as ImageData or readImage give) or a tensor { shape: [1, C, H, W], data: Float32Array }.';

/** Checks that `x` is an input (a picture or a tensor) by its form; `where` names it ('input', 'input 3 of 40'). */
export function checkInputForm(x: unknown, where: string): void {
  const fail = (what: string) => new GradcamError(`${where}: ${what}`, WHAT_AN_INPUT_IS);
  if (!isObject(x)) throw fail(`expected a picture or a tensor, got ${shown(x)}`);
  if ('shape' in x) {
    const { shape, data } = x;
    if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) throw fail(`a tensor's shape must be an array of sizes, got ${shown(shape)}`);
    if (!(data instanceof Float32Array)) throw fail(`a tensor's data must be a Float32Array, got ${shown(data)}`);
    return;
  }
  if ('width' in x || 'height' in x || 'data' in x) {
    const { width, height, data } = x;
    if (!isCount(width) || !isCount(height)) throw fail(`a picture's width and height must be integers ≥ 1, got ${shown(width)} × ${shown(height)}`);
    if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) throw fail(`a picture's data must be RGBA bytes (a Uint8Array or Uint8ClampedArray), got ${shown(data)}`);
    return;
  }
  throw fail(`expected a picture or a tensor, got ${shown(x)}`);
}

/** Checks the inputs of a call with an array: a non-empty array, each element an input (named by its index). */
export function checkInputsForm(inputs: unknown): void {
  if (!Array.isArray(inputs) || inputs.length === 0) {
    throw new GradcamError(`no inputs given: expected a non-empty array of pictures or tensors, got ${shown(inputs)}`, WHAT_AN_INPUT_IS);
  }
  inputs.forEach((x, i) => checkInputForm(x, `input ${i} of ${inputs.length}`));
}

type Check = (value: unknown, name: string) => void;

const wrong = (name: string, value: unknown, expected: string) => new GradcamError(`option ${name} is ${shown(value)}: expected ${expected}`);

const boolean: Check = (v, name) => {
  if (typeof v !== 'boolean') throw wrong(name, v, 'true or false');
};
const text: Check = (v, name) => {
  if (typeof v !== 'string' || v === '') throw wrong(name, v, 'a tensor name');
};
const count: Check = (v, name) => {
  if (!isCount(v)) throw wrong(name, v, 'an integer ≥ 1');
};

/** The options of gradCAM (GradcamOptions): name → check. Model-dependent ranges follow in planRequest. */
const GRADCAM_OPTIONS: Record<string, Check> = {
  classes: (v, name) => {
    const ok = typeof v === 'number' || typeof v === 'string' || (Array.isArray(v) && v.length > 0 && v.every((c) => typeof c === 'number'));
    if (!ok) throw wrong(name, v, "a class index, a non-empty list of indices, 'top' or 'topK' (e.g. 'top5')");
  },
  featureLayers: (v, name) => {
    const ok = (typeof v === 'string' && v !== '') || (Array.isArray(v) && v.length > 0 && v.every((l) => typeof l === 'string' && l !== ''));
    if (!ok) throw wrong(name, v, "a layer name or a non-empty list of them ('auto', 'all', a tensor name, a block name such as 'inception_4e')");
  },
  reduction: (v, name) => {
    if (!(REDUCTIONS as readonly unknown[]).includes(v)) throw wrong(name, v, `one of ${REDUCTIONS.map((r) => `'${r}'`).join(', ')}`);
  },
  reductionLayer: text,
  upsample: boolean,
  overlay: (v, name) => {
    if (typeof v === 'boolean') return;
    if (!isObject(v)) throw wrong(name, v, 'true, false or { alpha } (alpha from 0 to 1)');
    for (const k of Object.keys(v)) if (k !== 'alpha') throw new GradcamError(`option overlay has no field '${k}': expected { alpha } (alpha from 0 to 1)`);
    if (v.alpha !== undefined && !(typeof v.alpha === 'number' && v.alpha >= 0 && v.alpha <= 1)) throw wrong(`${name}.alpha`, v.alpha, 'a number from 0 to 1 (the map\'s weight over the picture)');
  },
  methods: (v, name) => {
    if (!Array.isArray(v) || v.length === 0) throw wrong(name, v, `a non-empty list of method names (${METHODS.join(', ')})`);
    // The names themselves: planMethods (unknown method 'x', with the list).
  },
  counterfactual: boolean,
  inspect: boolean,
  eigenSmooth: boolean,
  augSmooth: boolean,
  methodOptions: (v, name) => {
    if (!isObject(v)) throw wrong(name, v, `an object with one entry per method (${Object.keys(METHOD_OPTIONS).join(', ')})`);
    for (const [method, o] of Object.entries(v)) {
      const fields = METHOD_OPTIONS[method];
      if (!fields) throw new GradcamError(`option ${name} has no entry '${method}'`, `The methods with options: ${Object.keys(METHOD_OPTIONS).join(', ')}.`);
      if (o === undefined) continue;
      if (!isObject(o)) throw wrong(`${name}.${method}`, o, `an object with ${Object.keys(fields).join(', ')}`);
      for (const [field, value] of Object.entries(o)) {
        if (!Object.hasOwn(fields, field)) throw new GradcamError(`option ${name}.${method} has no field '${field}'`, `Its fields: ${Object.keys(fields).join(', ')}.`);
        if (value !== undefined) fields[field](value, `${name}.${method}.${field}`);
      }
    }
  },
  signal: (v, name) => {
    if (!(typeof AbortSignal !== 'undefined' && v instanceof AbortSignal)) throw wrong(name, v, 'an AbortSignal (new AbortController().signal)');
  },
  onProgress: (v, name) => {
    if (typeof v !== 'function') throw wrong(name, v, 'a function ({ done, total, method }) => void');
  },
};

/**
 * Each method's options (GradcamOptions.methodOptions, types.ts MethodOptions): method → field → check.
 * Adding one: its type in MethodOptions, one line here.
 */
const METHOD_OPTIONS: Record<string, Record<string, Check>> = {
  scorecam: { batchSize: count },
  ablationcam: { batchSize: count, skipZero: boolean },
  smoothgrad: {
    samples: count, seed: (v, name) => {
      if (!(typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 32)) throw wrong(name, v, 'an integer from 0 to 2³² − 1');
    },
    sigma: (v, name) => {
      if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0)) throw wrong(name, v, "a number ≥ 0 (the noise's standard deviation as a fraction of the input's range, e.g. 0.15)");
    },
    batchSize: count,
  },
  'integrated-gradients': {
    steps: count, batchSize: count,
    baseline: (v, name) => {
      if (v !== 'zeros' && v !== 'black') throw wrong(name, v, "'zeros' (0 in the preprocessed input) or 'black' (the black picture, preprocessed)");
    },
  },
  occlusion: {
    patch: count, stride: count, batchSize: count,
    fill: (v, name) => {
      if (!(typeof v === 'number' && Number.isFinite(v))) throw wrong(name, v, 'a finite number (the value inside the window, in the preprocessed input)');
    },
  },
};

/** The options of a call with an array of inputs (BatchOptions). */
const BATCH_OPTIONS: Record<string, Check> = {
  batchSize: (v, name) => {
    if (!isCount(v)) throw new GradcamError(`${name} ${shown(v)} is not a batch size: expected an integer ≥ 1 (the images run together on the GPU)`);
  },
  onResult: (v, name) => {
    if (typeof v !== 'function') throw wrong(name, v, 'a function (result, index) => void');
  },
};

/** Checks `options` against a table; undefined values count as absent (the default). */
function checkOptions(options: unknown, call: string, tables: Record<string, Check>[], elsewhere: Record<string, string> = {}): void {
  if (options === undefined) return;
  if (!isObject(options)) throw new GradcamError(`${call}: the options must be an object, got ${shown(options)}`);
  const known = Object.assign({}, ...tables) as Record<string, Check>;
  for (const [name, value] of Object.entries(options)) {
    if (!Object.hasOwn(known, name)) {
      if (Object.hasOwn(elsewhere, name)) throw new GradcamError(`${call}: option ${name} ${elsewhere[name]}`);
      throw new GradcamError(`${call}: unknown option '${name}'`, `Its options: ${Object.keys(known).join(', ')}.`);
    }
    if (value !== undefined) known[name](value, name);
  }
}

const FOR_ARRAYS = Object.fromEntries(Object.keys(BATCH_OPTIONS).map((k) => [k, 'is for a call with an array of inputs']));

/** Checks the options of gradCAM (`batch`: the call has an array of inputs, so batchSize and onResult belong too). */
export function checkGradcamOptions(options: unknown, batch: boolean): void {
  checkOptions(options, 'gradCAM', batch ? [GRADCAM_OPTIONS, BATCH_OPTIONS] : [GRADCAM_OPTIONS], batch ? {} : FOR_ARRAYS);
}

/**
 * Checks `top`, the predictions per image: an integer ≥ 1. More than the model's classes gives all
 * of them (a default of 5 must work on a 3-class model too).
 */
export function checkTop(top: unknown, classes: number): void {
  if (!isCount(top)) {
    throw new GradcamError(`top ${shown(top)} is not a number of predictions: expected an integer ≥ 1 (the model has ${classes} classes; a larger top gives all of them)`);
  }
}

/** Checks the options of classify (ClassifyOptions; `batch`: the call has an array of inputs). */
export function checkClassifyOptions(options: unknown, classes: number, batch: boolean): void {
  const top = { top: (v: unknown) => checkTop(v, classes) };
  checkOptions(options, 'classify', batch ? [top, BATCH_OPTIONS] : [top], batch ? {} : FOR_ARRAYS);
}

/** Checks profileMethods' `runs`. */
export function checkRuns(runs: unknown): void {
  count(runs, 'runs');
}
