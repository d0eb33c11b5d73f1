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
// to `part`; the `finish` entry adds the SPLIT partial sums, the bias and the ReLU (or accumulates),
// so that small layers (14×14, 7×7) still give the GPU enough workgroups. With SPLIT = 1 the tile
// is finished in place.

override KH: u32 = 1u;
override KW: u32 = 1u;
override SH: u32 = 1u;
override SW: u32 = 1u;
override TRANSPOSED: bool = false;
override RELU: bool = false;
override MASK: bool = false;
override ACCUMULATE: bool = false;
override SPLIT: u32 = 1u;

struct Params {
  rows: u32,        // input channels of this GEMM's input tensor
  inH: u32,
  inW: u32,
  cols: u32,        // output channels
  outH: u32,
  outW: u32,
  items: u32,
  cols4: u32,       // padded output channels / 4 = vec4 per weight row
  padT: i32,
  padL: i32,
  inOffset: u32,
  inStride: u32,
  outOffset: u32,
  outStride: u32,
  maskOffset: u32,
  maskStride: u32,
  maskDiv: u32,
  chunksPerSplit: u32,  // chunks of 16 rows of r per split
  _p1: u32,
  _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<f32>;
@group(0) @binding(5) var<storage, read_write> dst: array<f32>;
@group(0) @binding(6) var<storage, read_write> part: array<f32>;

var<workgroup> ws: array<vec4<f32>, 256>;   // [16 rows][16 vec4 = 64 channels]
var<workgroup> xs: array<vec4<f32>, 256>;   // [16 rows][16 vec4 = 64 positions]

// in(r, pos): the implicit im2col value (0 outside the input or off the stride grid), masked.
fn inputValue(r: u32, pos: u32, posCount: u32) -> f32 {
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
    let ty = oy + p.padT - ky;
    let tx = ox + p.padL - kx;
    iy = ty / i32(SH);
    ix = tx / i32(SW);
    ok = ty >= 0 && tx >= 0 && ty % i32(SH) == 0 && tx % i32(SW) == 0;
  } else {
    iy = oy * i32(SH) - p.padT + ky;
    ix = ox * i32(SW) - p.padL + kx;
    ok = iy >= 0 && ix >= 0;
  }
  if (!ok || iy >= i32(p.inH) || ix >= i32(p.inW)) {
    return 0.0;
  }
  let off = (ch * p.inH + u32(iy)) * p.inW + u32(ix);
  var v = src[item * p.inStride + p.inOffset + off];
  if (MASK && mask[(item / p.maskDiv) * p.maskStride + p.maskOffset + off] <= 0.0) {
    v = 0.0;
  }
  return v;
}

// The finished value of (col, pos): bias, ReLU, then written or added.
fn emit(col: u32, pos: u32, sum: f32) {
  let outHW = p.outH * p.outW;
  var v = sum + bias[col];
  if (RELU) {
    v = max(v, 0.0);
  }
  let addr = (pos / outHW) * p.outStride + p.outOffset + col * outHW + pos % outHW;
  if (ACCUMULATE) {
    dst[addr] += v;
  } else {
    dst[addr] = v;
  }
}

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let t = lid.y * 16u + lid.x;
  let posCount = p.items * p.outH * p.outW;
  let pos0 = wid.x * 64u;
  let col0 = wid.y * 64u;
  let rTotal = p.rows * KH * KW;
  let chunk0 = wid.z * p.chunksPerSplit;
  let chunk1 = min(chunk0 + p.chunksPerSplit, (rTotal + 15u) / 16u);
  var acc: array<vec4<f32>, 4>;   // acc[i][j]: channel col0 + 4·lid.y + i, position pos0 + 4·lid.x + j
  for (var chunk = chunk0; chunk < chunk1; chunk++) {
    // Stage the chunk: row t / 16 of both slabs, column group t % 16.
    let r = chunk * 16u + t / 16u;
    let c4 = col0 / 4u + t % 16u;
    ws[t] = select(vec4<f32>(0.0), wt[min(r, rTotal - 1u) * p.cols4 + min(c4, p.cols4 - 1u)], r < rTotal && c4 < p.cols4);
    let q = pos0 + 4u * (t % 16u);
    xs[t] = vec4<f32>(inputValue(r, q, posCount), inputValue(r, q + 1u, posCount), inputValue(r, q + 2u, posCount), inputValue(r, q + 3u, posCount));
    workgroupBarrier();
    for (var k = 0u; k < 16u; k++) {
      let a = ws[k * 16u + lid.y];
      let b = xs[k * 16u + lid.x];
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
          emit(col, pos, acc[i][j]);
        } else {
          part[(wid.z * p.cols + col) * posCount + pos] = acc[i][j];
        }
      }
    }
  }
}

// Split-K epilogue: one invocation per (position, channel) adds the SPLIT partial sums.
@compute @workgroup_size(64)
fn finish(@builtin(global_invocation_id) gid: vec3<u32>) {
  let posCount = p.items * p.outH * p.outW;
  let pos = gid.x;
  let col = gid.y;
  if (pos >= posCount || col >= p.cols) {
    return;
  }
  var s = 0.0;
  for (var z = 0u; z < SPLIT; z++) {
    s += part[(z * p.cols + col) * posCount + pos];
  }
  emit(col, pos, s);
}
