// Aug-smooth on the GPU (src/gradcam/smoothing.ts): test-time augmentation as pytorch-grad-cam's
// aug_smooth. The engine runs G groups of 6 images; image 6g + a is augmentation a of group g's input
// (written into image 6g): a = 3·flip + j, flip ∈ {0, 1}, factor = (1, 0.9, 1.1)[j], so a = 0 is the
// input as given.
//   augment: x[6g + a] = factor_a · F^{flip_a}(x[6g]) for a = 1 … 5, F the horizontal flip (column
//            w ↔ W − 1 − w), in the input's layout (nhwc = 0: [C, H, W], 1: [H, W, C]). One invocation
//            per (element e of one image, a − 1, g).
//   range:   ranges[b] = (min, max) of the raw map of item b (hw values, b = image·K + k); one
//            invocation per item (a loop over positions).
//   mean:    raw[(6g)·K + k][i] = (1/6) Σ_a (raw[(6g + a)·K + k][F^{flip_a}(i)] − min_a) / (max_a − min_a + 1e-7):
//            each augmentation's map flipped back (at the map's resolution: the flip commutes with the
//            half-pixel bilinear upsampling) and min-max normalised (pytorch-grad-cam's scale_cam_image),
//            averaged, written over augmentation 0's map. Invocation (i, k, g) is the only one that reads
//            position i of that map, so writing it in place is safe. One invocation per (i, k, g).

fn augFactor(a: u32) -> f32 {
  switch a % 3u {
    case 1u: {
      return 0.9;
    }
    case 2u: {
      return 1.1;
    }
    default: {
      return 1.0;
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn augment(@builtin(global_invocation_id) gid: vec3<u32>) {
  let e = gid.x;
  let a = gid.y + 1u;
  let g = gid.z;
  if (e >= p.perImage || a >= 6u || g >= p.groups) {
    return;
  }
  var source = e;
  if (a >= 3u) {
    if (p.nhwc == 1u) {
      let x = (e / p.channels) % p.width;
      source = e + (p.width - 1u - x) * p.channels - x * p.channels;
    } else {
      let x = e % p.width;
      source = e - x + (p.width - 1u - x);
    }
  }
  let base = p.inputOffset + 6u * g * p.inputStride;
  input[base + a * p.inputStride + e] = augFactor(a) * input[base + source];
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn range(@builtin(global_invocation_id) gid: vec3<u32>) {
  let b = gid.x;
  if (b >= p.items) {
    return;
  }
  var lo = 3.402823e38;
  var hi = -3.402823e38;
  for (var i = 0u; i < p.hw; i++) {
    let v = raw[b * p.hw + i];
    lo = min(lo, v);
    hi = max(hi, v);
  }
  rangesOut[b] = vec2<f32>(lo, hi);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn mean(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let k = gid.y;
  let g = gid.z;
  if (i >= p.hw || k >= p.classesPerImage || g >= p.groups) {
    return;
  }
  let x = i % p.mapW;
  let flipped = i - x + (p.mapW - 1u - x);
  var s = 0.0;
  for (var a = 0u; a < 6u; a++) {
    let b = (6u * g + a) * p.classesPerImage + k;
    let r = ranges[b];
    let at = select(i, flipped, a >= 3u);
    s += (rawInOut[b * p.hw + at] - r.x) / (r.y - r.x + 1e-7);
  }
  rawInOut[((6u * g) * p.classesPerImage + k) * p.hw + i] = s / 6.0;
}
