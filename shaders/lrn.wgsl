// Local response normalisation across channels (ONNX LRN), forward and backward.
//
// With the window W(c) = [c − lo, c + hi] ∩ [0, C), lo = ⌊(size − 1)/2⌋, hi = ⌈(size − 1)/2⌉:
//   d_c = bias + (alpha / size) · Σ_{j ∈ W(c)} x_j²          (ONNX divides alpha by size)
//   y_c = x_c · d_c^(−beta)
// Backward (c ∈ W(j) ⟺ j ∈ [c − hi, c + lo]):
//   dx_c = dy_c · d_c^(−beta) − (2 · alpha · beta / size) · x_c · Σ_{j : c ∈ W(j)} dy_j · x_j · d_j^(−beta − 1)
// d is recomputed from x (size² reads per value) instead of being kept from the forward pass.
// One invocation per output value (forward) or per input value (backward), over items × C × H × W.

override SIZE: u32 = 5u;
override ACCUMULATE: bool = false;

struct Params {
  channels: u32,
  hw: u32,
  items: u32,
  alpha: f32,
  beta: f32,
  bias: f32,
  xOffset: u32,   // forward input x (backward: read at image item / maskDiv)
  xStride: u32,
  gOffset: u32,   // forward: y; backward: dy
  gStride: u32,
  dOffset: u32,   // backward: dx
  dStride: u32,
  maskDiv: u32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> d: array<f32>;

override LO: u32 = (SIZE - 1u) / 2u;
override HI: u32 = SIZE / 2u;

// d_c for channel c of the plane position starting at `base` (channel 0).
fn denom(base: u32, c: u32) -> f32 {
  let j0 = max(i32(c) - i32(LO), 0);
  let j1 = min(c + HI, p.channels - 1u);
  var s = 0.0;
  for (var j = u32(j0); j <= j1; j++) {
    let v = x[base + j * p.hw];
    s += v * v;
  }
  return p.bias + p.alpha / f32(SIZE) * s;
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = gid.x + gid.y * nwg.x * 64u;
  let per = p.channels * p.hw;
  if (id >= p.items * per) {
    return;
  }
  let item = id / per;
  let rem = id % per;
  let c = rem / p.hw;
  let base = item * p.xStride + p.xOffset + rem % p.hw;
  g[item * p.gStride + p.gOffset + rem] = x[base + c * p.hw] * pow(denom(base, c), -p.beta);
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = gid.x + gid.y * nwg.x * 64u;
  let per = p.channels * p.hw;
  if (id >= p.items * per) {
    return;
  }
  let item = id / per;
  let rem = id % per;
  let c = rem / p.hw;
  let base = (item / p.maskDiv) * p.xStride + p.xOffset + rem % p.hw;
  let gBase = item * p.gStride + p.gOffset + rem % p.hw;
  let xc = x[base + c * p.hw];
  var cross = 0.0;
  let j0 = max(i32(c) - i32(HI), 0);
  let j1 = min(c + LO, p.channels - 1u);
  for (var j = u32(j0); j <= j1; j++) {
    let dj = denom(base, j);
    cross += g[gBase + j * p.hw] * x[base + j * p.hw] * pow(dj, -p.beta - 1.0);
  }
  let v = g[gBase + c * p.hw] * pow(denom(base, c), -p.beta) - 2.0 * p.alpha * p.beta / f32(SIZE) * xc * cross;
  let addr = item * p.dStride + p.dOffset + rem;
  if (ACCUMULATE) {
    d[addr] += v;
  } else {
    d[addr] = v;
  }
}
