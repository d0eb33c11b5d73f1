/**
 * Per-dispatch GPU times from timestamp queries (feature 'timestamp-query'): each dispatch runs in
 * its own compute pass with timestamps written at the pass's start and end. Profiling runs are
 * separate from normal runs (one pass per dispatch adds a little overhead).
 */
import type { Dispatch } from './dispatch.ts';
import { createBuffer, destroyBuffer } from './buffers.ts';

export interface DispatchTiming {
  dispatch: Dispatch;
  ms: number;
}

export class Profiler {
  private querySet: GPUQuerySet;
  private resolve: GPUBuffer;
  private staging: GPUBuffer;

  constructor(private device: GPUDevice, private capacity: number) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: capacity * 2 });
    this.resolve = createBuffer(device, { size: capacity * 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.staging = createBuffer(device, { size: capacity * 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** Runs the dispatches once, each timed, in one submission (after `before`, e.g. an input write). */
  async run(dispatches: readonly Dispatch[]): Promise<DispatchTiming[]> {
    if (dispatches.length > this.capacity) throw new Error(`profiler: ${dispatches.length} dispatches, capacity ${this.capacity}`);
    const encoder = this.device.createCommandEncoder({ label: 'profile' });
    dispatches.forEach((d, i) => {
      const pass = encoder.beginComputePass({
        label: d.label,
        timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
      });
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(...d.workgroups);
      pass.end();
    });
    const n = dispatches.length * 2;
    encoder.resolveQuerySet(this.querySet, 0, n, this.resolve, 0);
    encoder.copyBufferToBuffer(this.resolve, 0, this.staging, 0, n * 8);
    this.device.queue.submit([encoder.finish()]);
    await this.staging.mapAsync(GPUMapMode.READ, 0, n * 8);
    const t = new BigUint64Array(this.staging.getMappedRange(0, n * 8).slice(0));
    this.staging.unmap();
    return dispatches.map((dispatch, i) => ({ dispatch, ms: Number(t[2 * i + 1] - t[2 * i]) / 1e6 }));
  }

  destroy(): void {
    this.querySet.destroy();
    destroyBuffer(this.resolve);
    destroyBuffer(this.staging);
  }
}
