/**
 * onnxruntime-web under Dawn in Node: its WebGPU code uploads from WebAssembly memory, and its
 * builds are the multi-threaded ones, whose memory is a SharedArrayBuffer (even with one thread).
 * Dawn's `GPUQueue.writeBuffer` (the `webgpu` npm package) rejects such a source:
 *
 *   - onnxruntime-web/webgpu (the native WebGPU EP, ort-wasm-simd-threaded.asyncify): passes a
 *     Uint8Array view on the shared memory → Dawn throws `Error: Invalid argument` at session creation;
 *   - the default build (JSEP, ort-wasm-simd-threaded.jsep): passes the SharedArrayBuffer itself
 *     with an offset and size → `TypeError: no overload matched for writeBuffer`.
 *
 * Browsers accept both. The fix: copy such a source (only the bytes written: the source may be
 * the whole wasm memory, hundreds of MB) into an ordinary ArrayBuffer first.
 */

export interface SharedWriteStats {
  /** writeBuffer calls whose source was a view on non-ArrayBuffer memory, or such memory itself. */
  views: number;
  raw: number;
  bytes: number;
}

const PATCHED = Symbol.for('gradcam-bench.writeBufferCopiesShared');

/** Patches `queueClass.prototype.writeBuffer` (once per process); returns live counters. */
export function copySharedWrites(queueClass: { prototype: GPUQueue }): SharedWriteStats {
  const proto = queueClass.prototype as GPUQueue & { [PATCHED]?: SharedWriteStats };
  if (proto[PATCHED]) return proto[PATCHED];
  const stats: SharedWriteStats = { views: 0, raw: 0, bytes: 0 };
  const original = proto.writeBuffer;
  proto.writeBuffer = function (this: GPUQueue, buffer: GPUBuffer, offset: number, data: BufferSource | SharedArrayBuffer, dataOffset?: number, size?: number) {
    const plain = data instanceof ArrayBuffer || (ArrayBuffer.isView(data) && data.buffer instanceof ArrayBuffer);
    if (plain) return original.call(this, buffer, offset, data as BufferSource, dataOffset, size);
    let copy: Uint8Array;
    if (ArrayBuffer.isView(data)) {
      // For a typed array, dataOffset and size count elements.
      const el = (data as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
      const from = (dataOffset ?? 0) * el;
      const bytes = size !== undefined ? size * el : data.byteLength - from;
      copy = new Uint8Array(data.buffer, data.byteOffset + from, bytes).slice();
      stats.views++;
    } else {
      const from = dataOffset ?? 0;
      const bytes = size ?? (data as ArrayBufferLike).byteLength - from;
      copy = new Uint8Array(data as ArrayBufferLike, from, bytes).slice();
      stats.raw++;
    }
    stats.bytes += copy.byteLength;
    return original.call(this, buffer, offset, copy.buffer as ArrayBuffer, 0, copy.byteLength);
  } as GPUQueue['writeBuffer'];
  proto[PATCHED] = stats;
  return stats;
}
