// A grouped convolution computed directly, for groups too narrow for the GEMM's 16-channel block:
// depthwise (group = C_in: MobileNet, EfficientNet, ShuffleNet, ConvNeXt) and groups of a few
// channels (ResNeXt's first stages). Forward and data gradient, as conv.wgsl's.
//
// Forward (TRANSPOSED = false), output channel c of group g = c / cols, x read as 0 outside the input:
//   y[n, c, oy, ox] = bias[c] + Σ_{r < rows, ky, kx} Wd[c, r, ky, kx] · x[n, g·rows + r, oy·SH − padT + ky·DH, ox·SW − padL + kx·DW]
//   then ReLU when RELU (ReLU6 when RELU6: fusedRelu4, src/gpu/wgsl-library.ts FUSED_RELU).
// Data gradient (TRANSPOSED = true), a transposed grouped convolution of dy:
//   dx[n, c, iy, ix] = Σ_{r < rows, ky, kx} Wd[c, r, ky, kx] · dy'[n, g·rows + r, (iy + padT − ky·DH) / SH, (ix + padL − kx·DW) / SW]
//   over the terms where both divisions are exact and the indices in range, with dy' = dy · (y > 0)
//   when MASK (a fused ReLU; `mask` holds y; 0 < y < 6 with RELU6) and also · (dy > 0) when GUIDED (fusedPasses4).
// rows and cols are per group (p.rows input channels of this direction, p.cols output channels);
// Wd is laid out once at compile time (src/kernels/depthwise.ts): forward Wd = ONNX's
// W[C_out, C_in/group, KH, KW] (rows = C_in/group, cols = C_out/group); backward Wd[ci, j] =
// W[g·C_out/group + j, ci − g·C_in/group] (rows = C_out/group, cols = C_in/group).
//
// Threads: one invocation per 4 consecutive output positions of one (item, channel) plane, a 1-D
// launch over items × channels × ⌈outH·outW / 4⌉ (linearIndex): every invocation computes real
// outputs (only a plane's last block may hold fewer than 4). Per tap it computes the 4 input offsets
// once, then for each of its rows (1 for depthwise) loads one weight and 4 inputs: no workgroup
// memory, no barriers (SwiftShader runs invocations as SIMD lanes of a CPU thread). Views: item n of
// input, output and mask starts at n·stride + offset; gradient item n masks with image n / maskDiv.

const LANES = vec4<u32>(0u, 1u, 2u, 3u);

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn conv(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  let outHW = p.outH * p.outW;
  let inHW = p.inH * p.inW;
  let blocks = (outHW + 3u) / 4u;
  let channels = p.groups * p.cols;
  if (id >= p.items * channels * blocks) {
    return;
  }
  let block = id % blocks;
  let c = (id / blocks) % channels;
  let item = id / (blocks * channels);
  let groupIn = (c / p.cols) * p.rows * inHW; // the group's first input (and mask) channel
  // Positions past the plane repeat its last one (computed, never stored).
  let pos = min(vec4<u32>(block * 4u) + LANES, vec4<u32>(outHW - 1u));
  let oy = vec4<i32>(pos / p.outW);
  let ox = vec4<i32>(pos % p.outW);
  let in0 = item * p.inStride + p.inOffset + groupIn;
  let mask0 = (item / p.maskDiv) * p.maskStride + p.maskOffset + groupIn;
  let w0 = c * p.rows * KH * KW;
  var acc = vec4<f32>(0.0);
  for (var ky = 0u; ky < KH; ky++) {
    for (var kx = 0u; kx < KW; kx++) {
      var iy: vec4<i32>;
      var ix: vec4<i32>;
      var ok: vec4<bool>;
      if (TRANSPOSED) {
        let ty = oy + p.padT - i32(ky * DH);
        let tx = ox + p.padL - i32(kx * DW);
        iy = ty / i32(SH);
        ix = tx / i32(SW);
        ok = (ty >= vec4<i32>(0)) & (tx >= vec4<i32>(0)) & (ty % i32(SH) == vec4<i32>(0)) & (tx % i32(SW) == vec4<i32>(0));
      } else {
        iy = oy * i32(SH) - p.padT + i32(ky * DH);
        ix = ox * i32(SW) - p.padL + i32(kx * DW);
        ok = (iy >= vec4<i32>(0)) & (ix >= vec4<i32>(0));
      }
      ok = ok & (iy < vec4<i32>(i32(p.inH))) & (ix < vec4<i32>(i32(p.inW)));
      let off = select(vec4<u32>(0u), vec4<u32>(iy) * p.inW + vec4<u32>(ix), ok);
      var w = w0 + ky * KW + kx;
      for (var r = 0u; r < p.rows; r++) {
        let at = off + vec4<u32>(in0 + r * inHW);
        var v = vec4<f32>(input[at.x], input[at.y], input[at.z], input[at.w]);
        if (MASK) {
          let m = off + vec4<u32>(mask0 + r * inHW);
          let y = vec4<f32>(mask[m.x], mask[m.y], mask[m.z], mask[m.w]);
          v = select(vec4<f32>(0.0), v, fusedPasses4(y, v));
        }
        acc += weights[w] * select(vec4<f32>(0.0), v, ok);
        w += KH * KW;
      }
    }
  }
  var result = acc + bias[c];
  result = fusedRelu4(result);
  let base = item * p.outStride + p.outOffset + c * outHW + block * 4u;
  for (var j = 0u; j < 4u; j++) {
    if (block * 4u + j < outHW) {
      if (ACCUMULATE) {
        output[base + j] += result[j];
      } else {
        output[base + j] = result[j];
      }
    }
  }
}
