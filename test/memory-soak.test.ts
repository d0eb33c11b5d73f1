/**
 * Memory soak: 200 explains on one network, then 30 load/destroy cycles. Nothing may grow from call
 * to call or from load to load.
 *
 * Three witnesses:
 * - the engine's own ledger of live GPU buffers (src/gpu/buffers.ts: every buffer is made and
 *   freed there): exact. After the warm-up (the first 20 explains, the first batched call among
 *   them, fill the caches: engines per batch size, programs per request, display and preprocessing
 *   stages per picture size, read-back plans), the count and the bytes must not change at all;
 *   after each destroy they must be back where they were before the first load.
 * - JavaScript's heap after a full garbage collection: the median of the last window may exceed
 *   the median of the window around the half-way point by at most 1 MB (10 KB per explain over the
 *   second half's 100; a result, picture or closure kept per call is more).
 * - the process's RSS (after a full garbage collection; medians of windows, not single samples),
 *   which also sees Dawn's and SwiftShader's native memory. Dawn on SwiftShader keeps some memory
 *   per queue submission and per buffer made and destroyed by itself (measured with plain WebGPU
 *   calls, no engine: 2 to 26 KB per submission, at times in steps of 8 MB), so RSS alone cannot
 *   tell a leak of ours from Dawn's. The rule compares with a peer measured in the same process
 *   right after: plain WebGPU calls doing what the engine's calls do (as many submissions, each with
 *   an upload, a compute pass of 30 dispatches and a mapped read-back; for the cycles, as many
 *   buffers of the same total size as a load makes, written and destroyed). Ours may exceed the
 *   peer's growth over the second half by at most 4 MB. Why 4: without any leak, the allocators
 *   under Dawn and SwiftShader move RSS by megabytes (over 2000 explains it wandered between 194
 *   and 217 MiB with no trend, bench/results/2026-12-01-swiftshader-soak-2000.json; this test's
 *   second half grew by 1.5, 1.9 and 2.7 MB in three runs here), so a 2 MB bound would fail
 *   without a leak. A leak of 40 KB or more per explain (a leaked 224×224 input tensor is 600 KB),
 *   or of 270 KB or more per load, fails. This file runs alone, after every other test file, with
 *   MALLOC_ARENA_MAX=1 (vite.config.ts, project 'soak'): under contention glibc opens more malloc
 *   arenas for SwiftShader's threads, and RSS grew by up to 4.57 MB without a leak (1.2 to 1.4 MB
 *   with one arena, at the same load). What RSS cannot see: GPU buffers. Dawn takes SwiftShader's
 *   device memory in blocks of megabytes, so in a scratch copy of this test a deliberate leak of a
 *   64 KB buffer per explain made outside the ledger showed as one 7.5 MB step between the two
 *   windows and passed, as did 0.2 MB (one load's buffers) per load. Buffers are the ledger's:
 *   every buffer of the engine is made in src/gpu/buffers.ts, which counts it exactly.
 *
 * The model is small (convolutions with a fused ReLU, pooling, a concat, GAP, Reshape, Gemm,
 * Softmax: the same code paths as GoogLeNet's, Winograd and im2col included) so that it runs in
 * about a minute on SwiftShader; GoogLeNet would take 2 s per explain there. The calls mix what a
 * session does: pictures of three sizes and a tensor, top-1 and top-3, two layers, overlays on and
 * off, both reductions, and a batched call every 20th.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, test } from 'vitest';
import { liveBuffers } from '../src/gpu/buffers.ts';
import { gradCAM, Network } from '../src/gradcam/network.ts';
import type { GradcamOptions, ModelInput } from '../src/gradcam/types.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { Rng } from '../weights/generate/random.ts';
import { testGpu } from './helpers/gpu.ts';
import { randomPicture, SMALL_SHAPE, smallModel } from './helpers/small-model.ts';

const SHAPE = SMALL_SHAPE;
const EXPLAINS = 200;
const WARMUP = 20;
const CYCLES = 30;
/** RSS growth allowed over the second half beyond the peer's (median of the last window against that of the window around the middle). */
const RSS_SLACK = 4 * 2 ** 20;
/** JavaScript heap growth allowed over the second half. */
const HEAP_SLACK = 2 ** 20;



function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// A full garbage collection before each sample (node's own gc(), reached without --expose-gc on
// the command line), so that RSS shows memory still referenced, not garbage not yet collected.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Sample {
  rss: number;
  heap: number;
}

function memory(): Sample {
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}

/**
 * The peer for the explains: `calls` times what one explain asks of Dawn, with plain WebGPU calls
 * (a 4 KB upload, a compute pass of 30 dispatches, a 16 KB read-back mapped and copied), sampled
 * like the explains.
 */
async function peerRuns(device: GPUDevice, calls: number): Promise<Sample[]> {
  const module = device.createShaderModule({ code: '@group(0) @binding(0) var<storage, read_write> b: array<f32>;\n@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) { b[g.x] = b[g.x] * 0.5 + 1.0; }' });
  const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const buffer = device.createBuffer({ size: 16384, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  const staging = device.createBuffer({ size: 16384, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer } }] });
  const out: Sample[] = [];
  for (let i = 0; i < calls; i++) {
    device.queue.writeBuffer(buffer, 0, new Float32Array(1024).fill(i));
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    for (let d = 0; d < 30; d++) pass.dispatchWorkgroups(64);
    pass.end();
    encoder.copyBufferToBuffer(buffer, 0, staging, 0, 16384);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    staging.getMappedRange().slice(0);
    staging.unmap();
    out.push(memory());
  }
  buffer.destroy();
  staging.destroy();
  return out;
}

/** The peer for the load/destroy cycles: `count` buffers of `bytes` in all made, written and destroyed, `cycles` times. */
async function peerCycles(device: GPUDevice, cycles: number, count: number, bytes: number): Promise<Sample[]> {
  const size = Math.max(16, Math.ceil(bytes / count / 16) * 16);
  const out: Sample[] = [];
  for (let i = 0; i < cycles; i++) {
    const buffers = Array.from({ length: count }, () => device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST }));
    for (const b of buffers) device.queue.writeBuffer(b, 0, new Uint8Array(size));
    await device.queue.onSubmittedWorkDone();
    for (const b of buffers) b.destroy();
    out.push(memory());
  }
  return out;
}

/** The second half's growth: the median of the last `w` samples minus the median of the `w` around the middle. */
function growth(samples: number[], w: number): number {
  const mid = Math.floor(samples.length / 2);
  return median(samples.slice(-w)) - median(samples.slice(mid - w / 2, mid + w / 2));
}

const MB = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MB`;

describe('memory soak', () => {
  test(`${EXPLAINS} explains on one network, then ${CYCLES} load/destroy cycles: nothing grows`, async () => {
    const gpu = await testGpu();
    const { device } = gpu;
    const model = decodeOnnx(encodeOnnx(smallModel(17, 'reshape-softmax')));
    const r = new Rng(9);
    const inputs: ModelInput[] = [randomPicture(r, 16, 12), randomPicture(r, 40, 30), randomPicture(r, 9, 21), { shape: SHAPE, data: Float32Array.from({ length: 3 * 16 * 12 }, () => r.uniform(-2, 2)) }];
    const requests: GradcamOptions[] = [
      { classes: 'top', featureLayers: 'a3', overlay: true },
      { classes: 'top3', featureLayers: ['a3', 'cat'], reduction: 'softmax' },
      { classes: [4, 1], featureLayers: 'a1', upsample: false },
    ];
    const before = liveBuffers(device);

    const net = await Network.load(gpu, model);
    const buffers: number[] = [];
    const bytes: number[] = [];
    const samples: Sample[] = [];
    for (let i = 0; i < EXPLAINS; i++) {
      const options = requests[i % requests.length];
      if (i % 20 === 19) {
        const results = await gradCAM(net, inputs, { ...requests[1], batchSize: 2 });
        expect(results).toHaveLength(inputs.length);
      } else {
        const result = await gradCAM(net, inputs[i % inputs.length], options);
        expect(result.maps.length).toBeGreaterThan(0);
      }
      const live = liveBuffers(device);
      buffers.push(live.buffers);
      bytes.push(live.bytes);
      samples.push(memory());
    }
    // The ledger: constant once the caches are warm (every request, size and batch seen by then).
    expect(new Set(buffers.slice(WARMUP)), 'live GPU buffers after the warm-up').toEqual(new Set([buffers[WARMUP]]));
    expect(new Set(bytes.slice(WARMUP)), 'live GPU bytes after the warm-up').toEqual(new Set([bytes[WARMUP]]));
    const heapGrowth = growth(samples.map((x) => x.heap), 20);
    expect(heapGrowth, `JavaScript heap growth over the second half of ${EXPLAINS} explains`).toBeLessThan(HEAP_SLACK);
    const rssGrowth = growth(samples.map((x) => x.rss), 20);
    const peer = growth((await peerRuns(device, EXPLAINS)).map((x) => x.rss), 20);
    expect(rssGrowth, `RSS growth over the second half of ${EXPLAINS} explains (the peer's: ${MB(peer)})`).toBeLessThan(Math.max(0, peer) + RSS_SLACK);
    net.destroy();
    expect(liveBuffers(device), 'live GPU buffers after destroy').toEqual(before);

    const cycles: Sample[] = [];
    let made = { buffers: 0, bytes: 0 };
    for (let i = 0; i < CYCLES; i++) {
      const n = await Network.load(gpu, model);
      await gradCAM(n, inputs[i % inputs.length], { ...requests[i % requests.length], overlay: true });
      const live = liveBuffers(device);
      made = { buffers: live.buffers - before.buffers, bytes: live.bytes - before.bytes };
      n.destroy();
      expect(liveBuffers(device), `live GPU buffers after destroy ${i + 1}`).toEqual(before);
      cycles.push(memory());
    }
    const cycleHeap = growth(cycles.map((x) => x.heap), 10);
    expect(cycleHeap, `JavaScript heap growth over the second half of ${CYCLES} load/destroy cycles`).toBeLessThan(HEAP_SLACK);
    const cycleGrowth = growth(cycles.map((x) => x.rss), 10);
    const peerCycle = growth((await peerCycles(device, CYCLES, made.buffers, made.bytes)).map((x) => x.rss), 10);
    expect(cycleGrowth, `RSS growth over the second half of ${CYCLES} load/destroy cycles (the peer's: ${MB(peerCycle)})`).toBeLessThan(Math.max(0, peerCycle) + RSS_SLACK);
    console.log(`soak (MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? 'unset'}): ${buffers[WARMUP]} live buffers (${MB(bytes[WARMUP])}) after the warm-up, a load makes ${made.buffers} (${MB(made.bytes)}); `
      + `growth over the second half: explains RSS ${MB(rssGrowth)} (peer ${MB(peer)}), heap ${MB(heapGrowth)}; `
      + `load/destroy RSS ${MB(cycleGrowth)} (peer ${MB(peerCycle)}), heap ${MB(cycleHeap)}`);
  });
});
