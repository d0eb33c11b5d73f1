// LayerNormalization over the last `inner` values of each row (the axes from `axis` on):
//   forward:  y_i = (x_i − μ)·r·γ_i + β_i,   μ = Σ x_i / n,  r = 1/√(Σ (x_i − μ)² / n + ε)
//   backward: dx_i (+)= r·(g_i − mean(g) − x̂_i·mean(g·x̂)),  g_i = dy_i·γ_i,  x̂_i = (x_i − μ)·r
//             (the full Jacobian-vector product: μ and σ² depend on every x of the row; both are
//             recomputed from the forward input x of image item / maskDiv).
// Threads: one invocation per row (items × rows per item); it walks the row's n values two (forward)
// or three (backward) times. Item i of a view starts at i·stride + offset.

/** μ and r of the row starting at `base` of x. */
fn stats(base: u32) -> vec2<f32> {
  var sum = 0.0;
  for (var i = 0u; i < p.inner; i++) {
    sum += x[base + i];
  }
  let mean = sum / f32(p.inner);
  var sq = 0.0;
  for (var i = 0u; i < p.inner; i++) {
    let d = x[base + i] - mean;
    sq += d * d;
  }
  return vec2<f32>(mean, inverseSqrt(sq / f32(p.inner) + p.epsilon));
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  if (id >= p.rows * p.items) {
    return;
  }
  let item = id / p.rows;
  let row = (id % p.rows) * p.inner;
  let base = item * p.xStride + p.xOffset + row;
  let s = stats(base);
  let out = item * p.yStride + p.yOffset + row;
  for (var i = 0u; i < p.inner; i++) {
    y[out + i] = (x[base + i] - s.x) * s.y * scale[i] + bias[i];
  }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  if (id >= p.rows * p.items) {
    return;
  }
  let item = id / p.rows;
  let row = (id % p.rows) * p.inner;
  let base = (item / p.maskDiv) * p.xStride + p.xOffset + row;
  let s = stats(base);
  let g0 = item * p.dyStride + p.dyOffset + row;
  var gSum = 0.0;
  var gxSum = 0.0;
  for (var i = 0u; i < p.inner; i++) {
    let g = dy[g0 + i] * scale[i];
    gSum += g;
    gxSum += g * (x[base + i] - s.x) * s.y;
  }
  let n = f32(p.inner);
  let out = item * p.dxStride + p.dxOffset + row;
  for (var i = 0u; i < p.inner; i++) {
    var v = s.y * (dy[g0 + i] * scale[i] - gSum / n - (x[base + i] - s.x) * s.y * (gxSum / n));
    if (ACCUMULATE) {
      v += dx[out + i];
    }
    dx[out + i] = v;
  }
}
