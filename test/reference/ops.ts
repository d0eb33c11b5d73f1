/**
 * Every op the reference knows, in float64, forward and backward side by side (micrograd style).
 * A backward returns the gradient with respect to the input *activations* only: weights, biases and
 * shapes are constants of the Grad-CAM backward pass, so their gradients are never needed.
 *
 * Written to be read and trusted, not to be fast: plain loops over Float64Array. The concessions
 * to speed are loop order (the innermost loop walks contiguous memory) and, for convolutions (most
 * of a GoogLeNet's arithmetic), the im2col form: each output is a dot product of a weight row with
 * the input values it reads, gathered once into a contiguous row (a few times faster than updating
 * an output row per weight tap; float64 sums, in another order, are as exact at the tolerances the
 * reference judges). Backward loops mirror their forward loops: a forward *gathers*
 * `y[o] += w · x[i]`, its backward *scatters* `dx[i] += w · dy[o]` over exactly the same (o, i) pairs.
 */
import { numel, reshape, zeros, type Tensor } from './tensor.ts';

/** [top, left, bottom, right], the order of ONNX's `pads` for 2-D ops. */
export type Pads = [number, number, number, number];

function check(cond: boolean, msg: string): void {
  if (!cond) throw new Error(msg);
}

// ───────────────────────────── Conv (any group, dilations) ─────────────────────────────

/** group (default 1): C_in and C_out split into `group` groups, w is [C_out, C_in/group, KH, KW]; dilations default [1, 1]. */
export interface ConvParams { strides: [number, number]; pads: Pads; dilations?: [number, number]; group?: number }

function convOutputShape(xShape: number[], wShape: number[], p: ConvParams): number[] {
  const [N, C, H, W] = xShape;
  const [CO, CI, KH, KW] = wShape;
  const g = p.group ?? 1;
  const [dh, dw] = p.dilations ?? [1, 1];
  check(CI * g === C, `conv: input has ${C} channels, weight expects ${CI} per group × ${g} groups`);
  check(CO % g === 0, `conv: ${CO} output channels are not a multiple of group ${g}`);
  const [pt, pl, pb, pr] = p.pads;
  return [N, CO, Math.floor((H + pt + pb - (KH - 1) * dh - 1) / p.strides[0]) + 1, Math.floor((W + pl + pr - (KW - 1) * dw - 1) / p.strides[1]) + 1];
}

/**
 * Which input each output position reads through each weight tap. A convolution is a matrix product
 * over the "columns" j = (ci·KH + ky)·KW + kx (the layout of a row of w, ci over co's group) and the
 * output positions q = oy·OW + ox: src[q·J + j] is the offset of x[ci, oy·sh − pt + ky·dh,
 * ox·sw − pl + kx·dw] from the group's first input plane, or −1 where that is padding (zero).
 * conv gathers through it (im2col), convBackward scatters back through it: the same (output, input) pairs.
 */
function convTaps(xShape: number[], wShape: number[], yShape: number[], p: ConvParams): Int32Array {
  const [, , H, W] = xShape;
  const [, CI, KH, KW] = wShape;
  const [, , OH, OW] = yShape;
  const [sh, sw] = p.strides;
  const [dh, dw] = p.dilations ?? [1, 1];
  const [pt, pl] = p.pads;
  const J = CI * KH * KW;
  const src = new Int32Array(OH * OW * J);
  for (let oy = 0; oy < OH; oy++) {
    for (let ox = 0; ox < OW; ox++) {
      const row = (oy * OW + ox) * J;
      for (let ci = 0; ci < CI; ci++) {
        for (let ky = 0; ky < KH; ky++) {
          for (let kx = 0; kx < KW; kx++) {
            const iy = oy * sh - pt + ky * dh, ix = ox * sw - pl + kx * dw;
            src[row + (ci * KH + ky) * KW + kx] = iy >= 0 && iy < H && ix >= 0 && ix < W ? (ci * H + iy) * W + ix : -1;
          }
        }
      }
    }
  }
  return src;
}

/**
 * y[n,co,oy,ox] = b[co] + Σ_{ci,ky,kx} w[co,ci,ky,kx] · x[n, g·C_in/group + ci, oy·sh − pt + ky·dh, ox·sw − pl + kx·dw]
 * (zero outside x), g = co's group (co / (C_out/group)), ci over the group's C_in/group channels.
 * Computed as y[co, q] = b[co] + Σ_j w[co, j] · col[q, j], col[q, j] = x at src[q·J + j] (convTaps):
 * the innermost loop is a dot product over two contiguous rows, in the order (ci, ky, kx) of the formula.
 */
export function conv(x: Tensor, w: Tensor, b: Tensor | null, p: ConvParams): Tensor {
  const y = zeros(convOutputShape(x.shape, w.shape, p));
  const [N, C, H, W] = x.shape;
  const [CO, CI] = w.shape;
  const Q = y.shape[2] * y.shape[3], J = numel(w.shape.slice(1)), G = p.group ?? 1, coPerGroup = CO / G;
  const src = convTaps(x.shape, w.shape, y.shape, p);
  const col = new Float64Array(Q * J);
  const xd = x.data, wd = w.data, yd = y.data;
  const bias = (co: number) => (b ? b.data[co] : 0);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const xBase = (n * C + g * CI) * H * W;
      for (let i = 0; i < col.length; i++) col[i] = src[i] < 0 ? 0 : xd[xBase + src[i]];
      const coEnd = (g + 1) * coPerGroup;
      // Positions in tiles of 32, whose rows of col stay in cache while every output channel reads them;
      // four output channels per pass over a row: four independent sums, each in the order of the formula.
      for (let qt = 0; qt < Q; qt += 32) {
        const qEnd = Math.min(Q, qt + 32);
        let co = g * coPerGroup;
        for (; co + 4 <= coEnd; co += 4) {
          const w0 = co * J, w1 = w0 + J, w2 = w1 + J, w3 = w2 + J, y0 = (n * CO + co) * Q;
          for (let q = qt; q < qEnd; q++) {
            let s0 = bias(co), s1 = bias(co + 1), s2 = bias(co + 2), s3 = bias(co + 3);
            for (let j = 0, r = q * J; j < J; j++) {
              const c = col[r + j];
              s0 += wd[w0 + j] * c;
              s1 += wd[w1 + j] * c;
              s2 += wd[w2 + j] * c;
              s3 += wd[w3 + j] * c;
            }
            yd[y0 + q] = s0;
            yd[y0 + Q + q] = s1;
            yd[y0 + 2 * Q + q] = s2;
            yd[y0 + 3 * Q + q] = s3;
          }
        }
        for (; co < coEnd; co++) { // the group's last 1–3 channels, one at a time
          const wRow = co * J, yPlane = (n * CO + co) * Q;
          for (let q = qt; q < qEnd; q++) {
            let sum = bias(co);
            for (let j = 0, r = q * J; j < J; j++) sum += wd[wRow + j] * col[r + j];
            yd[yPlane + q] = sum;
          }
        }
      }
    }
  }
  return y;
}

/**
 * dx = Σ w · dy over exactly the (output, input, weight) triples of conv: dcol[q, j] = Σ_co dy[co, q] · w[co, j]
 * (co over j's group; both read transposed so that the sum runs over contiguous rows), then each
 * dcol[q, j] is added to the input element col[q, j] was read from (src; padding gets nothing).
 */
export function convBackward(dy: Tensor, xShape: number[], w: Tensor, p: ConvParams): Tensor {
  const dx = zeros(xShape);
  const [N, C, H, W] = xShape;
  const [CO, CI] = w.shape;
  const Q = dy.shape[2] * dy.shape[3], J = numel(w.shape.slice(1)), G = p.group ?? 1, K = CO / G;
  const src = convTaps(xShape, w.shape, dy.shape, p);
  const wT = new Float64Array(J * K), dyT = new Float64Array(Q * K), dcol = new Float64Array(Q * J);
  const dxd = dx.data, dyd = dy.data, wd = w.data;
  for (let g = 0; g < G; g++) {
    for (let k = 0; k < K; k++) for (let j = 0; j < J; j++) wT[j * K + k] = wd[(g * K + k) * J + j];
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) for (let q = 0; q < Q; q++) dyT[q * K + k] = dyd[(n * CO + g * K + k) * Q + q];
      // As conv's loops: positions in tiles of 32, four columns per pass over a row of dyT.
      for (let qt = 0; qt < Q; qt += 32) {
        const qEnd = Math.min(Q, qt + 32);
        let j = 0;
        for (; j + 4 <= J; j += 4) {
          const c0 = j * K, c1 = c0 + K, c2 = c1 + K, c3 = c2 + K;
          for (let q = qt; q < qEnd; q++) {
            let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (let k = 0, a = q * K; k < K; k++) {
              const d = dyT[a + k];
              s0 += d * wT[c0 + k];
              s1 += d * wT[c1 + k];
              s2 += d * wT[c2 + k];
              s3 += d * wT[c3 + k];
            }
            dcol[q * J + j] = s0;
            dcol[q * J + j + 1] = s1;
            dcol[q * J + j + 2] = s2;
            dcol[q * J + j + 3] = s3;
          }
        }
        for (; j < J; j++) {
          for (let q = qt; q < qEnd; q++) {
            let sum = 0;
            for (let k = 0, a = q * K, c = j * K; k < K; k++) sum += dyT[a + k] * wT[c + k];
            dcol[q * J + j] = sum;
          }
        }
      }
      const xBase = (n * C + g * CI) * H * W;
      for (let i = 0; i < dcol.length; i++) if (src[i] >= 0) dxd[xBase + src[i]] += dcol[i];
    }
  }
  return dx;
}

// ───────────────────────────── pooling ─────────────────────────────

/** dilations (MaxPool only; default [1, 1]): tap (ky, kx) of a window reads row start + ky·dh, column start + kx·dw. */
export interface PoolParams { kernel: [number, number]; strides: [number, number]; pads: Pads; ceilMode: boolean; dilations?: [number, number] }

/**
 * ONNX's pooled length: floor (or ceil with ceil_mode) of (in + pads − k) / s, plus 1. With
 * ceil_mode a last window that would *start* inside the end padding is dropped (the rule of ONNX
 * and PyTorch; it matters when the end padding is large), so every window overlaps the input.
 */
export function pooledSize(inSize: number, k: number, s: number, padBegin: number, padEnd: number, ceilMode: boolean): number {
  const span = inSize + padBegin + padEnd - k;
  let out = (ceilMode ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  if (ceilMode && (out - 1) * s >= inSize + padBegin) out--;
  return out;
}

/**
 * Calls visit(yIndex, rowStart, rowEnd, colStart, colEnd, unclippedArea, windowStart) for each output of a 2-D
 * pooling: the window clipped to the input ([start, end) in input coordinates), and the window's
 * area clipped only to the *padded* input (what count_include_pad=1 divides by), and its unclipped
 * first row and column. Called once per output (not per element), so the callback costs nothing that matters.
 * With dilations the window's extent is (k − 1)·d + 1 (its taps: maxPoolTaps).
 */
function forEachWindow(
  xShape: number[], p: PoolParams,
  visit: (yIndex: number, xPlane: number, y0: number, y1: number, x0: number, x1: number, paddedArea: number, ys: number, xs: number) => void,
): number[] {
  const [N, C, H, W] = xShape;
  const [dh, dw] = p.dilations ?? [1, 1];
  const [kh, kw] = [(p.kernel[0] - 1) * dh + 1, (p.kernel[1] - 1) * dw + 1];
  const [sh, sw] = p.strides;
  const [pt, pl, pb, pr] = p.pads;
  const OH = pooledSize(H, kh, sh, pt, pb, p.ceilMode);
  const OW = pooledSize(W, kw, sw, pl, pr, p.ceilMode);
  for (let nc = 0; nc < N * C; nc++) {
    for (let oy = 0; oy < OH; oy++) {
      const ys = oy * sh - pt;
      const ye = Math.min(ys + kh, H + pb); // with ceil_mode a window may hang past the padded input
      for (let ox = 0; ox < OW; ox++) {
        const xs = ox * sw - pl;
        const xe = Math.min(xs + kw, W + pr);
        visit((nc * OH + oy) * OW + ox, nc * H * W,
          Math.max(ys, 0), Math.min(ye, H), Math.max(xs, 0), Math.min(xe, W), (ye - ys) * (xe - xs), ys, xs);
      }
    }
  }
  return [N, C, OH, OW];
}

/** The in-plane indices of a max-pool window's taps inside the input, in row-major order: rows ys + ky·dh, columns xs + kx·dw. */
function maxPoolTaps(H: number, W: number, ys: number, xs: number, p: PoolParams): number[] {
  const [dh, dw] = p.dilations ?? [1, 1];
  const taps: number[] = [];
  for (let ky = 0; ky < p.kernel[0]; ky++) {
    const iy = ys + ky * dh;
    if (iy < 0 || iy >= H) continue;
    for (let kx = 0; kx < p.kernel[1]; kx++) {
      const ix = xs + kx * dw;
      if (ix >= 0 && ix < W) taps.push(iy * W + ix);
    }
  }
  return taps;
}

/** Flat index (within the plane) of the window's maximum; ties go to the first in row-major order (PyTorch). */
function argMax(x: Float64Array, plane: number, taps: number[]): number {
  let best = -1;
  let bestValue = -Infinity;
  for (const i of taps) {
    const v = x[plane + i];
    if (best < 0 || v > bestValue) { best = i; bestValue = v; } // strict '>': the first maximum stays
  }
  return best;
}

/** y = max of the window over real input elements only (padding never wins). */
export function maxPool(x: Tensor, p: PoolParams): Tensor {
  const [, , H, W] = x.shape;
  const out: number[] = [];
  const shape = forEachWindow(x.shape, p, (o, plane, _y0, _y1, _x0, _x1, _area, ys, xs) => {
    const i = argMax(x.data, plane, maxPoolTaps(H, W, ys, xs, p));
    out[o] = i < 0 ? -Infinity : x.data[plane + i];
  });
  return { shape, data: Float64Array.from(out) };
}

/** Each output's gradient goes to its window's arg-max (summed where windows overlap). */
export function maxPoolBackward(dy: Tensor, x: Tensor, p: PoolParams): Tensor {
  const [, , H, W] = x.shape;
  const dx = zeros(x.shape);
  forEachWindow(x.shape, p, (o, plane, _y0, _y1, _x0, _x1, _area, ys, xs) => {
    const i = argMax(x.data, plane, maxPoolTaps(H, W, ys, xs, p));
    if (i >= 0) dx.data[plane + i] += dy.data[o];
  });
  return dx;
}

/**
 * y = (sum of the window's real elements) / divisor, divisor = the window's area clipped to the
 * padded input (count_include_pad=1) or to the input itself (count_include_pad=0). No dilations.
 */
export function averagePool(x: Tensor, p: PoolParams, countIncludePad: boolean): Tensor {
  check((p.dilations ?? [1, 1]).every((d) => d === 1), 'averagePool: dilations are not supported');
  const W = x.shape[3];
  const out: number[] = [];
  const shape = forEachWindow(x.shape, p, (o, plane, y0, y1, x0, x1, paddedArea) => {
    let sum = 0;
    for (let iy = y0; iy < y1; iy++) for (let ix = x0; ix < x1; ix++) sum += x.data[plane + iy * W + ix];
    out[o] = sum / (countIncludePad ? paddedArea : (y1 - y0) * (x1 - x0));
  });
  return { shape, data: Float64Array.from(out) };
}

export function averagePoolBackward(dy: Tensor, xShape: number[], p: PoolParams, countIncludePad: boolean): Tensor {
  const W = xShape[3];
  const dx = zeros(xShape);
  forEachWindow(xShape, p, (o, plane, y0, y1, x0, x1, paddedArea) => {
    const g = dy.data[o] / (countIncludePad ? paddedArea : (y1 - y0) * (x1 - x0));
    for (let iy = y0; iy < y1; iy++) for (let ix = x0; ix < x1; ix++) dx.data[plane + iy * W + ix] += g;
  });
  return dx;
}

/** y[n,c,0,0] = max over (h,w) of x[n,c,h,w] (GlobalMaxPool; ReduceMax over the spatial axes). */
export function globalMaxPool(x: Tensor): Tensor {
  const [, , H, W] = x.shape;
  return maxPool(x, { kernel: [H, W], strides: [1, 1], pads: [0, 0, 0, 0], ceilMode: false });
}

/** The gradient goes to each plane's maximum (the first in row-major order on a tie). */
export function globalMaxPoolBackward(dy: Tensor, x: Tensor): Tensor {
  const [, , H, W] = x.shape;
  return maxPoolBackward(reshape(dy, [...x.shape.slice(0, 2), 1, 1]), x, { kernel: [H, W], strides: [1, 1], pads: [0, 0, 0, 0], ceilMode: false });
}

/** y[n,c,0,0] = mean over (h,w) of x[n,c,h,w]. */
export function globalAveragePool(x: Tensor): Tensor {
  const [N, C] = x.shape;
  const hw = numel(x.shape.slice(2));
  const y = zeros([N, C, ...x.shape.slice(2).map(() => 1)]);
  for (let nc = 0; nc < N * C; nc++) {
    let sum = 0;
    for (let i = 0; i < hw; i++) sum += x.data[nc * hw + i];
    y.data[nc] = sum / hw;
  }
  return y;
}

export function globalAveragePoolBackward(dy: Tensor, xShape: number[]): Tensor {
  const hw = numel(xShape.slice(2));
  const dx = zeros(xShape);
  for (let i = 0; i < dx.data.length; i++) dx.data[i] = dy.data[Math.floor(i / hw)] / hw;
  return dx;
}

// ───────────────────────────── LRN (across channels) ─────────────────────────────

export interface LrnParams { size: number; alpha: number; beta: number; bias: number }

/** ONNX's window of channels summed for output channel c: [c − floor((size−1)/2), c + ceil((size−1)/2)], clipped. */
function lrnWindow(c: number, C: number, size: number): [number, number] {
  return [Math.max(0, c - Math.floor((size - 1) / 2)), Math.min(C - 1, c + Math.ceil((size - 1) / 2))];
}

/** d[n,c,h,w] = bias + alpha/size · Σ_{i ∈ window(c)} x[n,i,h,w]²  (the denominator before the power). */
function lrnDenominator(x: Tensor, p: LrnParams): Float64Array {
  const [N, C] = x.shape;
  const hw = numel(x.shape.slice(2));
  const d = new Float64Array(x.data.length);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const [lo, hi] = lrnWindow(c, C, p.size);
      const out = (n * C + c) * hw;
      for (let i = lo; i <= hi; i++) {
        const src = (n * C + i) * hw;
        for (let j = 0; j < hw; j++) d[out + j] += x.data[src + j] * x.data[src + j];
      }
      for (let j = 0; j < hw; j++) d[out + j] = p.bias + (p.alpha / p.size) * d[out + j];
    }
  }
  return d;
}

/** y = x / d^beta. */
export function lrn(x: Tensor, p: LrnParams): Tensor {
  const d = lrnDenominator(x, p);
  const y = zeros(x.shape);
  for (let i = 0; i < y.data.length; i++) y.data[i] = x.data[i] * Math.pow(d[i], -p.beta);
  return y;
}

/**
 * y_c = x_c·d_c^−β with d_c = bias + (α/size)·Σ_{i∈window(c)} x_i², so
 *   ∂y_c/∂x_j = [c = j]·d_c^−β − 2β(α/size)·x_c·x_j·d_c^(−β−1)·[j ∈ window(c)].
 * The second term is scattered from each c to the j of *its* window, which stays right for even
 * sizes, where window(c) is not symmetric and "j ∈ window(c)" is not "c ∈ window(j)".
 */
export function lrnBackward(dy: Tensor, x: Tensor, p: LrnParams): Tensor {
  const [N, C] = x.shape;
  const hw = numel(x.shape.slice(2));
  const d = lrnDenominator(x, p);
  const dx = zeros(x.shape);
  const k = 2 * p.beta * (p.alpha / p.size);
  for (let i = 0; i < dx.data.length; i++) dx.data[i] = dy.data[i] * Math.pow(d[i], -p.beta);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const [lo, hi] = lrnWindow(c, C, p.size);
      const oc = (n * C + c) * hw;
      for (let j = lo; j <= hi; j++) {
        const oj = (n * C + j) * hw;
        for (let q = 0; q < hw; q++) {
          dx.data[oj + q] -= k * x.data[oj + q] * dy.data[oc + q] * x.data[oc + q] * Math.pow(d[oc + q], -p.beta - 1);
        }
      }
    }
  }
  return dx;
}

// ───────────────────────────── Gemm, MatMul ─────────────────────────────

export interface GemmParams { transA: boolean; transB: boolean; alpha: number; beta: number }

/** Y[m,n] = alpha · Σ_k A'[m,k]·B'[k,n] + beta · C[m,n], A' = transA ? Aᵀ : A (same for B); C broadcasts. */
export function gemm(a: Tensor, b: Tensor, c: Tensor | null, p: GemmParams): Tensor {
  const [M, K] = p.transA ? [a.shape[1], a.shape[0]] : a.shape;
  const [KB, N] = p.transB ? [b.shape[1], b.shape[0]] : b.shape;
  check(K === KB, `gemm: inner dimensions ${K} and ${KB} differ`);
  // C is [], [N], [1,N], [M,1] or [M,N]: read its row/column 0 where that dimension is 1.
  const cRows = c && c.shape.length === 2 ? c.shape[0] : 1;
  const cCols = c && c.shape.length >= 1 ? c.shape[c.shape.length - 1] : 1;
  const y = zeros([M, N]);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let sum = 0;
      for (let k = 0; k < K; k++) {
        const av = p.transA ? a.data[k * M + m] : a.data[m * K + k];
        const bv = p.transB ? b.data[n * K + k] : b.data[k * N + n];
        sum += av * bv;
      }
      const cv = c ? c.data[(cRows === 1 ? 0 : m) * cCols + (cCols === 1 ? 0 : n)] : 0;
      y.data[m * N + n] = p.alpha * sum + p.beta * cv;
    }
  }
  return y;
}

/** dA'[m,k] = alpha · Σ_n dY[m,n]·B'[k,n], written back transposed when transA. */
export function gemmBackward(dy: Tensor, aShape: number[], b: Tensor, p: GemmParams): Tensor {
  const [M, K] = p.transA ? [aShape[1], aShape[0]] : aShape;
  const N = dy.shape[1];
  const da = zeros(aShape);
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      let sum = 0;
      for (let n = 0; n < N; n++) sum += dy.data[m * N + n] * (p.transB ? b.data[n * K + k] : b.data[k * N + n]);
      da.data[p.transA ? k * M + m : m * K + k] = p.alpha * sum;
    }
  }
  return da;
}

/** 2-D MatMul is a Gemm without transposes, scaling or bias. */
export const matmul = (a: Tensor, b: Tensor): Tensor => gemm(a, b, null, { transA: false, transB: false, alpha: 1, beta: 0 });
export const matmulBackward = (dy: Tensor, aShape: number[], b: Tensor): Tensor =>
  gemmBackward(dy, aShape, b, { transA: false, transB: false, alpha: 1, beta: 0 });

// ───────────────────────────── Add (numpy broadcasting) ─────────────────────────────

export function broadcastShape(a: number[], b: number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    check(da === db || da === 1 || db === 1, `add: shapes [${a}] and [${b}] do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** For each element of the broadcast output, the flat index of the input element it reads. */
export function broadcastOffsets(shape: number[], outShape: number[]): Int32Array {
  const r = outShape.length;
  const strides = new Array<number>(r).fill(0); // 0 along broadcast (and missing leading) dimensions
  for (let d = shape.length - 1, s = 1; d >= 0; d--) {
    strides[r - shape.length + d] = shape[d] === 1 ? 0 : s;
    s *= shape[d];
  }
  const offsets = new Int32Array(numel(outShape));
  for (let i = 0; i < offsets.length; i++) {
    let rest = i;
    let off = 0;
    for (let d = r - 1; d >= 0; d--) {
      off += (rest % outShape[d]) * strides[d];
      rest = Math.floor(rest / outShape[d]);
    }
    offsets[i] = off;
  }
  return offsets;
}

export function add(a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShape(a.shape, b.shape);
  const ia = broadcastOffsets(a.shape, shape);
  const ib = broadcastOffsets(b.shape, shape);
  const y = zeros(shape);
  for (let i = 0; i < y.data.length; i++) y.data[i] = a.data[ia[i]] + b.data[ib[i]];
  return y;
}

/** Each input gets dy summed over the dimensions it was broadcast along. */
export function addBackward(dy: Tensor, aShape: number[], bShape: number[]): [Tensor, Tensor] {
  const grads: [Tensor, Tensor] = [zeros(aShape), zeros(bShape)];
  [aShape, bShape].forEach((shape, k) => {
    const offsets = broadcastOffsets(shape, dy.shape);
    for (let i = 0; i < dy.data.length; i++) grads[k].data[offsets[i]] += dy.data[i];
  });
  return grads;
}

// ───────────────────────────── Relu, Softmax, BatchNormalization ─────────────────────────────

export function relu(x: Tensor): Tensor {
  const y = zeros(x.shape);
  for (let i = 0; i < y.data.length; i++) y.data[i] = x.data[i] > 0 ? x.data[i] : 0;
  return y;
}

/** dx = dy where x > 0 (the derivative at exactly 0 is taken as 0, as PyTorch does). */
export function reluBackward(dy: Tensor, x: Tensor): Tensor {
  const dx = zeros(x.shape);
  for (let i = 0; i < dx.data.length; i++) dx.data[i] = x.data[i] > 0 ? dy.data[i] : 0;
  return dx;
}

/** The logistic sigmoid 1 / (1 + e^(−x)). */
export function sigmoid(x: Tensor): Tensor {
  const y = zeros(x.shape);
  for (let i = 0; i < y.data.length; i++) y.data[i] = 1 / (1 + Math.exp(-x.data[i]));
  return y;
}

/** dx = dy · y · (1 − y), y = sigmoid(x). */
export function sigmoidBackward(dy: Tensor, y: Tensor): Tensor {
  const dx = zeros(y.shape);
  for (let i = 0; i < dx.data.length; i++) dx.data[i] = dy.data[i] * y.data[i] * (1 - y.data[i]);
  return dx;
}

/** y = min(max(x, lo), hi) (ONNX Clip: hi wins when lo > hi). */
export function clip(x: Tensor, lo: number, hi: number): Tensor {
  const y = zeros(x.shape);
  for (let i = 0; i < y.data.length; i++) y.data[i] = Math.min(Math.max(x.data[i], lo), hi);
  return y;
}

/** dx = dy where lo < x < hi (strictly: PyTorch's hardtanh, which nn.ReLU6 is, and Relu's rule at 0). */
export function clipBackward(dy: Tensor, x: Tensor, lo: number, hi: number): Tensor {
  const dx = zeros(x.shape);
  for (let i = 0; i < dx.data.length; i++) dx.data[i] = x.data[i] > lo && x.data[i] < hi ? dy.data[i] : 0;
  return dx;
}

/** Softmax over each row of `inner` contiguous elements (the last axis, or ONNX < 13's flattened tail). */
export function softmax(x: Tensor, inner: number): Tensor {
  const y = zeros(x.shape);
  for (let row = 0; row < x.data.length; row += inner) {
    let max = -Infinity;
    for (let i = 0; i < inner; i++) max = Math.max(max, x.data[row + i]);
    let sum = 0;
    for (let i = 0; i < inner; i++) sum += (y.data[row + i] = Math.exp(x.data[row + i] - max)); // stable: exponents ≤ 0
    for (let i = 0; i < inner; i++) y.data[row + i] /= sum;
  }
  return y;
}

/** dx_i = y_i · (dy_i − Σ_j dy_j·y_j), from ∂y_j/∂x_i = y_j(δ_ij − y_i). */
export function softmaxBackward(dy: Tensor, y: Tensor, inner: number): Tensor {
  const dx = zeros(y.shape);
  for (let row = 0; row < y.data.length; row += inner) {
    let dot = 0;
    for (let i = 0; i < inner; i++) dot += dy.data[row + i] * y.data[row + i];
    for (let i = 0; i < inner; i++) dx.data[row + i] = y.data[row + i] * (dy.data[row + i] - dot);
  }
  return dx;
}

export interface BatchNormParams { scale: Tensor; bias: Tensor; mean: Tensor; variance: Tensor; epsilon: number }

/** Inference form: y = scale·(x − mean)/√(var + ε) + B, per channel (axis 1). */
export function batchNorm(x: Tensor, p: BatchNormParams): Tensor {
  const [N, C] = x.shape;
  const hw = numel(x.shape.slice(2));
  const y = zeros(x.shape);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const k = p.scale.data[c] / Math.sqrt(p.variance.data[c] + p.epsilon);
      const base = (n * C + c) * hw;
      for (let i = 0; i < hw; i++) y.data[base + i] = k * (x.data[base + i] - p.mean.data[c]) + p.bias.data[c];
    }
  }
  return y;
}

export function batchNormBackward(dy: Tensor, p: BatchNormParams): Tensor {
  const [N, C] = dy.shape;
  const hw = numel(dy.shape.slice(2));
  const dx = zeros(dy.shape);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const k = p.scale.data[c] / Math.sqrt(p.variance.data[c] + p.epsilon);
      const base = (n * C + c) * hw;
      for (let i = 0; i < hw; i++) dx.data[base + i] = k * dy.data[base + i];
    }
  }
  return dx;
}

// ───────────────────────────── Concat, Flatten, Reshape ─────────────────────────────

/** Concatenation along `axis` (≥ 0): each input contributes a block of `shape[axis]·inner` per outer index. */
export function concat(xs: Tensor[], axis: number): Tensor {
  const shape = [...xs[0].shape];
  shape[axis] = xs.reduce((s, x) => s + x.shape[axis], 0);
  const outer = numel(shape.slice(0, axis));
  const inner = numel(shape.slice(axis + 1));
  const y = zeros(shape);
  let offset = 0; // where this input's block starts within one outer slice of y
  for (const x of xs) {
    const block = x.shape[axis] * inner;
    for (let o = 0; o < outer; o++) y.data.set(x.data.subarray(o * block, (o + 1) * block), o * shape[axis] * inner + offset);
    offset += block;
  }
  return y;
}

/** The backward of a concatenation is the matching slices of dy. */
export function concatBackward(dy: Tensor, shapes: number[][], axis: number): Tensor[] {
  const outer = numel(dy.shape.slice(0, axis));
  const inner = numel(dy.shape.slice(axis + 1));
  let offset = 0;
  return shapes.map((shape) => {
    const dx = zeros(shape);
    const block = shape[axis] * inner;
    for (let o = 0; o < outer; o++) {
      const start = o * dy.shape[axis] * inner + offset;
      dx.data.set(dy.data.subarray(start, start + block), o * block);
    }
    offset += block;
    return dx;
  });
}

/** ONNX Flatten: [d0..d(axis−1)] × [d(axis)..] as a 2-D shape. */
export function flattenShape(shape: number[], axis: number): number[] {
  return [numel(shape.slice(0, axis)), numel(shape.slice(axis))];
}

/** ONNX Reshape's target: 0 copies the input's dimension (unless allowzero), −1 is inferred. */
export function reshapeShape(inShape: number[], spec: number[], allowZero: boolean): number[] {
  const out = spec.map((d, i) => (d === 0 && !allowZero ? inShape[i] : d));
  const known = numel(out.filter((d) => d !== -1));
  const inferred = out.indexOf(-1);
  if (inferred >= 0) out[inferred] = numel(inShape) / known;
  check(numel(out) === numel(inShape) && Number.isInteger(out[inferred] ?? 0), `reshape: [${inShape}] cannot become [${spec}]`);
  return out;
}

/** Flatten, Reshape, Dropout (inference) and Identity move no data: backward is dy in the input's shape. */
export const viewBackward = (dy: Tensor, xShape: number[]): Tensor => reshape(dy, xShape);

// ───────────────────────────── ReduceMean, ReduceMax ─────────────────────────────

/** For each element of x, the flat index of the output element it reduces into (axes ≥ 0, output with keepdims). */
function reducedIndex(shape: number[], axes: number[]): { outShape: number[]; into: Int32Array } {
  const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const into = new Int32Array(numel(shape));
  for (let i = 0; i < into.length; i++) {
    let rest = i, o = 0, stride = 1;
    for (let d = shape.length - 1; d >= 0; d--) {
      const c = rest % shape[d];
      rest = Math.floor(rest / shape[d]);
      if (!axes.includes(d)) o += c * stride;
      stride *= outShape[d];
    }
    into[i] = o;
  }
  return { outShape, into };
}

const dropAxes = (shape: number[], axes: number[], keepDims: boolean) => (keepDims ? shape : shape.filter((_, i) => !axes.includes(i)));

/** ReduceMean over `axes` (≥ 0): the mean of each slice; keepDims keeps the reduced axes as 1. */
export function reduceMean(x: Tensor, axes: number[], keepDims: boolean): Tensor {
  const { outShape, into } = reducedIndex(x.shape, axes);
  const count = x.data.length / numel(outShape);
  const y = zeros(dropAxes(outShape, axes, keepDims));
  for (let i = 0; i < x.data.length; i++) y.data[into[i]] += x.data[i];
  for (let o = 0; o < y.data.length; o++) y.data[o] /= count;
  return y;
}

export function reduceMeanBackward(dy: Tensor, xShape: number[], axes: number[]): Tensor {
  const { outShape, into } = reducedIndex(xShape, axes);
  const count = numel(xShape) / numel(outShape);
  const dx = zeros(xShape);
  for (let i = 0; i < dx.data.length; i++) dx.data[i] = dy.data[into[i]] / count;
  return dx;
}

/** For each output, the flat index of x's first maximum (row-major order) among the elements reduced into it. */
function reduceArgMax(x: Tensor, axes: number[]): { outShape: number[]; at: Int32Array } {
  const { outShape, into } = reducedIndex(x.shape, axes);
  const at = new Int32Array(numel(outShape)).fill(-1);
  for (let i = 0; i < x.data.length; i++) if (at[into[i]] < 0 || x.data[i] > x.data[at[into[i]]]) at[into[i]] = i;
  return { outShape, at };
}

/** ReduceMax over `axes` (≥ 0). */
export function reduceMax(x: Tensor, axes: number[], keepDims: boolean): Tensor {
  const { outShape, at } = reduceArgMax(x, axes);
  return { shape: dropAxes(outShape, axes, keepDims), data: Float64Array.from(at, (i) => x.data[i]) };
}

/** The gradient goes to each slice's first maximum (as max-pool's). */
export function reduceMaxBackward(dy: Tensor, x: Tensor, axes: number[]): Tensor {
  const { at } = reduceArgMax(x, axes);
  const dx = zeros(x.shape);
  at.forEach((i, o) => { dx.data[i] += dy.data[o]; });
  return dx;
}
