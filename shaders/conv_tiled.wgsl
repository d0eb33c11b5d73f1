// Convolution as an implicit GEMM with workgroup-memory tiles: the GPU variant of conv.wgsl (the
// same math, forward and data gradient; see conv.wgsl for the formulas and the weight layout):
//   out[col, pos] = Σ_r Wt[r, col] · in(r, pos),   r = (input channel of this GEMM, ky, kx)
//
// Tiles: a workgroup of 16 × 16 invocations computes 64 output channels × 64 positions; each
// invocation a 4 × 4 block in registers. The r axis is walked in chunks of 16. Per chunk, the
// workgroup stages a 16 × 64 slab of Wt (one vec4 per invocation; rows are contiguous in memory, so
// neighbouring invocations read neighbouring addresses) and a 16 × 64 slab of the implicit im2col
// input (4 positions per invocation, neighbours along the output row) in workgroup memory, then
// every invocation does 16 rank-1 updates of its block from vec4 reads.
// Split-K: with SPLIT > 1, workgroup z sums only its share of the chunks and writes a partial tile
// to `partialOut`; the `splitkSum` entry adds the SPLIT partial sums, the bias and the ReLU (or accumulates),
// so that small layers (14×14, 7×7) still give the GPU enough workgroups. With SPLIT = 1 the tile
// is finished in place.
// Groups (ONNX group > 1): workgroup z = g·SPLIT + split; the GEMM is group g's (p.rows, p.cols per
// group; input channels g·rows …, output channels g·cols …, weights Wt + g·rows·KH·KW·cols4, bias
// + g·cols4), as in conv.wgsl; splitkSum's z is the group.

// The interface is declared in src/kernels/conv.ts: TILE = 64 channels and positions per workgroup,
// CHUNK = 16 rows of r staged at a time, a WG_X × WG_Y = 16 × 16 workgroup (4 × 4 values per
// invocation; the 256 invocations stage one vec4 of each slab each).
const_assert WG_X * 4u == TILE && WG_Y * 4u == TILE && WG_X * WG_Y == CHUNK * TILE / 4u;
const ROW4: u32 = TILE / 4u;   // vec4 per slab row

var<workgroup> ws: array<vec4<f32>, CHUNK * ROW4>;   // [16 rows][16 vec4 = 64 channels]
var<workgroup> xs: array<vec4<f32>, CHUNK * ROW4>;   // [16 rows][16 vec4 = 64 positions]

// in(r, pos): the implicit im2col value (0 outside the input or off the stride grid), masked (MASK: 0
// where the forward output ≤ 0, or ≥ 6 with RELU6; GUIDED too where the value itself ≤ 0: guided
// backprop; fusedPasses, src/gpu/wgsl-library.ts FUSED_RELU).
fn inputValue(r: u32, pos: u32, posCount: u32, grp: u32) -> f32 {
  let taps = KH * KW;
  if (r >= p.rows * taps || pos >= posCount) {
    return 0.0;
  }
  let ch = r / taps;
  let ky = i32((r % taps) / KW);
  let kx = i32(r % KW);
  let outHW = p.outH * p.outW;
  let item = pos / outHW;
  let oy = i32((pos % outHW) / p.outW);
  let ox = i32(pos % p.outW);
  var iy: i32;
  var ix: i32;
  var ok: bool;
  if (TRANSPOSED) {
    let ty = oy + p.padT - ky * i32(DH);
    let tx = ox + p.padL - kx * i32(DW);
    iy = ty / i32(SH);
    ix = tx / i32(SW);
    ok = ty >= 0 && tx >= 0 && ty % i32(SH) == 0 && tx % i32(SW) == 0;
  } else {
    iy = oy * i32(SH) - p.padT + ky * i32(DH);
    ix = ox * i32(SW) - p.padL + kx * i32(DW);
    ok = iy >= 0 && ix >= 0;
  }
  if (!ok || iy >= i32(p.inH) || ix >= i32(p.inW)) {
    return 0.0;
  }
  let off = ((grp * p.rows + ch) * p.inH + u32(iy)) * p.inW + u32(ix);
  var v = input[item * p.inStride + p.inOffset + off];
  if (MASK && !fusedPasses(mask[(item / p.maskDiv) * p.maskStride + p.maskOffset + off], v)) {
    v = 0.0;
  }
  return v;
}

// The finished value of (col, pos): bias, ReLU, then written or added.
fn emit(col: u32, pos: u32, sum: f32, grp: u32) {
  let outHW = p.outH * p.outW;
  let v = fusedRelu(sum + bias[grp * p.cols4 * 4u + col]);
  let addr = (pos / outHW) * p.outStride + p.outOffset + (grp * p.cols + col) * outHW + pos % outHW;
  if (ACCUMULATE) {
    output[addr] += v;
  } else {
    output[addr] = v;
  }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn gemm(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let t = lid.y * WG_X + lid.x;
  let posCount = p.items * p.outH * p.outW;
  let pos0 = wid.x * TILE;
  let col0 = wid.y * TILE;
  let rTotal = p.rows * KH * KW;
  let grp = wid.z / SPLIT;
  let chunk0 = (wid.z % SPLIT) * p.chunksPerSplit;
  let chunk1 = min(chunk0 + p.chunksPerSplit, (rTotal + CHUNK - 1u) / CHUNK);
  var acc: array<vec4<f32>, 4>;   // acc[i][j]: channel col0 + 4·lid.y + i, position pos0 + 4·lid.x + j
  for (var chunk = chunk0; chunk < chunk1; chunk++) {
    // Stage the chunk: row t / ROW4 of both slabs, column group t % ROW4.
    let r = chunk * CHUNK + t / ROW4;
    let c4 = col0 / 4u + t % ROW4;
    ws[t] = select(vec4<f32>(0.0), weights[(grp * rTotal + min(r, rTotal - 1u)) * p.cols4 + min(c4, p.cols4 - 1u)], r < rTotal && c4 < p.cols4);
    let q = pos0 + 4u * (t % ROW4);
    xs[t] = vec4<f32>(inputValue(r, q, posCount, grp), inputValue(r, q + 1u, posCount, grp), inputValue(r, q + 2u, posCount, grp), inputValue(r, q + 3u, posCount, grp));
    workgroupBarrier();
    for (var k = 0u; k < CHUNK; k++) {
      let a = ws[k * ROW4 + lid.y];
      let b = xs[k * ROW4 + lid.x];
      acc[0] += a.x * b;
      acc[1] += a.y * b;
      acc[2] += a.z * b;
      acc[3] += a.w * b;
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let col = col0 + 4u * lid.y + i;
    for (var j = 0u; j < 4u; j++) {
      let pos = pos0 + 4u * lid.x + j;
      if (col < p.cols && pos < posCount) {
        if (SPLIT == 1u) {
          emit(col, pos, acc[i][j], grp);
        } else {
          partialOut[(wid.z * p.cols + col) * posCount + pos] = acc[i][j];
        }
      }
    }
  }
}

// Split-K epilogue: one invocation per (position, channel, group) adds the SPLIT partial sums.
@compute @workgroup_size(SPLITK_SUM_WG_X, SPLITK_SUM_WG_Y, SPLITK_SUM_WG_Z)
fn splitkSum(@builtin(global_invocation_id) gid: vec3<u32>) {
  let posCount = p.items * p.outH * p.outW;
  let pos = gid.x;
  let col = gid.y;
  let grp = gid.z;
  if (pos >= posCount || col >= p.cols) {
    return;
  }
  var s = 0.0;
  for (var z = 0u; z < SPLIT; z++) {
    s += partial[((grp * SPLIT + z) * p.cols + col) * posCount + pos];
  }
  emit(col, pos, s, grp);
}
