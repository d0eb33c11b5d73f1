// Convolution as an implicit GEMM: the forward pass and the data gradient (transposed convolution).
//
// Forward (TRANSPOSED = false), with x read as 0 outside the input:
//   y[n, co, oy, ox] = bias[co] + Σ_{ci, ky, kx} W[co, ci, ky, kx] · x[n, ci, oy·SH − padT + ky·DH, ox·SW − padL + kx·DW]
//   then ReLU when RELU (capped at 6 when RELU6: ReLU6). Gemm and MatMul come here too, as 1×1
//   convolutions over [N, K, 1, 1].
// Data gradient (TRANSPOSED = true):
//   dx[n, ci, iy, ix] = Σ_{co, ky, kx} W[co, ci, ky, kx] · dy'[n, co, (iy + padT − ky·DH) / SH, (ix + padL − kx·DW) / SW]
//   summed over the terms where both divisions are exact and the indices in range, with
//   dy' = dy · (y > 0) when MASK (the forward op had a fused ReLU; `mask` holds its output y), (0 < y < 6)
//   with RELU6; and · (dy > 0) when GUIDED (guided backprop). fusedRelu4 and fusedPasses4 (the rule,
//   written once for every convolution kernel: src/gpu/wgsl-library.ts FUSED_RELU) apply them; the
//   masked read of 4 input values is inputLoad4 (maskedLoad4 there, shared with conv_gather.wgsl).
// Both are one GEMM  out[col, pos] = Σ_r Wt[r, col] · in(r, pos), where r runs over
// (input channel of this GEMM, ky, kx) and col over its output channels. Wt is laid out once at
// compile time, row r = (ci, ky, kx) and col = co forward, row r = (co, ky, kx) and col = ci backward,
// with the columns padded to a multiple of 16 with zeros.
// Grouped convolution (ONNX group > 1, wide groups): gid.z is the group g, and the GEMM is that
// group's: its rows (input channels of this GEMM), its cols (output channels), its weights
// Wt + g·rows·KH·KW·cols4 and bias + g·cols4, reading input channels g·rows … and writing output
// channels g·cols … (p.rows and p.cols are per group). Group 0 is the whole of an ungrouped conv.
//
// Threads: one invocation computes 16 output channels × 8 output positions (a position = batch item,
// row, column, flattened), accumulating in registers: per r it reads 4 vec4 of weights (one mat4x4)
// and 8 input scalars, and does 8 matrix-times-scalar multiply-adds (128 FMAs). No workgroup memory:
// on SwiftShader (a CPU) barriers cost more than they save. gid.x walks position blocks, gid.y channel blocks.
// POINTWISE (1×1, stride 1, no padding) skips all window arithmetic. ACCUMULATE adds to the output
// (gradients of a tensor with several consumers are summed, in a fixed order: no atomics).
// WEIGHTS_PER_ITEM gives batch item i its own weight matrix, Wt + i·rows·KH·KW·cols4 (the 16 GEMMs of
// a Winograd convolution, shaders/winograd.wgsl); outH·outW is then a multiple of 8, so that the 8
// positions of a block belong to one item.

// The interface (uniforms, bindings input, weights, bias, mask, output, overrides, TN = 8 positions and
// TM = 16 channels per invocation) is declared in src/kernels/conv.ts; this body is unrolled for them.
const_assert TN == 8u && TM == 16u;

// Output positions 0–3 and 4–7 of an invocation's block are the components of two vec4 (A, B);
// each position's 16 channels are one mat4x4 accumulator (column q = channels 4q … 4q + 3).
// Loop order: taps (ky, kx) outside, channels inside. A tap's input offset and validity do not
// depend on the channel, so the inner loop is as plain as a GEMM: 4 vec4 weight loads and 8 input
// loads per channel.

// Output row and column of 4 positions.
fn rowsCols(pos: vec4<u32>) -> array<vec4<i32>, 2> {
  let r = pos % (p.outH * p.outW);
  return array<vec4<i32>, 2>(vec4<i32>(r / p.outW), vec4<i32>(r % p.outW));
}

// Offsets within a channel plane of tap (ky, kx) for 4 output positions, and whether each is a
// real input (inside the input; transposed: also on the stride grid).
fn tapOffsets(oy: vec4<i32>, ox: vec4<i32>, ky: u32, kx: u32, ok: ptr<function, vec4<bool>>) -> vec4<u32> {
  var iy: vec4<i32>;
  var ix: vec4<i32>;
  var valid: vec4<bool>;
  if (TRANSPOSED) {
    let ty = oy + p.padT - i32(ky * DH);
    let tx = ox + p.padL - i32(kx * DW);
    iy = ty / i32(SH);
    ix = tx / i32(SW);
    valid = (ty >= vec4<i32>(0)) & (tx >= vec4<i32>(0)) & (ty % i32(SH) == vec4<i32>(0)) & (tx % i32(SW) == vec4<i32>(0));
  } else {
    iy = oy * i32(SH) - p.padT + i32(ky * DH);
    ix = ox * i32(SW) - p.padL + i32(kx * DW);
    valid = (iy >= vec4<i32>(0)) & (ix >= vec4<i32>(0));
  }
  valid = valid & (iy < vec4<i32>(i32(p.inH))) & (ix < vec4<i32>(i32(p.inW)));
  *ok = valid;
  return select(vec4<u32>(0u), vec4<u32>(iy) * p.inW + vec4<u32>(ix), valid);
}

fn store(acc: mat4x4<f32>, pos: u32, posCount: u32, outHW: u32, col4: u32, grp: u32) {
  if (pos >= posCount) {
    return;
  }
  let base = (pos / outHW) * p.outStride + p.outOffset + grp * p.cols * outHW + pos % outHW;
  for (var q = 0u; q < 4u; q++) {
    let v = fusedRelu4(acc[q] + bias[grp * p.cols4 + col4 + q]);
    for (var lane = 0u; lane < 4u; lane++) {
      let col = (col4 + q) * 4u + lane;
      if (col < p.cols) {
        let addr = base + col * outHW;
        if (ACCUMULATE) {
          output[addr] += v[lane];
        } else {
          output[addr] = v[lane];
        }
      }
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn gemm(@builtin(global_invocation_id) gid: vec3<u32>) {
  let outHW = p.outH * p.outW;
  let inHW = p.inH * p.inW;
  let posCount = p.items * outHW;
  let pos0 = gid.x * TN;
  let col4 = gid.y * (TM / 4u);
  if (pos0 >= posCount || col4 >= p.cols4) {
    return;
  }
  // Positions past the end repeat the last one (computed, never stored).
  let posA = min(vec4<u32>(pos0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(posCount - 1u));
  let posB = min(vec4<u32>(pos0) + vec4<u32>(4u, 5u, 6u, 7u), vec4<u32>(posCount - 1u));
  let grp = gid.z;
  let groupIn = grp * p.rows * inHW; // the group's first input channel (and mask channel)
  let inA = (posA / outHW) * p.inStride + p.inOffset + groupIn;
  let inB = (posB / outHW) * p.inStride + p.inOffset + groupIn;
  let maskA = (posA / outHW / p.maskDiv) * p.maskStride + p.maskOffset + groupIn;
  let maskB = (posB / outHW / p.maskDiv) * p.maskStride + p.maskOffset + groupIn;
  let rcA = rowsCols(posA);
  let rcB = rowsCols(posB);
  let rows = p.rows;
  let cols4 = p.cols4;
  let tapStride = KH * KW * cols4;
  var weights0 = grp * rows * tapStride;
  if (WEIGHTS_PER_ITEM) {
    weights0 = (pos0 / outHW) * rows * tapStride;
  }

  var acc0 = mat4x4<f32>();
  var acc1 = mat4x4<f32>();
  var acc2 = mat4x4<f32>();
  var acc3 = mat4x4<f32>();
  var acc4 = mat4x4<f32>();
  var acc5 = mat4x4<f32>();
  var acc6 = mat4x4<f32>();
  var acc7 = mat4x4<f32>();
  for (var ky = 0u; ky < KH; ky++) {
    for (var kx = 0u; kx < KW; kx++) {
      var okA = vec4<bool>(true);
      var okB = vec4<bool>(true);
      var offA = posA % outHW;
      var offB = posB % outHW;
      if (!POINTWISE) {
        offA = tapOffsets(rcA[0], rcA[1], ky, kx, &okA);
        offB = tapOffsets(rcB[0], rcB[1], ky, kx, &okB);
      }
      var row = weights0 + (ky * KW + kx) * cols4 + col4;
      for (var ch = 0u; ch < rows; ch++) {
        let w = mat4x4<f32>(weights[row], weights[row + 1u], weights[row + 2u], weights[row + 3u]);
        let o = ch * inHW;
        let va = inputLoad4(inA + offA + o, maskA + offA + o, okA);
        let vb = inputLoad4(inB + offB + o, maskB + offB + o, okB);
        acc0 += w * va.x;
        acc1 += w * va.y;
        acc2 += w * va.z;
        acc3 += w * va.w;
        acc4 += w * vb.x;
        acc5 += w * vb.y;
        acc6 += w * vb.z;
        acc7 += w * vb.w;
        row += tapStride;
      }
    }
  }
  store(acc0, pos0, posCount, outHW, col4, grp);
  store(acc1, pos0 + 1u, posCount, outHW, col4, grp);
  store(acc2, pos0 + 2u, posCount, outHW, col4, grp);
  store(acc3, pos0 + 3u, posCount, outHW, col4, grp);
  store(acc4, pos0 + 4u, posCount, outHW, col4, grp);
  store(acc5, pos0 + 5u, posCount, outHW, col4, grp);
  store(acc6, pos0 + 6u, posCount, outHW, col4, grp);
  store(acc7, pos0 + 7u, posCount, outHW, col4, grp);
}
