// Winograd F(2×2, 3×3) (Lavin & Gray, 2016): the input and output transforms around the 16 GEMMs
// of a 3×3, stride-1 convolution. The GEMMs run in shaders/conv.wgsl (WEIGHTS_PER_ITEM).
// The data gradient of such a convolution is one too: dx = dy' ⋆ W' with W'[ci, co] = W[co, ci]
// rotated by 180°, pads 2 − pad, dy' = dy · (y > 0) when MASK (the forward op had a fused ReLU; the
// mask reads the forward output y of image n / maskDiv; 0 < y < 6 with RELU6; GUIDED also zeroes dy ≤ 0,
// guided backprop's ReLU backward: fusedPasses, src/gpu/wgsl-library.ts FUSED_RELU); ACCUMULATE adds to dx.
//
// For every 2×2 tile of output positions, d = the 4×4 input window under it (x read as 0 outside the
// input; window origin (2·ty − padT, 2·tx − padL)) and g = W[k, c, ·, ·]:
//   V = Bᵀ d B                                   inputTransform
//   U = G g Gᵀ                                   src/kernels/winograd.ts, once at compile time
//   M[ξ, k, t] = Σ_c U[ξ, c, k] · V[ξ, c, t]     16 GEMMs, one per point ξ = 4i + j of the 4×4 domain
//   y = Aᵀ M A + bias[k], then ReLU when RELU    outputTransform (ReLU6 when RELU6: fusedRelu, FUSED_RELU)
//   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]   G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]   Aᵀ = [1 1 1 0; 0 1 −1 −1]
// 16 multiplications per channel and 2×2 outputs instead of 36 (2.25× fewer); the transforms are
// additions only, and every coefficient is 0, ±½ or ±1.
//
// Layouts: V[ξ][c][t] and M[ξ][k][t]; t = (n·TH + ty)·TW + tx numbers the TH × TW tiles of every item,
// and each row of t is padded to T8 (a multiple of 8, zeros) so that a GEMM block of 8 positions
// never spans two points ξ.
//
// Threads: inputTransform, one invocation per (item, channel, tile), reading `input` (x, or dy for the
// data gradient; item n at n·inStride + inOffset) and writing `V`; outputTransform, one per
// (item, output channel, tile), reading `M` and writing its 2×2 outputs (those inside the output)
// into `output` (y or dx; item n at n·outStride + outOffset: a channel slice of a concat).

// Input row iy, columns ix … ix + 3 of channel plane `base` (mask plane `maskBase`), 0 outside the input.
fn inputRow(base: u32, maskBase: u32, iy: i32, ix: i32) -> vec4<f32> {
  if (iy < 0 || iy >= i32(p.inH)) {
    return vec4<f32>(0.0);
  }
  let row = u32(iy) * p.inW;
  var v = vec4<f32>(0.0);
  for (var j = 0; j < 4; j++) {
    let x = ix + j;
    if (x >= 0 && x < i32(p.inW)) {
      v[j] = input[base + row + u32(x)];
      if (MASK && !fusedPasses(mask[maskBase + row + u32(x)], v[j])) {
        v[j] = 0.0;
      }
    }
  }
  return v;
}

// Bᵀ applied to 4 rows (or, on a transposed vector, to its 4 components).
fn bt(a: vec4<f32>, b: vec4<f32>, c: vec4<f32>, d: vec4<f32>) -> array<vec4<f32>, 4> {
  return array<vec4<f32>, 4>(a - c, b + c, c - b, b - d);
}

fn btRow(r: vec4<f32>) -> vec4<f32> {
  return vec4<f32>(r.x - r.z, r.y + r.z, r.z - r.y, r.y - r.w);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn inputTransform(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let tilesPerItem = p.tilesH * p.tilesW;
  let id = linearIndex(gid, nwg);
  if (id >= p.items * p.channels * tilesPerItem) {
    return;
  }
  let tile = id % tilesPerItem;
  let c = (id / tilesPerItem) % p.channels;
  let n = id / (tilesPerItem * p.channels);
  let iy = i32(tile / p.tilesW) * 2 - p.padT;
  let ix = i32(tile % p.tilesW) * 2 - p.padL;
  let base = n * p.inStride + p.inOffset + c * p.inH * p.inW;
  let maskBase = (n / p.maskDiv) * p.maskStride + p.maskOffset + c * p.inH * p.inW;
  let rows = bt(inputRow(base, maskBase, iy, ix), inputRow(base, maskBase, iy + 1, ix),
    inputRow(base, maskBase, iy + 2, ix), inputRow(base, maskBase, iy + 3, ix));
  let t = n * tilesPerItem + tile;
  let plane = p.channels * p.t8; // values per point ξ
  for (var i = 0u; i < 4u; i++) {
    let v = btRow(rows[i]);
    for (var j = 0u; j < 4u; j++) {
      V[(i * 4u + j) * plane + c * p.t8 + t] = v[j];
    }
  }
}

// Aᵀ applied to a row of 4: (r0 + r1 + r2, r1 − r2 − r3).
fn atRow(r: vec4<f32>) -> vec2<f32> {
  return vec2<f32>(r.x + r.y + r.z, r.y - r.z - r.w);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn outputTransform(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let tilesPerItem = p.tilesH * p.tilesW;
  let id = linearIndex(gid, nwg);
  if (id >= p.items * p.channels * tilesPerItem) {
    return;
  }
  let tile = id % tilesPerItem;
  let k = (id / tilesPerItem) % p.channels;
  let n = id / (tilesPerItem * p.channels);
  let t = n * tilesPerItem + tile;
  let plane = p.channels * p.t8;
  let at = k * p.t8 + t;
  var m: array<vec4<f32>, 4>;
  for (var i = 0u; i < 4u; i++) {
    let row = i * 4u * plane + at;
    m[i] = vec4<f32>(M[row], M[row + plane], M[row + 2u * plane], M[row + 3u * plane]);
  }
  // Aᵀ M (rows), then · A (within each row).
  let top = atRow(m[0] + m[1] + m[2]);
  let bottom = atRow(m[1] - m[2] - m[3]);
  var y = array<vec2<f32>, 2>(top + bias[k], bottom + bias[k]);
  let oy = (tile / p.tilesW) * 2u;
  let ox = (tile % p.tilesW) * 2u;
  let base = n * p.outStride + p.outOffset + k * p.outH * p.outW;
  for (var i = 0u; i < 2u; i++) {
    for (var j = 0u; j < 2u; j++) {
      if (oy + i < p.outH && ox + j < p.outW) {
        let v = fusedRelu(y[i][j]);
        let at = base + (oy + i) * p.outW + ox + j;
        if (ACCUMULATE) {
          output[at] += v;
        } else {
          output[at] = v;
        }
      }
    }
  }
}
