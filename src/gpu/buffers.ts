/**
 * The one place GPU buffers are made and freed. Every buffer of the engine (weights, activations,
 * gradients, uniforms, pictures, read-back staging, query resolution) is made by `createBuffer` and
 * freed by `destroyBuffer`, which keep one ledger per device: `liveBuffers(device)` is the count of
 * live buffers and their bytes. The memory soak test (test/memory-soak.test.ts) and `npm run bench --
 * --soak N` watch it to see whether anything grows from run to run or from load to load.
 */

export interface LiveBuffers {
  /** Buffers made and not yet destroyed. */
  buffers: number;
  /** Their sizes, summed, in bytes. */
  bytes: number;
}

/** Per device: each live buffer and its size. */
const ledgers = new WeakMap<GPUDevice, Map<GPUBuffer, number>>();
/** Each live buffer's ledger (so that destroyBuffer needs no device). */
const ledgerOf = new WeakMap<GPUBuffer, Map<GPUBuffer, number>>();

/** `device.createBuffer(descriptor)`, counted. */
export function createBuffer(device: GPUDevice, descriptor: GPUBufferDescriptor): GPUBuffer {
  const buffer = device.createBuffer(descriptor);
  let ledger = ledgers.get(device);
  if (!ledger) {
    ledger = new Map();
    ledgers.set(device, ledger);
  }
  ledger.set(buffer, descriptor.size);
  ledgerOf.set(buffer, ledger);
  return buffer;
}

/** `buffer.destroy()`, counted; destroying a buffer twice counts once (as WebGPU allows it). */
export function destroyBuffer(buffer: GPUBuffer | undefined): void {
  if (!buffer) return;
  ledgerOf.get(buffer)?.delete(buffer);
  ledgerOf.delete(buffer);
  buffer.destroy();
}

/** The buffers made on `device` by createBuffer and not yet destroyed. */
export function liveBuffers(device: GPUDevice): LiveBuffers {
  const ledger = ledgers.get(device);
  let bytes = 0;
  for (const b of ledger?.values() ?? []) bytes += b;
  return { buffers: ledger?.size ?? 0, bytes };
}
