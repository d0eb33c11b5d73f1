/**
 * The multi-pass runner: the methods that run the network many times (scorecam, ablationcam, the
 * input attributions) hand it jobs of passes; it runs them in batches of B passes (one GPU
 * submission each, B sized from the device's limits by the caller), checks the AbortSignal
 * between batches and reports progress after each. Nothing is read back per batch: a job writes
 * its per-pass results into GPU buffers (the caller reads or reduces them once at the end).
 *
 * Cancelling: a run whose signal is aborted rejects with AbortError before its next batch. The
 * batches already submitted finish on the GPU; the buffers they wrote are scratch that the next
 * run writes again, so the network stays usable.
 */
import { AbortError } from '../errors.ts';
import { checked } from '../gpu/dispatch.ts';
import type { PassProgress } from './types.ts';

export { AbortError };

/** One method's passes at one layer for one image: `passes` of them, `batch` per submission. */
export interface PassJob {
  /** The method the passes belong to (named in progress and errors). */
  method: string;
  passes: number;
  /** Passes per submission (≥ 1). */
  batch: number;
  /**
   * Encodes passes first … first + count − 1 (count ≤ batch) into `encoder`. It may write buffers
   * with queue.writeBuffer first (the queue orders them before this submission).
   */
  encode(encoder: GPUCommandEncoder, first: number, count: number): void;
}

export interface PassRunnerOptions {
  signal?: AbortSignal;
  onProgress?: (p: PassProgress) => void;
}

/** Runs the jobs of one call: `total` passes over all of them (the progress's denominator). */
export class PassRunner {
  done = 0;
  /** Milliseconds spent in `run` (CPU clock, submission to completion). */
  ms = 0;

  constructor(private readonly device: GPUDevice, readonly total: number, private readonly options: PassRunnerOptions = {}) {}

  /** Throws AbortError when the signal is aborted. */
  check(): void {
    const { signal } = this.options;
    if (signal?.aborted) throw new AbortError(signal.reason);
  }

  /** Runs a job's batches one after another, each waited for (progress is passes the GPU finished). */
  async run(job: PassJob): Promise<void> {
    const t0 = performance.now();
    try {
      for (let first = 0; first < job.passes; first += job.batch) {
        this.check();
        const count = Math.min(job.batch, job.passes - first);
        const encoder = this.device.createCommandEncoder({ label: `${job.method} passes ${first}…${first + count - 1}` });
        job.encode(encoder, first, count);
        await checked(this.device, `${job.method}: passes ${first}…${first + count - 1}`, () => this.device.queue.submit([encoder.finish()]));
        await this.device.queue.onSubmittedWorkDone();
        this.done += count;
        this.options.onProgress?.({ done: this.done, total: this.total, method: job.method });
      }
    } finally {
      this.ms += performance.now() - t0;
    }
    this.check();
  }
}
