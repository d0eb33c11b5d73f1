/**
 * Timing a list of recorded dispatches alone, as the kernel lab does (bench/kernels.ts, peaks.ts):
 * all of them in one compute pass, one submission per run. With 'timestamp-query' a run's time is
 * the GPU's, from timestamps written at the pass's start and end; without, it is the wall time from
 * the submission until `onSubmittedWorkDone` resolves (the fence), which also counts the
 * submission's own overhead.
 *
 * Work shorter than MIN_RUN_MS (a small layer on a GPU: microseconds, near the timestamps'
 * resolution and far below a submission's overhead) is repeated: the dispatches `repeats` times over
 * in the one pass, `repeats` the smallest power of 4 (≤ MAX_REPEATS) that makes a run last
 * MIN_RUN_MS, and a sample is the run's time / repeats. Repeats run back to back on warm caches, as
 * in a forward pass where a layer's weights were just read; the row says how many there were.
 */
import type { Dispatch } from '../src/gpu/dispatch.ts';
import { encodeStage } from '../src/runtime/program.ts';
import { sample } from './stats.ts';

export type TimingMethod = 'timestamps' | 'wall';

/** A run shorter than this is repeated within its pass (see above). */
export const MIN_RUN_MS = 1;
export const MAX_REPEATS = 256;

export class DispatchTimer {
  readonly method: TimingMethod;
  private querySet?: GPUQuerySet;
  private resolved?: GPUBuffer;
  private staging?: GPUBuffer;

  constructor(private device: GPUDevice, timestamps: boolean) {
    this.method = timestamps ? 'timestamps' : 'wall';
    if (!timestamps) return;
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 });
    this.resolved = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.staging = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** One run of `dispatches` in one pass: its time in ms. */
  async once(dispatches: readonly Dispatch[]): Promise<number> {
    const encoder = this.device.createCommandEncoder({ label: 'kernel lab' });
    if (this.method === 'wall') {
      encodeStage(encoder, 'kernel lab', dispatches);
      const t0 = performance.now();
      this.device.queue.submit([encoder.finish()]);
      await this.device.queue.onSubmittedWorkDone();
      return performance.now() - t0;
    }
    encodeStage(encoder, 'kernel lab', dispatches, { querySet: this.querySet!, begin: 0, end: 1 });
    encoder.resolveQuerySet(this.querySet!, 0, 2, this.resolved!, 0);
    encoder.copyBufferToBuffer(this.resolved!, 0, this.staging!, 0, 16);
    this.device.queue.submit([encoder.finish()]);
    await this.staging!.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(this.staging!.getMappedRange().slice(0));
    this.staging!.unmap();
    return Number(t[1] - t[0]) / 1e6;
  }

  /**
   * `warmup` untimed runs (at least one: it also measures how many repeats a run needs), then
   * `runs` timed ones: the samples in ms per repetition of `dispatches`, and the repeats per run.
   */
  async times(dispatches: readonly Dispatch[], runs: number, warmup: number): Promise<{ samples: number[]; repeats: number }> {
    let repeats = 1;
    let t = await this.once(dispatches);
    for (let i = 1; i < warmup; i++) t = await this.once(dispatches);
    while (t < MIN_RUN_MS && repeats < MAX_REPEATS) {
      // Enough repeats for MIN_RUN_MS at the rate measured (a 0 reading: the most the step allows), a power of 4.
      const want = t > 0 ? (MIN_RUN_MS / t) * repeats : repeats * 16;
      repeats = Math.min(MAX_REPEATS, 4 ** Math.ceil(Math.log(Math.max(want, repeats * 4)) / Math.log(4)));
      t = await this.once(Array.from({ length: repeats }, () => dispatches).flat());
    }
    const all = repeats === 1 ? dispatches : Array.from({ length: repeats }, () => dispatches).flat();
    const samples = await sample(runs, 0, () => this.once(all));
    return { samples: samples.map((x) => x / repeats), repeats };
  }

  destroy(): void {
    this.querySet?.destroy();
    this.resolved?.destroy();
    this.staging?.destroy();
  }
}
