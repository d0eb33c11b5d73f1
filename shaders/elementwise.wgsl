// Element-wise ops over views, one invocation per value (items × per-item values):
//   add:       c = a + b                       (ReLU when RELU)
//   affine:    c = a · scale[ch] + shift[ch]   (a BatchNormalization that could not be folded; ReLU when RELU)
//   relu:      c = max(a, 0)
//   copy:      c = a                           (a Concat input that cannot be written in place)
//   grad:      c (+)= a · scale[ch] · (m > 0)  the backward of add, relu, affine and copy: the incoming
//              gradient a, times the affine scale when SCALE, times the ReLU mask of the forward
//              output m (read at image item / maskDiv) when MASK; added to c when ACCUMULATE.
// ch = (value index / hw) % channels. Item i of a view starts at i·stride + offset.

override RELU: bool = false;
override MASK: bool = false;
override SCALE: bool = false;
override ACCUMULATE: bool = false;

struct Params {
  count: u32,     // values per item
  items: u32,
  channels: u32,
  hw: u32,
  aOffset: u32,
  aStride: u32,
  bOffset: u32,
  bStride: u32,
  cOffset: u32,
  cStride: u32,
  mOffset: u32,
  mStride: u32,
  maskDiv: u32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> shift: array<f32>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

fn activate(v: f32) -> f32 {
  return select(v, max(v, 0.0), RELU);
}

@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = index(gid, nwg);
  if (id >= p.count * p.items) {
    return;
  }
  let item = id / p.count;
  let k = id % p.count;
  c[item * p.cStride + p.cOffset + k] = activate(a[item * p.aStride + p.aOffset + k] + b[item * p.bStride + p.bOffset + k]);
}

@compute @workgroup_size(256)
fn affine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = index(gid, nwg);
  if (id >= p.count * p.items) {
    return;
  }
  let item = id / p.count;
  let k = id % p.count;
  let ch = (k / p.hw) % p.channels;
  c[item * p.cStride + p.cOffset + k] = activate(a[item * p.aStride + p.aOffset + k] * scale[ch] + shift[ch]);
}

@compute @workgroup_size(256)
fn relu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = index(gid, nwg);
  if (id >= p.count * p.items) {
    return;
  }
  let item = id / p.count;
  let k = id % p.count;
  c[item * p.cStride + p.cOffset + k] = max(a[item * p.aStride + p.aOffset + k], 0.0);
}

@compute @workgroup_size(256)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = index(gid, nwg);
  if (id >= p.count * p.items) {
    return;
  }
  let item = id / p.count;
  let k = id % p.count;
  c[item * p.cStride + p.cOffset + k] = a[item * p.aStride + p.aOffset + k];
}

@compute @workgroup_size(256)
fn grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = index(gid, nwg);
  if (id >= p.count * p.items) {
    return;
  }
  let item = id / p.count;
  let k = id % p.count;
  var v = a[item * p.aStride + p.aOffset + k];
  if (SCALE) {
    v *= scale[(k / p.hw) % p.channels];
  }
  if (MASK) {
    v = select(0.0, v, b[(item / p.maskDiv) * p.mStride + p.mOffset + k] > 0.0);
  }
  let addr = item * p.cStride + p.cOffset + k;
  if (ACCUMULATE) {
    c[addr] += v;
  } else {
    c[addr] = v;
  }
}
