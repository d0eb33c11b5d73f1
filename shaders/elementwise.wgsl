// Element-wise ops over views, one invocation per value (items × `count` values per item):
//   affine:    y = x · scale[ch] + shift[ch]     (a BatchNormalization that could not be folded, or an
//              Add, Sub, Mul or Div of a per-channel constant; ReLU when RELU)
//   relu:      y = max(x, 0)
//   copy:      y = x                             (a Concat input that cannot be written in place)
//   grad:      dx (+)= dy · scale[ch] · (mask > 0)  the backward of add, relu, affine and copy (and a
//              concat slice's share of the concat's gradient): the incoming gradient dy, times the
//              affine scale when SCALE, times the ReLU mask of the forward output (`mask`, read at
//              image item / maskDiv) when MASK, and when GUIDED also by (dy > 0) (guided backprop's
//              ReLU backward); added to dx when ACCUMULATE. (Add of two activations: binary.wgsl.)
// ch = (value index / hw) % channels. Item i of a view starts at i·stride + offset.

// The fused ReLU (fusedRelu) and its backward rule (fusedPasses): src/gpu/wgsl-library.ts FUSED_RELU.

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn affine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  if (id >= p.count * p.items) {
    return;
  }
  let item = id / p.count;
  let k = id % p.count;
  let ch = (k / p.hw) % p.channels;
  y[item * p.yStride + p.yOffset + k] = fusedRelu(x[item * p.xStride + p.xOffset + k] * scale[ch] + shift[ch]);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn relu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  if (id >= p.count * p.items) {
    return;
  }
  let item = id / p.count;
  let k = id % p.count;
  y[item * p.yStride + p.yOffset + k] = max(x[item * p.xStride + p.xOffset + k], 0.0);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  if (id >= p.count * p.items) {
    return;
  }
  let item = id / p.count;
  let k = id % p.count;
  y[item * p.yStride + p.yOffset + k] = x[item * p.xStride + p.xOffset + k];
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  if (id >= p.count * p.items) {
    return;
  }
  let item = id / p.count;
  let k = id % p.count;
  var v = dy[item * p.dyStride + p.dyOffset + k];
  if (MASK) {
    v = select(0.0, v, fusedPasses(mask[(item / p.maskDiv) * p.maskStride + p.maskOffset + k], v));
  }
  if (SCALE) {
    v *= scale[(k / p.hw) % p.channels];
  }
  let addr = item * p.dxStride + p.dxOffset + k;
  if (ACCUMULATE) {
    dx[addr] += v;
  } else {
    dx[addr] = v;
  }
}
