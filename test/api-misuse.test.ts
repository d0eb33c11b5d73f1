/**
 * The batch API misused (issue 17, item 6): every bad input or option of gradCAM and classify is a
 * GradcamError that names it and says what it may be, refused before any GPU work (no buffer made),
 * never JavaScript's own text ("Cannot read properties", "is not a function") and never a silent
 * default (`top: -1` gave 9 of 10 predictions, `top: NaN` none, `[img, {}]` a TypeError); and
 * destroy(): a call after it, or queued behind a run in flight, rejects with "this network was
 * destroyed"; the run in flight (a single call, or the batch an array call is running) ends and
 * gives its result; the buffers are all freed once it has; no WebGPU validation error on the way
 * (was "[Buffer] used in submit while destroyed").
 *
 * One small model (test/helpers/small-model.ts: 10 classes, 16×12 input) on one device.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { GradcamError } from '../src/errors.ts';
import { liveBuffers } from '../src/gpu/buffers.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import { gradCAM, Network } from '../src/gradcam/network.ts';
import type { ModelInput } from '../src/gradcam/types.ts';
import { Rng } from '../weights/generate/random.ts';
import { testGpu } from './helpers/gpu.ts';
import { randomPicture, SMALL_CLASSES, smallModel } from './helpers/small-model.ts';

/** Text written by the JavaScript engine, not by the project. */
const ENGINE_TEXT = /is not (a function|iterable|defined|a constructor)|Cannot (read|set) propert|Invalid (code point|typed array|array)|Maximum call stack|\[object Object\]|WebGPU validation/;

let gpu: GpuContext;
let net: Network;
const r = new Rng(17);
const img = randomPicture(r, 16, 12);
const tensor: ModelInput = { shape: [1, 3, 16, 12], data: new Float32Array(3 * 16 * 12).fill(0.25) };

beforeAll(async () => {
  gpu = await testGpu();
  net = await Network.load(gpu, smallModel(3, 'flatten'));
});

/** `call` rejects with a GradcamError matching `message`, in words, having made no GPU buffer. */
async function refused(call: () => Promise<unknown>, message: RegExp): Promise<void> {
  const before = liveBuffers(gpu.device).buffers;
  let error: unknown;
  try {
    await call();
  } catch (e) {
    error = e;
  }
  expect(error, `expected a GradcamError matching ${message}`).toBeInstanceOf(GradcamError);
  const text = (error as GradcamError).message;
  expect(text).toMatch(message);
  expect(text).not.toMatch(ENGINE_TEXT);
  expect(liveBuffers(gpu.device).buffers).toBe(before);
}

/** Casts a deliberately wrong argument past the types (what a JavaScript caller can pass). */
const bad = (x: unknown): never => x as never;

describe('inputs', () => {
  test('a bad element of an array names its index and says what an input may be (was a TypeError for {})', async () => {
    await refused(() => gradCAM(net, [img, bad({})]), /^input 1 of 2: expected a picture or a tensor, got an empty object$/);
    await refused(() => gradCAM(net, [img, bad(null)]), /^input 1 of 2: expected a picture or a tensor, got null$/);
    await refused(() => gradCAM(net, [bad(7), img]), /^input 0 of 2: expected a picture or a tensor, got 7$/);
    await refused(() => gradCAM(net, [img, bad({ shape: [1, 3, 16, 12], data: [0, 1] })]), /^input 1 of 2: a tensor's data must be a Float32Array, got an array of 2$/);
    await refused(() => gradCAM(net, [img, bad({ shape: '1,3,12,16', data: new Float32Array(4) })]), /^input 1 of 2: a tensor's shape must be an array of sizes/);
    await refused(() => net.classify([img, bad({ width: 16, height: 12, data: 'pixels' })]), /^input 1 of 2: a picture's data must be RGBA bytes/);
    await refused(() => net.classify([img, bad({ width: NaN, height: 12, data: new Uint8Array(4) })]), /^input 1 of 2: a picture's width and height must be integers ≥ 1, got NaN × 12$/);
    await refused(() => net.classify([img, bad({ file: 'a.png' })]), /^input 1 of 2: expected a picture or a tensor, got an object with 'file'$/);
    // Each refusal carries the hint of what an input is.
    await expect(gradCAM(net, [img, bad({})])).rejects.toMatchObject({ hint: expect.stringMatching(/picture \{ width, height, data \}.*tensor \{ shape: \[1, C, H, W\], data: Float32Array \}/) });
  });

  test('a single bad input, and no array or an empty one', async () => {
    await refused(() => gradCAM(net, bad({})), /^input: expected a picture or a tensor, got an empty object$/);
    await refused(() => gradCAM(net, bad('photo.png')), /^input: expected a picture or a tensor, got 'photo.png'$/);
    await refused(() => net.classify(bad(undefined)), /^input: expected a picture or a tensor, got undefined$/);
    await refused(() => gradCAM(net, []), /^no inputs given: expected a non-empty array/);
    await refused(() => net.classify([]), /^no inputs given/);
  });
});

describe('options', () => {
  test('top: −1, NaN, 0, 1.5, Infinity, "3" are refused with the allowed range (were 9 predictions of 10, and none)', async () => {
    for (const top of [-1, NaN, 0, 1.5, Infinity, '3']) {
      await refused(() => net.classify([img, tensor], bad({ top })), /^top .* is not a number of predictions: expected an integer ≥ 1 \(the model has 10 classes; a larger top gives all of them\)$/);
      await refused(() => net.classify(img, bad(top)), /^top .* is not a number of predictions/);
    }
    await refused(() => net.classify(img, bad(null)), /^top null is not a number of predictions/);
  });

  test('top larger than the class count gives every class, best first (documented clamp); top 3 gives 3', async () => {
    const [a, b] = await net.classify([img, tensor], { top: 25 });
    for (const c of [a, b]) {
      expect(c.predictions.map((p) => p.class).sort((x, y) => x - y)).toEqual([...Array(SMALL_CLASSES).keys()]);
      expect(c.predictions.every((p, i) => i === 0 || p.score <= c.predictions[i - 1].score)).toBe(true);
    }
    expect((await net.classify(img, 3)).predictions).toHaveLength(3);
    expect((await net.classify(img, bad({ top: 2 }))).predictions).toHaveLength(2);
  });

  test('batchSize 0, NaN, −1, 1.5, "2" are refused naming batchSize, for gradCAM and classify', async () => {
    for (const batchSize of [0, NaN, -1, 1.5, '2', null]) {
      await refused(() => gradCAM(net, [img, img], bad({ batchSize })), /^batchSize .* is not a batch size: expected an integer ≥ 1/);
      await refused(() => net.classify([img, img], bad({ batchSize })), /^batchSize .* is not a batch size: expected an integer ≥ 1/);
    }
    // On a call with one input, a batch option is a mistake of its own.
    await refused(() => gradCAM(net, img, bad({ batchSize: 2 })), /^gradCAM: option batchSize is for a call with an array of inputs$/);
    await refused(() => net.classify(img, bad({ onResult: () => undefined })), /^classify: option onResult is for a call with an array of inputs$/);
  });

  test("every other option of gradCAM is checked by name, type and range (one place: src/gradcam/arguments.ts)", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ classes: {} }, /^option classes is an empty object: expected a class index, a non-empty list of indices, 'top' or 'topK'/],
      [{ classes: [] }, /^option classes is an array of 0: expected a class index/],
      [{ classes: true }, /^option classes is true: expected/],
      [{ classes: 1.5 }, /^class index 1\.5 is out of range: the model has classes 0 … 9$/],
      [{ classes: NaN }, /^class index NaN is out of range/],
      [{ classes: 'top0' }, /^top0 asks for 0 classes, but the model has 10$/],
      [{ featureLayers: 5 }, /^option featureLayers is 5: expected a layer name or a non-empty list of them/],
      [{ featureLayers: [] }, /^option featureLayers is an array of 0: expected a layer name/],
      [{ featureLayers: ['c3', ''] }, /^option featureLayers is an array of 2: expected a layer name/],
      [{ featureLayers: 'nope' }, /^unknown layer 'nope'/],
      [{ reduction: 'bogus' }, /^option reduction is 'bogus': expected one of 'logit', 'softmax'$/],
      [{ reductionLayer: 5 }, /^option reductionLayer is 5: expected a tensor name$/],
      [{ upsample: 'yes' }, /^option upsample is 'yes': expected true or false$/],
      [{ overlay: 'yes' }, /^option overlay is 'yes': expected true, false or \{ alpha \}/],
      [{ overlay: { alpha: 2 } }, /^option overlay\.alpha is 2: expected a number from 0 to 1/],
      [{ overlay: { alpha: NaN } }, /^option overlay\.alpha is NaN: expected a number from 0 to 1/],
      [{ overlay: { opacity: 0.5 } }, /^option overlay has no field 'opacity'/],
      [{ methods: 'gradcam' }, /^option methods is 'gradcam': expected a non-empty list of method names \(gradcam, hirescam/],
      [{ methods: [] }, /^option methods is an array of 0: expected a non-empty list/],
      [{ methods: ['gradcam', 'nope'] }, /^unknown method 'nope'$/],
      [{ counterfactual: 'yes' }, /^option counterfactual is 'yes': expected true or false$/],
      [{ inspect: 1 }, /^option inspect is 1: expected true or false$/],
      [{ onResult: 'print' }, /^option onResult is 'print': expected a function/],
      [{ featureLayer: 'c3' }, /^gradCAM: unknown option 'featureLayer'$/],
    ];
    for (const [options, message] of cases) {
      await refused(() => gradCAM(net, [img, tensor], bad(options)), message);
      // The same check on a single input (the batch options aside).
      if (!('onResult' in options)) await refused(() => gradCAM(net, img, bad(options)), message);
    }
    await refused(() => gradCAM(net, img, bad(null)), /^gradCAM: the options must be an object, got null$/);
    await refused(() => net.classify([img], bad('top3')), /^classify: the options must be an object, got 'top3'$/);
    await refused(() => net.classify([img], bad({ top: 3, batchsize: 2 })), /^classify: unknown option 'batchsize'$/);
    await expect(gradCAM(net, img, bad({ featureLayer: 'c3' }))).rejects.toMatchObject({ hint: expect.stringMatching(/featureLayers/) });
    await refused(() => net.profileMethods(img, {}, 0), /^option runs is 0: expected an integer ≥ 1$/);
  });

  test('options left undefined are the defaults; good calls still run', async () => {
    const [a] = await gradCAM(net, [img], { classes: undefined, batchSize: undefined, overlay: { alpha: 0.3 }, upsample: false });
    expect(a.maps).toHaveLength(1);
    expect(Number.isFinite(a.maps[0].max)).toBe(true);
  });
});

describe('destroy()', () => {
  /** Errors Dawn reports outside an error scope, while `fn` runs. */
  async function uncaptured(fn: () => Promise<void>): Promise<string[]> {
    const errors: string[] = [];
    const listen = (e: Event) => errors.push((e as GPUUncapturedErrorEvent).error.message);
    gpu.device.addEventListener('uncapturederror', listen);
    try {
      await fn();
      await gpu.device.queue.onSubmittedWorkDone();
    } finally {
      gpu.device.removeEventListener('uncapturederror', listen);
    }
    return errors;
  }

  const DESTROYED = /^this network was destroyed \(net\.destroy\(\)\); load it again with loadNetwork\(\.\.\.\)$/;

  test('every call after destroy() is that GradcamError, not a WebGPU validation error; the buffers are freed when destroy returns', async () => {
    const before = liveBuffers(gpu.device);
    const own = await Network.load(gpu, smallModel(4, 'flatten'));
    await gradCAM(own, [img, tensor], { batchSize: 2 }); // a batch engine too
    expect(liveBuffers(gpu.device).buffers).toBeGreaterThan(before.buffers);
    const errors = await uncaptured(async () => {
      const done = own.destroy();
      expect(liveBuffers(gpu.device)).toEqual(before); // idle: freed at once
      for (const call of [
        () => gradCAM(own, img), () => gradCAM(own, [img, img]), () => own.classify(img), () => own.classify([img]),
        () => own.readTensor('c1'), () => own.profileForward(), () => own.profileMethods(img),
      ]) await refused(call, DESTROYED);
      // Destroyed is said first, before what is wrong with the arguments.
      await refused(() => gradCAM(own, [bad({})]), DESTROYED);
      expect(own.destroy()).toBe(done); // a second destroy does nothing more
      await done;
    });
    expect(errors).toEqual([]);
    expect(liveBuffers(gpu.device)).toEqual(before);
  });

  /** The error a promise rejects with (a handler attached at once: no unhandled rejection meanwhile). */
  const failure = (p: Promise<unknown>) => p.then(() => 'resolved', (e: Error) => e.message);
  /** Lets the runs queued so far start (a run starts in a microtask after the one before it ends). */
  const started = () => new Promise((resolve) => setImmediate(resolve));

  test('during a single run: that run ends with its result, calls queued behind it and later ones reject, then everything is freed', async () => {
    const before = liveBuffers(gpu.device);
    const own = await Network.load(gpu, smallModel(4, 'flatten'));
    const want = await gradCAM(own, img, { upsample: false });
    const errors = await uncaptured(async () => {
      const running = gradCAM(own, img, { upsample: false });
      await started();
      const queued = failure(own.classify(img));
      const done = own.destroy();
      expect(liveBuffers(gpu.device).buffers).toBeGreaterThan(before.buffers); // not while a run uses them
      const later = failure(gradCAM(own, img));
      const result = await running;
      expect(Array.from(result.maps[0].raw)).toEqual(Array.from(want.maps[0].raw));
      expect(await queued).toMatch(DESTROYED);
      expect(await later).toMatch(DESTROYED);
      await done;
    });
    expect(errors).toEqual([]);
    expect(liveBuffers(gpu.device)).toEqual(before);
  });

  test('during a call with an array: the batch running ends (its results reach onResult), the rest is cancelled, the call rejects; nothing leaks', async () => {
    const before = liveBuffers(gpu.device);
    const own = await Network.load(gpu, smallModel(4, 'flatten'));
    const pictures = [0, 1, 2, 3, 4, 5].map(() => randomPicture(r, 16, 12));
    const errors = await uncaptured(async () => {
      // Destroyed while its first batch runs.
      const seen: number[] = [];
      const call = failure(gradCAM(own, pictures, { batchSize: 2, onResult: (_, i) => seen.push(i) }));
      await started();
      const done = own.destroy();
      expect(await call).toMatch(DESTROYED);
      expect(seen).toEqual([0, 1]);
      await done;
      expect(liveBuffers(gpu.device)).toEqual(before);
    });
    expect(errors).toEqual([]);
    // Destroyed from onResult, between two batches (the network idle then): freed at once, the next batch refused.
    const other = await Network.load(gpu, smallModel(5, 'flatten'));
    const seen: number[] = [];
    let freed = false;
    const call = failure(other.classify(pictures, {
      batchSize: 4, onResult: (_, i) => {
        seen.push(i);
        if (i === 3) {
          void other.destroy();
          freed = liveBuffers(gpu.device).buffers === before.buffers;
        }
      },
    }));
    expect(await call).toMatch(DESTROYED);
    expect(seen).toEqual([0, 1, 2, 3]);
    expect(freed).toBe(true);
  });
});
