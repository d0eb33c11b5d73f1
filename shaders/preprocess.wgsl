// Image → model input tensor: resize with an antialiased triangle (bilinear) filter, then the
// model's recipe (value scale, per-channel mean and std, RGB or BGR order), in two separable passes.
//
// Resampling one axis from a source span [origin, origin + S) (the whole picture, or a centre crop
// of it: src/image/recipes.ts sourceRect) to D output pixels, scale = S / D:
//   support = max(scale, 1) source pixels (wider than bilinear when shrinking: antialiasing)
//   centre of output pixel X in source coordinates: c = origin + (X + 0.5) · scale
//   out(X) = Σ_i w_i · src(i) / Σ_i w_i,  w_i = max(0, 1 − |i + 0.5 − c| / support)
// over the source pixels i within the support and the picture (the same filter as PIL's BILINEAR
// resize; for a crop, pixels just outside it weigh in as they do when resizing first, then cropping).
// Enlarging, support = 1 and this is bilinear interpolation with half-pixel centres.
//   rows pass:   resizedRowsOut[ch][y][X] = resample of row y of the RGBA `pixels` (values 0–255)
//   cols pass:   modelInput[ch'][Y][X] = (resample of column X of resizedRows · valueScale − mean[ch]) / std[ch]
// where ch' is the model's channel order (BGR swaps 0 and 2; invStd = 1 / std), written NCHW
// (modelInput[ch'][Y][X]) or, with nhwc = 1, NHWC (modelInput[Y][X][ch']). One invocation per output
// pixel, all three channels; the picture is srcW × srcH, the model input dstW × dstH (at outOffset in
// its buffer).

// Source range [first, last] and support of output pixel x for one axis.
fn window(x: u32, origin: f32, scale: f32, size: u32) -> vec3<f32> {
  let support = max(scale, 1.0);
  let centre = origin + (f32(x) + 0.5) * scale;
  let first = max(floor(centre - support), 0.0);
  let last = min(ceil(centre + support), f32(size)) - 1.0;
  return vec3<f32>(first, last, support);
}

fn weight(i: f32, x: u32, origin: f32, scale: f32, support: f32) -> f32 {
  let centre = origin + (f32(x) + 0.5) * scale;
  return max(0.0, 1.0 - abs(i + 0.5 - centre) / support);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= p.dstW || gid.y >= p.srcH) {
    return;
  }
  let win = window(gid.x, p.originX, p.scaleX, p.srcW);
  var sum = vec3<f32>(0.0);
  var total = 0.0;
  for (var i = win.x; i <= win.y; i += 1.0) {
    let w = weight(i, gid.x, p.originX, p.scaleX, win.z);
    sum += w * unpack4x8unorm(pixels[gid.y * p.srcW + u32(i)]).rgb * 255.0;
    total += w;
  }
  sum /= total;
  let plane = p.srcH * p.dstW;
  let at = gid.y * p.dstW + gid.x;
  resizedRowsOut[at] = sum.r;
  resizedRowsOut[plane + at] = sum.g;
  resizedRowsOut[2u * plane + at] = sum.b;
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn cols(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= p.dstW || gid.y >= p.dstH) {
    return;
  }
  let win = window(gid.y, p.originY, p.scaleY, p.srcH);
  let plane = p.srcH * p.dstW;
  var sum = vec3<f32>(0.0);
  var total = 0.0;
  for (var i = win.x; i <= win.y; i += 1.0) {
    let w = weight(i, gid.y, p.originY, p.scaleY, win.z);
    let at = u32(i) * p.dstW + gid.x;
    sum += w * vec3<f32>(resizedRows[at], resizedRows[plane + at], resizedRows[2u * plane + at]);
    total += w;
  }
  let rgb = (sum / total * p.valueScale - p.mean.rgb) * p.invStd.rgb;
  let v = select(rgb, rgb.bgr, p.bgr == 1u);
  let pixel = gid.y * p.dstW + gid.x;
  if (p.nhwc == 1u) {
    let at = p.outOffset + 3u * pixel;
    modelInput[at] = v.x;
    modelInput[at + 1u] = v.y;
    modelInput[at + 2u] = v.z;
    return;
  }
  let outPlane = p.dstW * p.dstH;
  let at = p.outOffset + pixel;
  modelInput[at] = v.x;
  modelInput[outPlane + at] = v.y;
  modelInput[2u * outPlane + at] = v.z;
}
