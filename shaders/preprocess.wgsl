// Image → model input tensor: resize with an antialiased triangle (bilinear) filter, then the
// model's recipe (value scale, per-channel mean and std, RGB or BGR order), in two separable passes.
//
// Resampling one axis from S source pixels to D output pixels, scale = S / D:
//   support = max(scale, 1) source pixels (wider than bilinear when shrinking: antialiasing)
//   centre of output pixel X in source coordinates: c = (X + 0.5) · scale
//   out(X) = Σ_i w_i · src(i) / Σ_i w_i,  w_i = max(0, 1 − |i + 0.5 − c| / support)
// over the source pixels i within the support (the same filter as PIL's BILINEAR resize).
// Enlarging, support = 1 and this is bilinear interpolation with half-pixel centres.
//   rows pass:   tmp[ch][y][X] = resample of row y of the RGBA image (values 0–255)
//   cols pass:   out[ch'][Y][X] = (resample of column X of tmp · valueScale − mean[ch]) / std[ch]
// where ch' is the model's channel order (BGR swaps 0 and 2). One invocation per output pixel,
// all three channels.

struct Params {
  srcW: u32,
  srcH: u32,
  dstW: u32,
  dstH: u32,
  scaleX: f32,
  scaleY: f32,
  valueScale: f32,
  bgr: u32,
  mean: vec4<f32>,
  invStd: vec4<f32>,
  outOffset: u32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> rgba: array<u32>;
@group(0) @binding(2) var<storage, read_write> tmp: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

// Source range [first, last] and support of output pixel x for one axis.
fn window(x: u32, scale: f32, size: u32) -> vec3<f32> {
  let support = max(scale, 1.0);
  let centre = (f32(x) + 0.5) * scale;
  let first = max(floor(centre - support), 0.0);
  let last = min(ceil(centre + support), f32(size)) - 1.0;
  return vec3<f32>(first, last, support);
}

fn weight(i: f32, x: u32, scale: f32, support: f32) -> f32 {
  let centre = (f32(x) + 0.5) * scale;
  return max(0.0, 1.0 - abs(i + 0.5 - centre) / support);
}

@compute @workgroup_size(8, 8)
fn rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= p.dstW || gid.y >= p.srcH) {
    return;
  }
  let win = window(gid.x, p.scaleX, p.srcW);
  var sum = vec3<f32>(0.0);
  var total = 0.0;
  for (var i = win.x; i <= win.y; i += 1.0) {
    let w = weight(i, gid.x, p.scaleX, win.z);
    sum += w * unpack4x8unorm(rgba[gid.y * p.srcW + u32(i)]).rgb * 255.0;
    total += w;
  }
  sum /= total;
  let plane = p.srcH * p.dstW;
  let at = gid.y * p.dstW + gid.x;
  tmp[at] = sum.r;
  tmp[plane + at] = sum.g;
  tmp[2u * plane + at] = sum.b;
}

@compute @workgroup_size(8, 8)
fn cols(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= p.dstW || gid.y >= p.dstH) {
    return;
  }
  let win = window(gid.y, p.scaleY, p.srcH);
  let plane = p.srcH * p.dstW;
  var sum = vec3<f32>(0.0);
  var total = 0.0;
  for (var i = win.x; i <= win.y; i += 1.0) {
    let w = weight(i, gid.y, p.scaleY, win.z);
    let at = u32(i) * p.dstW + gid.x;
    sum += w * vec3<f32>(tmp[at], tmp[plane + at], tmp[2u * plane + at]);
    total += w;
  }
  let rgb = (sum / total * p.valueScale - p.mean.rgb) * p.invStd.rgb;
  let v = select(rgb, rgb.bgr, p.bgr == 1u);
  let outPlane = p.dstW * p.dstH;
  let at = p.outOffset + gid.y * p.dstW + gid.x;
  dst[at] = v.x;
  dst[outPlane + at] = v.y;
  dst[2u * outPlane + at] = v.z;
}
