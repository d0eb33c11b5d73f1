// From raw Grad-CAM maps to pictures: bilinear upsampling to the image size, per-map min-max
// normalisation, the jet colormap, and an alpha blend over the image.
//
//   upsample:  upsampledOut[first + m, Y, X] = bilinear sample of raw[firstItem + m] (mapH × mapW) at
//              ((Y + 0.5 − cropY)·mapH/cropH − 0.5, (X + 0.5 − cropX)·mapW/cropW − 0.5), coordinates
//              clamped to the map (align_corners = false, as PyTorch and OpenCV; rawBilinear: src/gpu/wgsl-library.ts
//              planeBilinear, PyTorch's (1 − f)·a + f·b per axis); H × W = outH × outW,
//              the display; the crop rectangle is the part of the picture the model saw, in display
//              pixels (the whole display, unless the recipe centre-crops). One invocation per (X, Y, m).
//   minmax:    rangesOut[m] = (min, max) of upsampled[m]; one workgroup of MINMAX_WG_X = 64 per map,
//              strided loop, then a tree reduction in workgroup memory.
//   colorize:  v = (upsampled − min) / (max − min) (0 for a constant map),
//              jet(v) = clamp(1.5 − |4v − 3|, 1.5 − |4v − 2|, 1.5 − |4v − 1|) (MATLAB's jet),
//              out = alpha · jet(v) + (1 − alpha) · pixel, packed RGBA8 (opaque). One invocation per (X, Y, m).
//              Outside the crop rectangle (the model never saw it) no map is drawn: out = OUTSIDE · pixel,
//              the picture dimmed.
//              The display may be smaller than the picture (a picture too large for the device's
//              buffers, SCALED): pixel is then the picture's pixel under the display pixel's centre,
//              (⌊(X + 0.5)·pictureW/W⌋, ⌊(Y + 0.5)·pictureH/H⌋).

const_assert (MINMAX_WG_X & (MINMAX_WG_X - 1u)) == 0u && MINMAX_WG_Y == 1u && MINMAX_WG_Z == 1u;   // the tree reduction halves it

var<workgroup> lo: array<f32, MINMAX_WG_X>;
var<workgroup> hi: array<f32, MINMAX_WG_X>;

const OUTSIDE = 0.4;

// The source coordinate of display pixel dst along one axis, clamped to the map: (dst + 0.5 − origin)·scale − 0.5
// (align_corners = false, the scale multiplied as PyTorch's area_pixel_compute_source_index does).
fn source(dst: u32, origin: f32, scale: f32, size: u32) -> f32 {
  return clamp((f32(dst) + 0.5 - origin) * scale - 0.5, 0.0, f32(size - 1u));
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn upsample(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= p.outW || gid.y >= p.outH || gid.z >= p.maps) {
    return;
  }
  let sx = source(gid.x, p.cropX, f32(p.mapW) / p.cropW, p.mapW);
  let sy = source(gid.y, p.cropY, f32(p.mapH) / p.cropH, p.mapH);
  let base = (p.firstItem + gid.z) * p.mapW * p.mapH;
  upsampledOut[((p.first + gid.z) * p.outH + gid.y) * p.outW + gid.x] = rawBilinear(base, p.mapH, p.mapW, sy, sx);
}

@compute @workgroup_size(MINMAX_WG_X, MINMAX_WG_Y, MINMAX_WG_Z)
fn minmax(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let n = p.outW * p.outH;
  let base = wg.x * n;
  var a = 3.402823e38;
  var b = -3.402823e38;
  for (var i = t; i < n; i += MINMAX_WG_X) {
    let v = upsampled[base + i];
    a = min(a, v);
    b = max(b, v);
  }
  lo[t] = a;
  hi[t] = b;
  workgroupBarrier();
  for (var s = MINMAX_WG_X / 2u; s > 0u; s >>= 1u) {
    if (t < s) {
      lo[t] = min(lo[t], lo[t + s]);
      hi[t] = max(hi[t], hi[t + s]);
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    rangesOut[wg.x] = vec2<f32>(lo[0], hi[0]);
  }
}

fn jet(v: f32) -> vec3<f32> {
  return clamp(vec3<f32>(1.5) - abs(vec3<f32>(4.0 * v - 3.0, 4.0 * v - 2.0, 4.0 * v - 1.0)), vec3<f32>(0.0), vec3<f32>(1.0));
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn colorize(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= p.outW || gid.y >= p.outH || gid.z >= p.maps) {
    return;
  }
  let at = gid.y * p.outW + gid.x;
  let i = gid.z * p.outW * p.outH + at;
  let range = ranges[gid.z];
  let v = select(0.0, (upsampled[i] - range.x) / (range.y - range.x), range.y > range.x);
  var src = at;
  if (SCALED) {
    let sx = min(u32((f32(gid.x) + 0.5) * f32(p.pictureW) / f32(p.outW)), p.pictureW - 1u);
    let sy = min(u32((f32(gid.y) + 0.5) * f32(p.pictureH) / f32(p.outH)), p.pictureH - 1u);
    src = sy * p.pictureW + sx;
  }
  let pixel = unpack4x8unorm(picture[src]).rgb;
  let centre = vec2<f32>(f32(gid.x) + 0.5, f32(gid.y) + 0.5);
  let inside = all(centre >= vec2<f32>(p.cropX, p.cropY)) && all(centre < vec2<f32>(p.cropX + p.cropW, p.cropY + p.cropH));
  let rgb = select(OUTSIDE * pixel, p.alpha * jet(v) + (1.0 - p.alpha) * pixel, inside);
  overlay[i] = pack4x8unorm(vec4<f32>(rgb, 1.0));
}
