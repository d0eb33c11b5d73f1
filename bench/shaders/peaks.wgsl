// The device's two peaks, one kernel each (bench/peaks.ts times them and counts their work):
//
//   copyPeak:  dst[i] = src[i] for every i < p.count (vec4<f32> elements): reads 16 · count bytes
//              and writes 16 · count bytes, nothing else. Threads: p.stride invocations (a 1-D launch
//              split over x and y, linearIndex), invocation t copying i = t, t + stride, t + 2·stride, …
//              (p.steps of them, stride = ⌈count / steps⌉): neighbouring invocations touch
//              neighbouring elements at every step (coalesced on a GPU), and each invocation does
//              enough work that its launch cost (large on a software adapter) does not count.
//
//   fmaPeak:   per invocation, 8 independent vec4<f32> chains x_j ← x_j · a + b, p.steps times
//              (p.steps a multiple of UNROLL): 8 FLOPs per vec4 multiply-add (4 lanes × multiply and
//              add), 64 · steps FLOPs per invocation. Written as a multiply and an add, the form the
//              engine's kernels use (shaders/conv.wgsl: acc += w * x), which a GPU compiler contracts
//              into one FMA instruction; WGSL's fma() builtin may instead be a slow exact routine on a
//              CPU adapter. Independent chains hide the latency; a and b are uniforms, so the compiler
//              cannot fold the chain away. Then
//                result[id] = Σ_j (x_j.x + x_j.y + x_j.z + x_j.w),   x_j starting at (id mod 16) + 4j + (0, 1, 2, 3)
//              With a = b = 1 every chain ends at its start + steps exactly (integers below 2^24), so a
//              test can check from `result` that every counted multiply-add ran.
//              Threads: one invocation per result value, a 1-D launch split over x and y (linearIndex).

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn copyPeak(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = linearIndex(gid, nwg);
  if (t >= p.stride) {
    return;
  }
  for (var k = 0u; k < p.steps; k++) {
    let i = t + k * p.stride;
    if (i < p.count) {
      dst[i] = src[i];
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn fmaPeak(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = linearIndex(gid, nwg);
  if (id >= p.count) {
    return;
  }
  let a = vec4<f32>(p.a);
  let b = vec4<f32>(p.b);
  let base = vec4<f32>(f32(id % 16u)) + vec4<f32>(0.0, 1.0, 2.0, 3.0);
  var x0 = base;
  var x1 = base + 4.0;
  var x2 = base + 8.0;
  var x3 = base + 12.0;
  var x4 = base + 16.0;
  var x5 = base + 20.0;
  var x6 = base + 24.0;
  var x7 = base + 28.0;
  for (var s = 0u; s < p.steps; s += UNROLL) {
    for (var u = 0u; u < UNROLL; u++) {
      x0 = x0 * a + b;
      x1 = x1 * a + b;
      x2 = x2 * a + b;
      x3 = x3 * a + b;
      x4 = x4 * a + b;
      x5 = x5 * a + b;
      x6 = x6 * a + b;
      x7 = x7 * a + b;
    }
  }
  let t = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
  result[id] = t.x + t.y + t.z + t.w;
}
