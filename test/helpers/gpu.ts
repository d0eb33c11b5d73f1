/** One WebGPU device per test file (Dawn; SwiftShader on machines without a GPU). */
import type { GpuContext } from '../../src/gpu/device.ts';
import { nodeGpu } from '../../src/gpu/node.ts';

let ctx: Promise<GpuContext> | undefined;

export function testGpu(): Promise<GpuContext> {
  ctx ??= nodeGpu(() => undefined);
  return ctx;
}
