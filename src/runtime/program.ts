/**
 * A program is a recorded list of dispatches. Running one encodes them into a compute pass (or, when
 * profiling, one pass per dispatch with timestamps around it); nothing is created at run time.
 */
import type { Dispatch } from '../gpu/dispatch.ts';
import type { StageTimestamps } from './timing.ts';

export function encodeDispatches(pass: GPUComputePassEncoder, dispatches: readonly Dispatch[]): void {
  for (const d of dispatches) {
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, d.bindGroup);
    pass.dispatchWorkgroups(...d.workgroups);
  }
}

/** Encodes a stage as one compute pass, with timestamps at its start and end when `ts` is given. */
export function encodeStage(encoder: GPUCommandEncoder, label: string, dispatches: readonly Dispatch[],
  ts?: StageTimestamps): void {
  const pass = encoder.beginComputePass({
    label,
    timestampWrites: ts ? { querySet: ts.querySet, beginningOfPassWriteIndex: ts.begin, endOfPassWriteIndex: ts.end } : undefined,
  });
  encodeDispatches(pass, dispatches);
  pass.end();
}
