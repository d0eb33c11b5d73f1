// im2col: the input windows of a convolution laid out as the columns of a matrix, so that a
// convolution with few input channels runs as a plain (pointwise) GEMM in shaders/conv.wgsl:
//   col[n][(ci·KH + ky)·KW + kx][oy·outW + ox] = x[n, ci, oy·SH − padT + ky, ox·SW − padL + kx]   (0 outside)
// Row r = (ci, ky, kx) is the row order of the forward weights Wt (src/kernels/conv.ts).
// Threads: one invocation per value of col (item, row, output position); item n of x starts at
// n·inStride + inOffset (a view), item n of col at n·rows·outH·outW.

override KH: u32 = 1u;
override KW: u32 = 1u;
override SH: u32 = 1u;
override SW: u32 = 1u;

struct Params {
  channels: u32,
  inH: u32,
  inW: u32,
  outH: u32,
  outW: u32,
  items: u32,
  padT: i32,
  padL: i32,
  inOffset: u32,
  inStride: u32,
  _p0: u32,
  _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = gid.x + gid.y * nwg.x * 256u;
  let outHW = p.outH * p.outW;
  let rows = p.channels * KH * KW;
  if (id >= p.items * rows * outHW) {
    return;
  }
  let pos = id % outHW;
  let r = (id / outHW) % rows;
  let n = id / (outHW * rows);
  let kx = r % KW;
  let ky = (r / KW) % KH;
  let ci = r / (KW * KH);
  let iy = i32((pos / p.outW) * SH + ky) - p.padT;
  let ix = i32((pos % p.outW) * SW + kx) - p.padL;
  var v = 0.0;
  if (iy >= 0 && iy < i32(p.inH) && ix >= 0 && ix < i32(p.inW)) {
    v = src[n * p.inStride + p.inOffset + (ci * p.inH + u32(iy)) * p.inW + u32(ix)];
  }
  dst[id] = v;
}
