// im2col: the input windows of a convolution laid out as the columns of a matrix, so that a
// convolution with few input channels runs as a plain (pointwise) GEMM in shaders/conv.wgsl:
//   columns[n][(ci·KH + ky)·KW + kx][oy·outW + ox] = x[n, ci, oy·SH − padT + ky·DH, ox·SW − padL + kx·DW]   (0 outside)
// Row r = (ci, ky, kx) is the row order of the forward weights Wt (src/kernels/conv.ts).
// Threads: one invocation per value of columns (item, row, output position); item n of x starts at
// n·xStride + xOffset (a view), item n of columns at n·rows·outH·outW.

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn unfold(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
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
  let iy = i32((pos / p.outW) * SH + ky * DH) - p.padT;
  let ix = i32((pos % p.outW) * SW + kx * DW) - p.padL;
  var v = 0.0;
  if (iy >= 0 && iy < i32(p.inH) && ix >= 0 && ix < i32(p.inW)) {
    v = x[n * p.xStride + p.xOffset + (ci * p.inH + u32(iy)) * p.inW + u32(ix)];
  }
  columns[id] = v;
}
