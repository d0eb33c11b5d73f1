// ReduceMean over a contiguous run of axes: each image is [outer, len, inner] (len the product of the
// reduced axes, outer and inner the axes before and after them):
//   forward:  y[o, i] = Σ_l x[o, l, i] / len
//   backward: dx[o, l, i] (+)= dy[o, i] / len
// Threads: forward one invocation per output value (items × outer × inner; it sums len values),
// backward one per input value. Item i of a view starts at i·stride + offset.

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  let perItem = p.outer * p.inner;
  if (id >= perItem * p.items) {
    return;
  }
  let item = id / perItem;
  let k = id % perItem;
  let o = k / p.inner;
  let i = k % p.inner;
  let base = item * p.xStride + p.xOffset + o * p.len * p.inner + i;
  var sum = 0.0;
  for (var l = 0u; l < p.len; l++) {
    sum += x[base + l * p.inner];
  }
  y[item * p.yStride + p.yOffset + k] = sum / f32(p.len);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  let perItem = p.outer * p.len * p.inner;
  if (id >= perItem * p.items) {
    return;
  }
  let item = id / perItem;
  let k = id % perItem;
  let o = k / (p.len * p.inner);
  let i = k % p.inner;
  var v = dy[item * p.dyStride + p.dyOffset + o * p.inner + i] / f32(p.len);
  let at = item * p.dxStride + p.dxOffset + k;
  if (ACCUMULATE) {
    v += dx[at];
  }
  dx[at] = v;
}
