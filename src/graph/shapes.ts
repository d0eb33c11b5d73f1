/**
 * Output-size arithmetic shared by lowering (shape inference) and the tests: convolution and pooling
 * windows with ONNX pads, auto_pad and ceil_mode.
 */

/** Pads [begin, end] for ONNX auto_pad SAME_UPPER / SAME_LOWER on one axis. */
export function samePads(size: number, kernel: number, stride: number, upper: boolean): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  const small = Math.floor(total / 2);
  return upper ? [small, total - small] : [total - small, small];
}

/**
 * Window count along one axis. With ceil_mode the last window may hang over the end padding, but
 * it must start inside the input or the begin padding (the rule of PyTorch and the ONNX reference).
 */
export function windowCount(size: number, kernel: number, stride: number, padBegin: number, padEnd: number, ceil = false): number {
  const span = size + padBegin + padEnd - kernel;
  if (span < 0) return 0;
  let out = (ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  if (ceil && (out - 1) * stride >= size + padBegin) out -= 1;
  return out;
}
