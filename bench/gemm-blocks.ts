/**
 * A micro-benchmark behind a claim in bench/README.md: how fast a plain register-blocked GEMM can
 * run on this adapter, for several register-block shapes. C[N][M] = A[K][M]ᵀ · B[K][N]; each
 * invocation computes (4·TM4) output channels × (4·TN4) positions from vec4 loads, no workgroup
 * memory (the style that SwiftShader rewards). `npm run bench:gemm`.
 */
import { nodeGpu } from '../src/gpu/node.ts';

/** WGSL of one block shape, the accumulators unrolled as named variables. */
function kernel(tm4: number, tn4: number): string {
  const acc = (j: number, i: number) => `acc_${j}_${i}`;
  const body: string[] = [];
  for (let j = 0; j < tn4 * 4; j++) for (let i = 0; i < tm4; i++) body.push(`  var ${acc(j, i)} = vec4<f32>(0.0);`);
  body.push('  for (var k = 0u; k < K; k++) {');
  for (let i = 0; i < tm4; i++) body.push(`    let w${i} = a[k * M4 + m4 + ${i}u];`);
  for (let q = 0; q < tn4; q++) body.push(`    let v${q} = b[k * N4 + n4 + ${q}u];`);
  for (let q = 0; q < tn4; q++) for (let e = 0; e < 4; e++) for (let i = 0; i < tm4; i++) {
    body.push(`    ${acc(q * 4 + e, i)} = fma(w${i}, vec4<f32>(v${q}.${'xyzw'[e]}), ${acc(q * 4 + e, i)});`);
  }
  body.push('  }');
  const all = [];
  for (let j = 0; j < tn4 * 4; j++) for (let i = 0; i < tm4; i++) all.push(acc(j, i));
  return `@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> c: array<vec4<f32>>;
override M4: u32;
override N4: u32;
override K: u32;
@compute @workgroup_size(16, 4)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m4 = gid.y * ${tm4}u;
  let n4 = gid.x * ${tn4}u;
  if (m4 >= M4 || n4 >= N4) { return; }
${body.join('\n')}
  c[n4 * 4u * M4 + m4] = ${all.join(' + ')};
}`;
}

async function main(): Promise<void> {
  // Keep the whole context referenced: it owns Dawn's instance (see DESIGN: a collected instance crashes).
  const gpu = await nodeGpu();
  const { device, adapter } = gpu;
  const [M, N, K, runs] = [128, 768, 512, 8];
  console.log(`plain GEMM ${M}×${N}×${K} on ${adapter.description || adapter.architecture}, median of ${runs} runs`);
  const buffer = (n: number) => device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE });
  const [a, b, c] = [buffer(K * M), buffer(K * N), buffer(M * N)];
  for (const [tm4, tn4] of [[1, 1], [2, 1], [1, 2], [2, 2], [4, 1], [4, 2], [2, 4], [4, 4]]) {
    const pipeline = await device.createComputePipelineAsync({
      layout: 'auto', compute: { module: device.createShaderModule({ code: kernel(tm4, tn4) }), entryPoint: 'main', constants: { M4: M / 4, N4: N / 4, K } },
    });
    const bind = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [a, b, c].map((buf, binding) => ({ binding, resource: { buffer: buf } })) });
    const run = async () => {
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(Math.ceil(N / (4 * tn4) / 16), Math.ceil(M / (4 * tm4) / 4));
      pass.end();
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
    };
    await run();
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      await run();
      times.push(performance.now() - t);
    }
    const ms = times.sort((x, y) => x - y)[runs >> 1];
    console.log(`  block ${String(4 * tm4).padStart(2)} channels × ${String(4 * tn4).padStart(2)} positions: ${ms.toFixed(1).padStart(6)} ms, ${(2 * M * N * K / ms / 1e6).toFixed(2)} GFLOP/s`);
  }
  device.destroy();
  void gpu.owner;
  process.exit(0);
}

await main();
