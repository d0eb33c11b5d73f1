// Convolution as an implicit GEMM: the forward pass and the data gradient (transposed convolution).
//
// Forward (TRANSPOSED = false), with x read as 0 outside the input:
//   y[n, co, oy, ox] = bias[co] + Σ_{ci, ky, kx} W[co, ci, ky, kx] · x[n, ci, oy·SH − padT + ky, ox·SW − padL + kx]
//   then ReLU when RELU. Gemm and MatMul come here too, as 1×1 convolutions over [N, K, 1, 1].
// Data gradient (TRANSPOSED = true):
//   dx[n, ci, iy, ix] = Σ_{co, ky, kx} W[co, ci, ky, kx] · dy'[n, co, (iy + padT − ky) / SH, (ix + padL − kx) / SW]
//   summed over the terms where both divisions are exact and the indices in range, with
//   dy' = dy · (y > 0) when MASK (the forward op had a fused ReLU; `mask` holds its output y).
// Both are one GEMM  out[col, pos] = Σ_r Wt[r, col] · in(r, pos), where r runs over
// (input channel of this GEMM, ky, kx) and col over its output channels. Wt is laid out once at
// compile time, row r = (ci, ky, kx) and col = co forward, row r = (co, ky, kx) and col = ci backward,
// with the columns padded to a multiple of 16 with zeros.
//
// Threads: one invocation computes 16 output channels × 8 output positions (a position = batch item,
// row, column, flattened), accumulating 32 vec4 in registers: per r it reads 4 vec4 of weights and
// 8 input scalars and does 32 vec4 multiply-adds. gid.x walks position blocks, gid.y channel blocks.
// POINTWISE (1×1, stride 1, no padding) skips all window arithmetic. ACCUMULATE adds to the output
// (gradients of a tensor with several consumers are summed, in a fixed order: no atomics).

override KH: u32 = 1u;
override KW: u32 = 1u;
override SH: u32 = 1u;
override SW: u32 = 1u;
override POINTWISE: bool = false;
override TRANSPOSED: bool = false;
override RELU: bool = false;
override MASK: bool = false;
override ACCUMULATE: bool = false;
override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;

struct Params {
  rows: u32,        // input channels of this GEMM's input tensor
  inH: u32,
  inW: u32,
  cols: u32,        // output channels
  outH: u32,
  outW: u32,
  items: u32,       // batch items (images, or images × classes for gradients)
  cols4: u32,       // padded output channels / 4 = vec4 per weight row
  padT: i32,
  padL: i32,
  inOffset: u32,    // views: item i's values start at i * stride + offset
  inStride: u32,
  outOffset: u32,
  outStride: u32,
  maskOffset: u32,
  maskStride: u32,
  maskDiv: u32,     // gradient item i masks with the forward image i / maskDiv
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> mask: array<f32>;
@group(0) @binding(5) var<storage, read_write> dst: array<f32>;

const TN: u32 = 8u;

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let outHW = p.outH * p.outW;
  let inHW = p.inH * p.inW;
  let posCount = p.items * outHW;
  let pos0 = gid.x * TN;
  let col4 = gid.y * 4u;
  if (pos0 >= posCount || col4 >= p.cols4) {
    return;
  }

  // Per position: where its input image starts, its mask image, its output row/column.
  var inBase: array<u32, TN>;
  var maskBase: array<u32, TN>;
  var oy: array<i32, TN>;
  var ox: array<i32, TN>;
  for (var j = 0u; j < TN; j++) {
    let pos = min(pos0 + j, posCount - 1u);
    let item = pos / outHW;
    let r = pos % outHW;
    inBase[j] = item * p.inStride + p.inOffset;
    maskBase[j] = (item / p.maskDiv) * p.maskStride + p.maskOffset;
    if (POINTWISE) {
      inBase[j] += r;
      maskBase[j] += r;
    }
    oy[j] = i32(r / p.outW);
    ox[j] = i32(r % p.outW);
  }

  var acc: array<vec4<f32>, 32>;
  for (var ch = 0u; ch < p.rows; ch++) {
    let chOff = ch * inHW;
    for (var ky = 0u; ky < KH; ky++) {
      for (var kx = 0u; kx < KW; kx++) {
        let row = ((ch * KH + ky) * KW + kx) * p.cols4 + col4;
        let w0 = wt[row];
        let w1 = wt[row + 1u];
        let w2 = wt[row + 2u];
        let w3 = wt[row + 3u];
        for (var j = 0u; j < TN; j++) {
          var off = chOff;
          var ok = true;
          if (!POINTWISE) {
            var iy: i32;
            var ix: i32;
            if (TRANSPOSED) {
              let ty = oy[j] + p.padT - i32(ky);
              let tx = ox[j] + p.padL - i32(kx);
              iy = ty / i32(SH);
              ix = tx / i32(SW);
              ok = ty >= 0 && tx >= 0 && ty % i32(SH) == 0 && tx % i32(SW) == 0;
            } else {
              iy = oy[j] * i32(SH) - p.padT + i32(ky);
              ix = ox[j] * i32(SW) - p.padL + i32(kx);
              ok = iy >= 0 && ix >= 0;
            }
            ok = ok && iy < i32(p.inH) && ix < i32(p.inW);
            off = select(0u, chOff + u32(iy) * p.inW + u32(ix), ok);
          }
          var v = select(0.0, src[inBase[j] + off], ok);
          if (MASK) {
            v = select(0.0, v, mask[maskBase[j] + off] > 0.0);
          }
          acc[4u * j] += v * w0;
          acc[4u * j + 1u] += v * w1;
          acc[4u * j + 2u] += v * w2;
          acc[4u * j + 3u] += v * w3;
        }
      }
    }
  }

  for (var j = 0u; j < TN; j++) {
    let pos = pos0 + j;
    if (pos >= posCount) {
      break;
    }
    let item = pos / outHW;
    let base = item * p.outStride + p.outOffset + pos % outHW;
    for (var q = 0u; q < 4u; q++) {
      var v = acc[4u * j + q] + bias[col4 + q];
      if (RELU) {
        v = max(v, vec4<f32>(0.0));
      }
      for (var lane = 0u; lane < 4u; lane++) {
        let col = (col4 + q) * 4u + lane;
        if (col < p.cols) {
          let addr = base + col * outHW;
          if (ACCUMULATE) {
            dst[addr] += v[lane];
          } else {
            dst[addr] = v[lane];
          }
        }
      }
    }
  }
}
