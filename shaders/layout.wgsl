// Layout: an output read from an input through a map of axes (Transpose, Slice, Split, Pad, and a
// Concat along an axis other than 1), per image; the batch axis is never mapped.
//   gather:  dst[o] (+)= src[Σ_d s_d(o_d) · xs_d]      (constant mode: `value` where some s_d falls outside)
//            s_d(o) = start_d + o·step_d along each of the 4 per-image output axes d, and outside
//            [0, inDim_d): MODE constant (or none, which never reads outside) → the pad value, MODE_EDGE → clamped to the nearest end,
//            MODE_REFLECT → mirrored about it (s < 0 → −s; s ≥ n → 2(n − 1) − s). A Concat's input is
//            gathered into its region of the output (dstOffset, and the output's strides ys_d).
//   scatter: dx[i] (+)= Σ_{o : the gather reads x[i] for dst[o]} dy[o]   the gather's backward, as a
//            gather over the input: along each axis d the input coordinate c_d = (i / xs_d) % inDim_d
//            is read by the outputs o_d = (c_d − start_d) / step_d when that divides and lies in
//            [0, outDim_d) (a slice's unread inputs and a pad's padding get 0); with MODE_EDGE a border
//            coordinate is read by the whole run of padding beside it, with MODE_REFLECT by up to two
//            mirrored outputs too: every combination of those ranges across the axes is summed.
// Threads: one invocation per value written (items × outCount for gather, items × inCount for
// scatter); no workgroup memory, no atomics. Item i of a view starts at i·stride + offset.
// Geometry geo[6·d + k] for the per-image output axes d = 0…3 (shapes of lower rank padded in front
// with size-1 axes): k = 0 outDim, 1 xs (the input's stride of the axis output axis d reads),
// 2 start, 3 step, 4 inDim (that input axis's size), 5 ys (the output's stride of axis d).

const AXES: i32 = 4;

fn g(d: i32, k: i32) -> i32 {
  return geo[6 * d + k];
}

/** The input coordinate that output coordinate o reads along axis d, and whether it lies inside. */
fn source(d: i32, o: i32) -> vec2<i32> {
  let n = g(d, 4);
  var s = g(d, 2) + o * g(d, 3);
  var inside = 1;
  if (s < 0 || s >= n) {
    if (MODE == MODE_EDGE) {
      s = clamp(s, 0, n - 1);
    } else if (MODE == MODE_REFLECT) {
      if (s < 0) {
        s = -s;
      }
      if (s >= n) {
        s = 2 * (n - 1) - s;
      }
    } else {
      inside = 0;
    }
  }
  return vec2<i32>(s, inside);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  if (id >= p.outCount * p.items) {
    return;
  }
  let item = id / p.outCount;
  var k = i32(id % p.outCount);
  var xi = 0;
  var yi = 0;
  var inside = true;
  for (var d = AXES - 1; d >= 0; d--) {
    let n = g(d, 0);
    let o = k % n;
    k = k / n;
    let s = source(d, o);
    inside = inside && s.y == 1;
    xi += s.x * g(d, 1);
    yi += o * g(d, 5);
  }
  var v = p.value;
  if (inside) {
    v = src[item * p.srcStride + p.srcOffset + u32(xi)];
  }
  let at = item * p.dstStride + p.dstOffset + u32(yi);
  if (ACCUMULATE) {
    v += dst[at];
  }
  dst[at] = v;
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn scatter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  if (id >= p.inCount * p.items) {
    return;
  }
  let item = id / p.inCount;
  let i = i32(id % p.inCount);
  // Per axis, up to three ranges [lo, hi) of outputs that read coordinate c (compacted to the front).
  var lo: array<i32, 12>;
  var hi: array<i32, 12>;
  var count: array<i32, 4>;
  var combos = 1;
  for (var d = 0; d < AXES; d++) {
    let n = g(d, 4);
    let outDim = g(d, 0);
    let start = g(d, 2);
    let step = g(d, 3);
    let c = (i / g(d, 1)) % n;
    var r = 0;
    let t = c - start;
    if (t % step == 0 && t / step >= 0 && t / step < outDim) {
      var a = t / step;
      var b = a + 1;
      if (MODE == MODE_EDGE) {
        // (pads only: step 1) the padding before reads coordinate 0, the padding after n − 1.
        if (c == 0) {
          a = 0;
        }
        if (c == n - 1) {
          b = outDim;
        }
      }
      lo[3 * d] = a;
      hi[3 * d] = b;
      r = 1;
    }
    if (MODE == MODE_REFLECT) {
      let before = -c - start; // s = −c < 0 mirrors to c
      if (c > 0 && before >= 0 && before < outDim) {
        lo[3 * d + r] = before;
        hi[3 * d + r] = before + 1;
        r++;
      }
      let after = 2 * (n - 1) - c - start; // s = 2(n − 1) − c ≥ n mirrors to c
      if (c < n - 1 && after >= 0 && after < outDim) {
        lo[3 * d + r] = after;
        hi[3 * d + r] = after + 1;
        r++;
      }
    }
    count[d] = r;
    combos *= r;
  }
  var sum = 0.0;
  let base = item * p.srcStride + p.srcOffset;
  for (var combo = 0; combo < combos; combo++) {
    // Which range along each axis, and how many outputs that combination holds.
    var pick: array<i32, 4>;
    var rest = combo;
    var size = 1;
    for (var d = 0; d < AXES; d++) {
      pick[d] = 3 * d + rest % count[d];
      rest = rest / count[d];
      size *= hi[pick[d]] - lo[pick[d]];
    }
    for (var t = 0; t < size; t++) {
      var u = t;
      var yi = 0;
      for (var d = 0; d < AXES; d++) {
        let len = hi[pick[d]] - lo[pick[d]];
        yi += (lo[pick[d]] + u % len) * g(d, 5);
        u = u / len;
      }
      sum += src[base + u32(yi)];
    }
  }
  let at = item * p.dstStride + p.dstOffset + u32(i);
  if (ACCUMULATE) {
    sum += dst[at];
  }
  dst[at] = sum;
}

// fill: dst[i] = value for the inCount values of each item (a gradient that its writers add to,
// zeroed first: the root of channel slices, src/runtime/backward.ts). One invocation per value.
@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  if (id >= p.inCount * p.items) {
    return;
  }
  let item = id / p.inCount;
  dst[item * p.dstStride + p.dstOffset + id % p.inCount] = p.value;
}
