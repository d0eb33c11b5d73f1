// From raw Grad-CAM maps to pictures: bilinear upsampling to the image size, per-map min-max
// normalisation, the jet colormap, and an alpha blend over the image.
//
//   upsample:  up[m, Y, X] = bilinear sample of raw[m] (h × w) at ((Y + 0.5)·h/H − 0.5, (X + 0.5)·w/W − 0.5),
//              coordinates clamped to the map (align_corners = false, as PyTorch and OpenCV).
//              One invocation per (X, Y, m).
//   minmax:    mm[m] = (min, max) of up[m]; one workgroup of 64 per map, strided loop, then a tree
//              reduction in workgroup memory.
//   colorize:  v = (up − min) / (max − min) (0 for a constant map),
//              jet(v) = clamp(1.5 − |4v − 3|, 1.5 − |4v − 2|, 1.5 − |4v − 1|) (MATLAB's jet),
//              out = alpha · jet(v) + (1 − alpha) · pixel, packed RGBA8 (opaque). One invocation per (X, Y, m).
//              The display may be smaller than the picture (a picture too large for the device's
//              buffers, SCALED): pixel is then the picture's pixel under the display pixel's centre,
//              (⌊(X + 0.5)·srcW/W⌋, ⌊(Y + 0.5)·srcH/H⌋).

override SCALED: bool = false;

struct Params {
  w: u32,          // raw map size
  h: u32,
  outW: u32,       // image size
  outH: u32,
  maps: u32,
  alpha: f32,
  first: u32,      // upsample: the first output map (each layer's maps go after the previous layers')
  srcW: u32,       // the picture's size (colorize; the display size unless SCALED)
  srcH: u32,
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> raw: array<f32>;
@group(0) @binding(2) var<storage, read_write> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> mm: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read> picture: array<u32>;
@group(0) @binding(5) var<storage, read_write> overlay: array<u32>;

var<workgroup> lo: array<f32, 64>;
var<workgroup> hi: array<f32, 64>;

fn source(dst: u32, scale: f32, size: u32) -> vec3<f32> {
  let s = max((f32(dst) + 0.5) * scale - 0.5, 0.0);
  let i0 = min(u32(s), size - 1u);
  let i1 = min(i0 + 1u, size - 1u);
  return vec3<f32>(f32(i0), f32(i1), s - f32(i0));
}

@compute @workgroup_size(8, 8)
fn upsample(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= p.outW || gid.y >= p.outH || gid.z >= p.maps) {
    return;
  }
  let sx = source(gid.x, f32(p.w) / f32(p.outW), p.w);
  let sy = source(gid.y, f32(p.h) / f32(p.outH), p.h);
  let base = gid.z * p.w * p.h;
  let r0 = base + u32(sy.x) * p.w;
  let r1 = base + u32(sy.y) * p.w;
  let top = mix(raw[r0 + u32(sx.x)], raw[r0 + u32(sx.y)], sx.z);
  let bottom = mix(raw[r1 + u32(sx.x)], raw[r1 + u32(sx.y)], sx.z);
  up[((p.first + gid.z) * p.outH + gid.y) * p.outW + gid.x] = mix(top, bottom, sy.z);
}

@compute @workgroup_size(64)
fn minmax(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let n = p.outW * p.outH;
  let base = wg.x * n;
  var a = 3.402823e38;
  var b = -3.402823e38;
  for (var i = t; i < n; i += 64u) {
    let v = up[base + i];
    a = min(a, v);
    b = max(b, v);
  }
  lo[t] = a;
  hi[t] = b;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (t < s) {
      lo[t] = min(lo[t], lo[t + s]);
      hi[t] = max(hi[t], hi[t + s]);
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    mm[wg.x] = vec2<f32>(lo[0], hi[0]);
  }
}

fn jet(v: f32) -> vec3<f32> {
  return clamp(vec3<f32>(1.5) - abs(vec3<f32>(4.0 * v - 3.0, 4.0 * v - 2.0, 4.0 * v - 1.0)), vec3<f32>(0.0), vec3<f32>(1.0));
}

@compute @workgroup_size(8, 8)
fn colorize(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= p.outW || gid.y >= p.outH || gid.z >= p.maps) {
    return;
  }
  let at = gid.y * p.outW + gid.x;
  let i = gid.z * p.outW * p.outH + at;
  let range = mm[gid.z];
  let v = select(0.0, (up[i] - range.x) / (range.y - range.x), range.y > range.x);
  var src = at;
  if (SCALED) {
    let sx = min(u32((f32(gid.x) + 0.5) * f32(p.srcW) / f32(p.outW)), p.srcW - 1u);
    let sy = min(u32((f32(gid.y) + 0.5) * f32(p.srcH) / f32(p.outH)), p.srcH - 1u);
    src = sy * p.srcW + sx;
  }
  let pixel = unpack4x8unorm(picture[src]).rgb;
  let rgb = p.alpha * jet(v) + (1.0 - p.alpha) * pixel;
  overlay[i] = pack4x8unorm(vec4<f32>(rgb, 1.0));
}
