// The data gradient of an ungrouped convolution as a direct gather (a transposed convolution read
// from dy), for layers whose data gradient has few channels: conv1 (C_in 3, 7×7 stride 2), where
// conv.wgsl's GEMM pads the 3 channels to its 16-channel block and 3 of 4 stride-2 taps miss.
//   dx[n, ci, iy, ix] = Σ_{co, ky, kx} W[co, ci, ky, kx] · dy'[n, co, (iy + padT − ky·DH) / SH, (ix + padL − kx·DW) / SW]
// summed over the taps where both divisions are exact and the quotients in range (oy < dyH,
// ox < dyW), with dy' = dy · (y > 0) when MASK (the forward op had a fused ReLU; `mask` holds its
// output y), (0 < y < 6) with RELU6, and · (dy > 0) when GUIDED (guided backprop's ReLU backward):
// fusedPasses4, the rule every conv kernel takes from src/gpu/wgsl-library.ts (FUSED_RELU), in the
// read of 4 dy values that conv.wgsl's GEMM shares (dyLoad4: maskedLoad4 there).
//
// Threads: one invocation per TP = 8 positions of one dx row iy that share a stride phase,
// ix = x0 + j·SW (j < 8), × 4 channels ci (one vec4 of the weights). Since every ix ≡ x0 (mod SW),
// a tap (ky, kx) either lies on the stride grid for all 8 positions or for none: a tap that misses
// is skipped whole (no idle multiply-adds), and a tap that hits reads 8 consecutive ox of one dy row.
// Per hit tap and co: one vec4 weight load, 8 dy loads, 32 multiply-adds. A 1-D launch (linearIndex)
// over items × ⌈cols/4⌉ × dxH × SW phases × ⌈⌈dxW/SW⌉/8⌉ blocks, the block fastest, then the phase,
// so that neighbouring invocations (SwiftShader's SIMD lanes) take the same taps. Phases with fewer
// columns than the longest leave their last block's invocations idle.
// Weights, laid out once (src/kernels/conv-gather.ts): Wg[((ky·KW + kx)·rows + co)·cols4 + cb] =
// W[co, 4·cb … 4·cb + 3, ky, kx] as a vec4, channels past cols zero (rows = C_out, cols = C_in).
// Views: item n of dy, dx and mask starts at n·stride + offset; gradient item n masks with image n / maskDiv.

const_assert TP == 8u;

const LANES = vec4<i32>(0, 1, 2, 3);

// Writes (or adds) position ix's channels 4·cb … of `acc` where ix and the channels are real.
fn store(acc: vec4<f32>, base: u32, ix: u32, cb: u32) {
  if (ix >= p.dxW) {
    return;
  }
  let dxHW = p.dxH * p.dxW;
  for (var lane = 0u; lane < 4u; lane++) {
    let ci = cb * 4u + lane;
    if (ci < p.cols) {
      let addr = base + ci * dxHW + ix;
      if (ACCUMULATE) {
        dx[addr] += acc[lane];
      } else {
        dx[addr] = acc[lane];
      }
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  let blocks = ((p.dxW + SW - 1u) / SW + TP - 1u) / TP; // per phase
  let cols4 = (p.cols + 3u) / 4u;
  if (id >= p.items * cols4 * p.dxH * SW * blocks) {
    return;
  }
  let b = id % blocks;
  let phase = (id / blocks) % SW;
  let iy = (id / (blocks * SW)) % p.dxH;
  let cb = (id / (blocks * SW * p.dxH)) % cols4;
  let n = id / (blocks * SW * p.dxH * cols4);
  let x0 = phase + b * TP * SW;
  let dyHW = p.dyH * p.dyW;
  let dy0 = n * p.dyStride + p.dyOffset;
  let mask0 = (n / p.maskDiv) * p.maskStride + p.maskOffset;
  let tapStride = p.rows * cols4; // weights of one tap, all co
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  var acc4 = vec4<f32>(0.0);
  var acc5 = vec4<f32>(0.0);
  var acc6 = vec4<f32>(0.0);
  var acc7 = vec4<f32>(0.0);
  if (x0 < p.dxW) {
    for (var ky = 0u; ky < KH; ky++) {
      let ty = i32(iy) + p.padT - i32(ky * DH);
      if (ty < 0 || ty % i32(SH) != 0 || ty / i32(SH) >= i32(p.dyH)) {
        continue;
      }
      let row = u32(ty) / SH * p.dyW;
      for (var kx = 0u; kx < KW; kx++) {
        let tx = i32(x0) + p.padL - i32(kx * DW);
        if (tx % i32(SW) != 0) { // WGSL's % truncates: 0 exactly when SW divides tx, negative or not
          continue;
        }
        let oxA = vec4<i32>(tx / i32(SW)) + LANES;
        let oxB = oxA + vec4<i32>(4);
        let dyW = vec4<i32>(i32(p.dyW));
        let okA = (oxA >= vec4<i32>(0)) & (oxA < dyW);
        let okB = (oxB >= vec4<i32>(0)) & (oxB < dyW);
        let offA = select(vec4<u32>(0u), vec4<u32>(row) + vec4<u32>(oxA), okA);
        let offB = select(vec4<u32>(0u), vec4<u32>(row) + vec4<u32>(oxB), okB);
        var w = (ky * KW + kx) * tapStride + cb;
        for (var co = 0u; co < p.rows; co++) {
          let o = co * dyHW;
          let wv = weights[w];
          let va = dyLoad4(vec4<u32>(dy0 + o) + offA, vec4<u32>(mask0 + o) + offA, okA);
          let vb = dyLoad4(vec4<u32>(dy0 + o) + offB, vec4<u32>(mask0 + o) + offB, okB);
          acc0 += wv * va.x;
          acc1 += wv * va.y;
          acc2 += wv * va.z;
          acc3 += wv * va.w;
          acc4 += wv * vb.x;
          acc5 += wv * vb.y;
          acc6 += wv * vb.z;
          acc7 += wv * vb.w;
          w += cols4;
        }
      }
    }
  }
  let base = n * p.dxStride + p.dxOffset + iy * p.dxW;
  store(acc0, base, x0, cb);
  store(acc1, base, x0 + SW, cb);
  store(acc2, base, x0 + 2u * SW, cb);
  store(acc3, base, x0 + 3u * SW, cb);
  store(acc4, base, x0 + 4u * SW, cb);
  store(acc5, base, x0 + 5u * SW, cb);
  store(acc6, base, x0 + 6u * SW, cb);
  store(acc7, base, x0 + 7u * SW, cb);
}
