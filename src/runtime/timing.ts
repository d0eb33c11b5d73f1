/**
 * Stage timings (forward, backward, map) of a run. With 'timestamp-query' the GPU writes a timestamp
 * at the start and end of each stage's compute pass, read back with the results; without it, the
 * stages are submitted one by one and timed on the CPU with onSubmittedWorkDone.
 */
import type { Region } from './readback.ts';

export class StageTimer {
  readonly querySet?: GPUQuerySet;
  private resolveBuffer?: GPUBuffer;

  constructor(device: GPUDevice, readonly stages: number, useTimestamps: boolean) {
    if (useTimestamps) {
      this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 * stages });
      this.resolveBuffer = device.createBuffer({ size: 16 * stages, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    }
  }

  get gpuTimed(): boolean {
    return this.querySet !== undefined;
  }

  /** Timestamp writes for stage i, when timed on the GPU. */
  writes(i: number): { querySet: GPUQuerySet; begin: number; end: number } | undefined {
    return this.querySet ? { querySet: this.querySet, begin: 2 * i, end: 2 * i + 1 } : undefined;
  }

  resolve(encoder: GPUCommandEncoder): void {
    if (this.querySet) encoder.resolveQuerySet(this.querySet, 0, 2 * this.stages, this.resolveBuffer!, 0);
  }

  region(): Region[] {
    return this.resolveBuffer ? [{ buffer: this.resolveBuffer, offset: 0, bytes: 16 * this.stages }] : [];
  }

  /** Milliseconds per stage from the read-back timestamps. */
  static durations(data: ArrayBuffer): number[] {
    const t = new BigUint64Array(data);
    const out: number[] = [];
    for (let i = 0; i < t.length; i += 2) out.push(Number(t[i + 1] - t[i]) / 1e6);
    return out;
  }

  destroy(): void {
    this.querySet?.destroy();
    this.resolveBuffer?.destroy();
  }
}
