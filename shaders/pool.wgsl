// Max and average pooling over KH×KW windows, forward and backward.
//
// Window (oy, ox) covers input rows oy·SH − padT … + KH − 1 and columns ox·SW − padL … + KW − 1.
// Forward, one invocation per output value:
//   max:  y = max over the window's in-range inputs (padding never wins)
//   avg:  y = Σ in-range inputs / count, count = the window clipped to the input (or, with
//         COUNT_INCLUDE_PAD, clipped to the padded input [−pad, size + pad)); GlobalAveragePool is a
//         window of the whole plane.
// Backward, one invocation per *input* value (each sums over the windows that cover it, so no two
// invocations write the same place: deterministic, no atomics):
//   max:  dx = Σ over covering windows whose arg-max is this input of dy(window); the arg-max is
//         recomputed from x, and a tie goes to the first maximal input in row-major order (PyTorch).
//   avg:  dx = Σ over covering windows of dy(window) / count(window).
// Views: item i of a tensor starts at i·stride + offset. Backward reads x at image i / maskDiv.

override KH: u32 = 1u;
override KW: u32 = 1u;
override SH: u32 = 1u;
override SW: u32 = 1u;
override MAX: bool = true;
override COUNT_INCLUDE_PAD: bool = false;
override ACCUMULATE: bool = false;

struct Params {
  channels: u32,
  inH: u32,
  inW: u32,
  outH: u32,
  outW: u32,
  items: u32,
  padT: i32,
  padL: i32,
  padB: i32,
  padR: i32,
  xOffset: u32,   // forward input x
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

// Window (oy, ox)'s count for the average.
fn avgCount(oy: i32, ox: i32) -> f32 {
  var h0 = oy * i32(SH) - p.padT;
  var w0 = ox * i32(SW) - p.padL;
  var h1 = min(h0 + i32(KH), i32(p.inH) + p.padB);
  var w1 = min(w0 + i32(KW), i32(p.inW) + p.padR);
  if (!COUNT_INCLUDE_PAD) {
    h0 = max(h0, 0);
    w0 = max(w0, 0);
    h1 = min(h1, i32(p.inH));
    w1 = min(w1, i32(p.inW));
  }
  return f32(max((h1 - h0) * (w1 - w0), 1));
}

// The window (oy, ox) clipped to the input: rows [r.x, r.y), columns [r.z, r.w).
fn clipped(oy: i32, ox: i32) -> vec4<i32> {
  let h0 = oy * i32(SH) - p.padT;
  let w0 = ox * i32(SW) - p.padL;
  return vec4<i32>(max(h0, 0), min(h0 + i32(KH), i32(p.inH)), max(w0, 0), min(w0 + i32(KW), i32(p.inW)));
}

// Index (within the plane) of the first maximal input of window (oy, ox) in row-major order, or -1
// when the window holds no input at all.
fn argmax(plane: u32, oy: i32, ox: i32) -> i32 {
  let r = clipped(oy, ox);
  var best = -3.402823e38;
  var at = -1;
  for (var iy = r.x; iy < r.y; iy++) {
    let rowAt = plane + u32(iy) * p.inW;
    for (var ix = r.z; ix < r.w; ix++) {
      let v = x[rowAt + u32(ix)];
      if (v > best || at < 0) {
        best = v;
        at = iy * i32(p.inW) + ix;
      }
    }
  }
  return at;
}

// Threads: gid.x = column, gid.y = row (of the output forward, of the input backward),
// gid.z = item · channels + channel. No integer division per value but one (slow on CPUs).

@compute @workgroup_size(8, 8)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= p.outW || gid.y >= p.outH || gid.z >= p.items * p.channels) {
    return;
  }
  let item = gid.z / p.channels;
  let c = gid.z % p.channels;
  let oy = i32(gid.y);
  let ox = i32(gid.x);
  let plane = item * p.xStride + p.xOffset + c * p.inH * p.inW;
  var result: f32;
  if (MAX) {
    let at = argmax(plane, oy, ox);
    result = select(0.0, x[plane + u32(max(at, 0))], at >= 0);
  } else {
    let r = clipped(oy, ox);
    var sum = 0.0;
    for (var iy = r.x; iy < r.y; iy++) {
      let rowAt = plane + u32(iy) * p.inW;
      for (var ix = r.z; ix < r.w; ix++) {
        sum += x[rowAt + u32(ix)];
      }
    }
    result = sum / avgCount(oy, ox);
  }
  g[item * p.gStride + p.gOffset + (c * p.outH + gid.y) * p.outW + gid.x] = result;
}

@compute @workgroup_size(8, 8)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= p.inW || gid.y >= p.inH || gid.z >= p.items * p.channels) {
    return;
  }
  let item = gid.z / p.channels;
  let c = gid.z % p.channels;
  let iy = i32(gid.y);
  let ix = i32(gid.x);
  let inHW = p.inH * p.inW;
  let plane = (item / p.maskDiv) * p.xStride + p.xOffset + c * inHW;
  let gPlane = item * p.gStride + p.gOffset + c * p.outH * p.outW;
  // Windows covering (iy, ix): oy·SH − padT ≤ iy ≤ oy·SH − padT + KH − 1.
  let oy0 = max(0, (iy + p.padT - i32(KH) + i32(SH)) / i32(SH));
  let oy1 = min(i32(p.outH) - 1, (iy + p.padT) / i32(SH));
  let ox0 = max(0, (ix + p.padL - i32(KW) + i32(SW)) / i32(SW));
  let ox1 = min(i32(p.outW) - 1, (ix + p.padL) / i32(SW));
  var sum = 0.0;
  for (var oy = oy0; oy <= oy1; oy++) {
    for (var ox = ox0; ox <= ox1; ox++) {
      let gv = g[gPlane + u32(oy) * p.outW + u32(ox)];
      if (MAX) {
        if (argmax(plane, oy, ox) == iy * i32(p.inW) + ix) {
          sum += gv;
        }
      } else {
        sum += gv / avgCount(oy, ox);
      }
    }
  }
  let addr = item * p.dStride + p.dOffset + (c * p.inH + gid.y) * p.inW + gid.x;
  if (ACCUMULATE) {
    d[addr] += sum;
  } else {
    d[addr] = sum;
  }
}
