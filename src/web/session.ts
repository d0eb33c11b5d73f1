/**
 * The page's GPU side: one device, one loaded Network, and a queue that runs GPU work one job at a
 * time (runs share buffers). A lost device is recovered in place: a new device is requested and the
 * same model compiled on it again, without reloading the page.
 */
import { type DeviceLimits, deviceLimits } from '../gpu/dispatch.ts';
import { requestGpu, describeAdapter, type GpuContext } from '../gpu/device.ts';
import type { LayerInfo } from '../gradcam/layers.ts';
import type { Layout } from '../image/recipes.ts';
import { Network } from '../gradcam/network.ts';
import type { TuneOptions, TuneProgress } from '../runtime/tune.ts';
import type { LoadedModel } from './models.ts';
import { planStore, type TuningFacts, tuningFacts } from './tuning.ts';

/** Why the page cannot run: no navigator.gpu, or no adapter behind it. */
export class NoWebGpu extends Error {
  constructor(readonly reason: 'no-api' | 'no-adapter', detail: string) {
    super(detail);
  }
}

/** A job was cut short by the loss of the device. */
export class DeviceLost extends Error {
  constructor() {
    super('the GPU device was lost');
  }
}

export interface SessionEvents {
  /** The device was lost; `recovered` settles once the engine runs again (or for good fails). */
  lost(info: GPUDeviceLostInfo, recovered: Promise<void>): void;
  /** "compiling kernels…" and the like. */
  progress(text: string): void;
}

async function acquire(): Promise<GpuContext> {
  if (!('gpu' in navigator) || !navigator.gpu) throw new NoWebGpu('no-api', 'navigator.gpu is missing');
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new NoWebGpu('no-adapter', 'navigator.gpu.requestAdapter() found no adapter');
  return requestGpu(navigator.gpu, navigator.gpu, adapter);
}

export class Session {
  private queue: Promise<unknown> = Promise.resolve();
  private net?: Network;
  private loaded?: LoadedModel;
  /** Set while the page itself destroys the device (that loss is not recovered). */
  private closing = false;
  /** Bumped on every (re)load, so a job can tell that the network it started with is gone. */
  generation = 0;

  private constructor(private gpu: GpuContext, private events: SessionEvents) {
    this.watch(gpu);
  }

  static async start(events: SessionEvents): Promise<Session> {
    return new Session(await acquire(), events);
  }

  get adapter(): string {
    return describeAdapter(this.gpu.adapter) + (this.gpu.adapter.isSoftware ? ' (software)' : '');
  }

  /** The device's buffer limits (the model picker checks a model against them before downloading it). */
  get limits(): DeviceLimits {
    return deviceLimits(this.gpu.device);
  }

  get hasTimestamps(): boolean {
    return this.gpu.features.timestamps;
  }

  get model(): LoadedModel | undefined {
    return this.loaded;
  }

  get classCount(): number {
    return this.net?.classCount ?? 0;
  }

  /** The loaded network's input as it runs (shape and layout, after the recipe's size and layout) and its class count. */
  get inputFacts(): { shape: number[]; layout: Layout; classes: number } {
    return { shape: this.net?.engine.inputShape ?? [], layout: this.net?.engine.layout ?? 'NCHW', classes: this.classCount };
  }

  /** Candidate feature layers of the loaded network, in forward order. */
  get layers(): LayerInfo[] {
    return this.net?.layers() ?? [];
  }

  /** How long lowering and compiling the loaded network took. */
  get compileMs(): number | undefined {
    return this.net?.compileMs;
  }

  get ready(): boolean {
    return this.net !== undefined;
  }

  /**
   * Runs `fn` with the loaded network, after every job queued before it. A job that fails because
   * the device was lost under it throws DeviceLost (the recovery runs it again).
   */
  run<T>(fn: (net: Network) => Promise<T>): Promise<T> {
    return this.serial(async () => {
      const { net, gpu } = this;
      if (!net) throw new Error('no model is loaded');
      try {
        return await fn(net);
      } catch (e) {
        const lost = await Promise.race([gpu.lost.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 250))]);
        throw lost ? new DeviceLost() : e;
      }
    });
  }

  /** Runs `fn` after every job queued before it. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Compiles `model` on the device (replacing the network in use). */
  load(model: LoadedModel): Promise<Network> {
    return this.serial(() => this.compile(model));
  }

  /** What the loaded network's conv variants come from (a tuned plan or the fixed rules); undefined before a model is loaded. */
  get tuning(): TuningFacts | undefined {
    return this.net && tuningFacts(this.net);
  }

  /**
   * The Tune button: times every conv variant on every layer shape of the loaded model on this
   * device, keeps the fastest in IndexedDB (a later load takes it with no timing) and compiles the
   * model again with them. If it fails, the model is compiled again as it was, and the error thrown.
   */
  tune(onProgress: (p: TuneProgress) => void): Promise<Network> {
    return this.serial(async () => {
      const model = this.loaded;
      if (!model) throw new Error('no model is loaded');
      try {
        return await this.compile(model, { force: true, onProgress });
      } catch (e) {
        await this.compile(model);
        throw e;
      }
    });
  }

  /** Compiles `model`; its conv variants from the plan tuned on this adapter and kept in IndexedDB, if any (never timed here: `tune` is the Tune button's). */
  private async compile(model: LoadedModel, tune: TuneOptions = { storedOnly: true }): Promise<Network> {
    this.net?.destroy();
    this.net = undefined;
    this.loaded = model;
    this.generation++;
    this.events.progress('compiling kernels…');
    this.net = await Network.load(this.gpu, model.model, { recipe: model.recipeChoice.recipe, labels: model.labels.labels, tune: { store: planStore, ...tune } });
    return this.net;
  }

  /**
   * The same model with other settings (the model card): a recipe that keeps the input's size and
   * layout is swapped in place (the preprocessing stage is keyed by the recipe, so the next run
   * makes a new one; no recompilation); anything else (size, layout, labels) compiles the model again.
   */
  reconfigure(model: LoadedModel): Promise<'in place' | 'recompiled'> {
    return this.serial(async () => {
      const before = this.loaded;
      const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
      const r = model.recipeChoice.recipe, old = before?.recipeChoice.recipe;
      if (this.net && before?.model === model.model && old && same(r.size, old.size) && same(r.layout, old.layout) && same(model.labels, before.labels)) {
        this.net.engine.recipe = r;
        this.loaded = model;
        this.generation++;
        return 'in place';
      }
      try {
        const net = await this.compile(model);
        // The engine's own picture check, on a 1×1 picture: a layout that leaves the input no 3
        // channels is refused now, not at every run after.
        net.engine.checkImage({ width: 1, height: 1, data: new Uint8Array(4) });
      } catch (e) {
        // A change the model cannot take (a layout that contradicts its shape): the model as it was, again.
        if (before) await this.compile(before);
        throw e;
      }
      return 'recompiled';
    });
  }

  private watch(gpu: GpuContext): void {
    gpu.lost.then((info) => {
      if (this.closing || gpu !== this.gpu) return;
      const recovered = this.serial(async () => {
        this.net = undefined;
        this.gpu = await acquire();
        this.watch(this.gpu);
        if (this.loaded) await this.compile(this.loaded);
      });
      this.events.lost(info, recovered);
    });
  }

  /** For tests: loses the device as a driver reset would. */
  loseDevice(): void {
    this.gpu.device.destroy();
  }

  close(): void {
    this.closing = true;
    this.net?.destroy();
    this.gpu.device.destroy();
  }
}
