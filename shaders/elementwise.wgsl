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
// ch = (value index / hw) % channels. Item i of a view starts at i·stride + offset. Which value an
// invocation computes: elementOf (src/gpu/wgsl-library.ts ELEMENT).

// The fused ReLU (fusedRelu) and its backward rule (fusedPasses): src/gpu/wgsl-library.ts FUSED_RELU.

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn affine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = elementOf(gid, nwg, p.count, p.items);
  if (!e.inside) {
    return;
  }
  let ch = (e.k / p.hw) % p.channels;
  y[e.item * p.yStride + p.yOffset + e.k] = fusedRelu(x[e.item * p.xStride + p.xOffset + e.k] * scale[ch] + shift[ch]);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn relu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = elementOf(gid, nwg, p.count, p.items);
  if (!e.inside) {
    return;
  }
  y[e.item * p.yStride + p.yOffset + e.k] = max(x[e.item * p.xStride + p.xOffset + e.k], 0.0);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = elementOf(gid, nwg, p.count, p.items);
  if (!e.inside) {
    return;
  }
  y[e.item * p.yStride + p.yOffset + e.k] = x[e.item * p.xStride + p.xOffset + e.k];
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = elementOf(gid, nwg, p.count, p.items);
  if (!e.inside) {
    return;
  }
  var v = dy[e.item * p.dyStride + p.dyOffset + e.k];
  if (MASK) {
    v = select(0.0, v, fusedPasses(mask[(e.item / p.maskDiv) * p.maskStride + p.maskOffset + e.k], v));
  }
  if (SCALE) {
    v *= scale[(e.k / p.hw) % p.channels];
  }
  let addr = e.item * p.dxStride + p.dxOffset + e.k;
  if (ACCUMULATE) {
    dx[addr] += v;
  } else {
    dx[addr] = v;
  }
}
