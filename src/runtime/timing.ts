/**
 * Stage timings (forward, backward, map) of a run. With 'timestamp-query' the GPU writes a timestamp
 * at the start and end of each stage's compute pass, read back with the results; without it, the
 * stages are submitted one by one and timed on the CPU with onSubmittedWorkDone.
 */
import type { ReadbackPlan, ReadbackResult } from './readback.ts';
import { createBuffer, destroyBuffer } from '../gpu/buffers.ts';

/** Where the GPU writes a stage's timestamps: at the start and end of its compute pass. */
export interface StageTimestamps {
  querySet: GPUQuerySet;
  begin: number;
  end: number;
}

/** The read-back region of the timestamps. */
const TIMESTAMPS = 'timestamps';

export class StageTimer {
  readonly querySet?: GPUQuerySet;
  private resolveBuffer?: GPUBuffer;

  constructor(device: GPUDevice, readonly stages: number, useTimestamps: boolean) {
    if (useTimestamps) {
      this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 * stages });
      this.resolveBuffer = createBuffer(device, { size: 16 * stages, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    }
  }

  get gpuTimed(): boolean {
    return this.querySet !== undefined;
  }

  /** Timestamp writes for stage i, when timed on the GPU. */
  writes(i: number): StageTimestamps | undefined {
    return this.querySet ? { querySet: this.querySet, begin: 2 * i, end: 2 * i + 1 } : undefined;
  }

  resolve(encoder: GPUCommandEncoder): void {
    if (this.querySet) encoder.resolveQuerySet(this.querySet, 0, 2 * this.stages, this.resolveBuffer!, 0);
  }

  /** The bytes `addReadback` reads back. */
  get readbackBytes(): number {
    return this.resolveBuffer ? 16 * this.stages : 0;
  }

  /** Adds the timestamps to a read-back, when timed on the GPU. */
  addReadback(plan: ReadbackPlan): void {
    if (this.resolveBuffer) plan.add(TIMESTAMPS, { buffer: this.resolveBuffer, offset: 0, bytes: 16 * this.stages });
  }

  /** Milliseconds per stage from the read-back timestamps (timed on the GPU only). */
  durations(r: ReadbackResult): number[] {
    const t = r.u64(TIMESTAMPS);
    const out: number[] = [];
    for (let i = 0; i < t.length; i += 2) out.push(Number(t[i + 1] - t[i]) / 1e6);
    return out;
  }

  destroy(): void {
    this.querySet?.destroy();
    destroyBuffer(this.resolveBuffer);
  }
}
