/**
 * `npm run bench -- --soak N`: the memory soak at length (Node only). N explains on one network
 * (Grad-CAM with overlays at the default layer; every 20th call a batched one of 4 images with
 * batch size 2), then max(10, N/20) load/destroy cycles (load, one explain, destroy). It samples
 * the process's RSS (after a full garbage collection), the JavaScript heap, and the engine's ledger
 * of live GPU buffers (src/gpu/buffers.ts) along the way and reports the curve; test/memory-soak.test.ts
 * asserts the same on a small model in CI.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { GpuContext } from '../src/gpu/device.ts';
import { liveBuffers } from '../src/gpu/buffers.ts';
import { gradCAM, Network } from '../src/gradcam/network.ts';
import type { ModelInput } from '../src/gradcam/types.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import type { Recipe } from '../src/image/recipes.ts';
import { median } from './stats.ts';

export interface SoakPoint {
  /** Explains done (or load/destroy cycles done, in `cycles`). */
  at: number;
  rssMiB: number;
  heapMiB: number;
  gpuBuffers: number;
  gpuMiB: number;
  /** Milliseconds per call since the previous point. */
  msPerCall: number;
}

export interface SoakResult {
  schema: 'gradcam-webgpu-soak/1';
  date: string;
  model: string;
  explains: number;
  cycles: number;
  curve: SoakPoint[];
  cycleCurve: SoakPoint[];
  /** RSS growth over each second half: median of the last fifth of the points minus that of the fifth around the middle, MiB. */
  growth: { explainsMiB: number; cyclesMiB: number };
  /** Live GPU buffers: constant after the warm-up (the first 20 explains)? Back to the start after every destroy? */
  gpu: { constantAfterWarmup: boolean; backAfterDestroy: boolean };
  elapsedS: number;
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const MiB = 2 ** 20;

function point(device: GPUDevice, at: number, msPerCall: number): SoakPoint {
  gc();
  const m = process.memoryUsage();
  const live = liveBuffers(device);
  return { at, rssMiB: m.rss / MiB, heapMiB: m.heapUsed / MiB, gpuBuffers: live.buffers, gpuMiB: live.bytes / MiB, msPerCall };
}

function growth(points: SoakPoint[]): number {
  const w = Math.max(1, Math.floor(points.length / 5));
  const mid = Math.floor(points.length / 2);
  return median(points.slice(-w).map((p) => p.rssMiB)) - median(points.slice(mid - (w >> 1), mid - (w >> 1) + w).map((p) => p.rssMiB));
}

export async function runSoak(gpu: GpuContext, model: { name: string; bytes: Uint8Array }, explains: number,
  synthetic: (shape: readonly number[], recipe: Recipe) => Float32Array, log: (line: string) => void): Promise<SoakResult> {
  const t0 = performance.now();
  const { device } = gpu;
  const onnx = decodeOnnx(model.bytes);
  const start = liveBuffers(device);
  const net = await Network.load(gpu, onnx);
  const [, c, h, w] = net.engine.inputShape;
  const all = synthetic([4, c, h, w], net.engine.recipe);
  const per = c * h * w;
  const inputs: ModelInput[] = [0, 1, 2, 3].map((b) => ({ shape: [1, c, h, w], data: all.slice(b * per, (b + 1) * per) }));
  const every = Math.max(1, Math.round(explains / 50));
  const curve: SoakPoint[] = [];
  let warm: number | undefined;
  let constant = true;
  let t = performance.now();
  for (let i = 1; i <= explains; i++) {
    if (i % 20 === 0) await gradCAM(net, inputs, { overlay: true, batchSize: 2 });
    else await gradCAM(net, inputs[i % inputs.length], { overlay: true });
    const live = liveBuffers(device).buffers;
    if (i === 20) warm = live;
    if (warm !== undefined && live !== warm) constant = false;
    if (i % every === 0 || i === explains) {
      curve.push(point(device, i, (performance.now() - t) / every));
      const p = curve[curve.length - 1];
      log(`soak: ${i}/${explains} explains, RSS ${p.rssMiB.toFixed(1)} MiB, heap ${p.heapMiB.toFixed(1)} MiB, ${p.gpuBuffers} GPU buffers (${p.gpuMiB.toFixed(1)} MiB), ${p.msPerCall.toFixed(0)} ms per explain`);
      t = performance.now();
    }
  }
  net.destroy();
  let back = liveBuffers(device).buffers === start.buffers;
  const cycles = Math.max(10, Math.round(explains / 20));
  const cycleCurve: SoakPoint[] = [];
  for (let i = 1; i <= cycles; i++) {
    t = performance.now();
    const n = await Network.load(gpu, onnx);
    await gradCAM(n, inputs[i % inputs.length], { overlay: true });
    n.destroy();
    back &&= liveBuffers(device).buffers === start.buffers;
    cycleCurve.push(point(device, i, performance.now() - t));
    const p = cycleCurve[cycleCurve.length - 1];
    log(`soak: ${i}/${cycles} load/destroy cycles, RSS ${p.rssMiB.toFixed(1)} MiB, ${p.gpuBuffers} GPU buffers, ${(p.msPerCall / 1000).toFixed(2)} s per cycle`);
  }
  return {
    schema: 'gradcam-webgpu-soak/1', date: new Date().toISOString(), model: model.name, explains, cycles, curve, cycleCurve,
    growth: { explainsMiB: growth(curve), cyclesMiB: growth(cycleCurve) },
    gpu: { constantAfterWarmup: constant, backAfterDestroy: back },
    elapsedS: (performance.now() - t0) / 1000,
  };
}

/** The curve as a short table: every fifth point. */
export function formatSoak(r: SoakResult): string {
  const rows = (ps: SoakPoint[], what: string) => ps.filter((_, i) => i % Math.max(1, Math.floor(ps.length / 10)) === 0 || i === ps.length - 1)
    .map((p) => `| ${what} ${p.at} | ${p.rssMiB.toFixed(1)} | ${p.heapMiB.toFixed(1)} | ${p.gpuBuffers} | ${p.gpuMiB.toFixed(1)} | ${p.msPerCall.toFixed(0)} |`);
  return [
    `memory soak: ${r.model}, ${r.explains} explains, then ${r.cycles} load/destroy cycles (${r.elapsedS.toFixed(0)} s)`,
    '| after | RSS MiB | heap MiB | GPU buffers | GPU MiB | ms per call |', '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows(r.curve, 'explain'), ...rows(r.cycleCurve, 'cycle'),
    `RSS growth over the second half: explains ${r.growth.explainsMiB.toFixed(2)} MiB, load/destroy ${r.growth.cyclesMiB.toFixed(2)} MiB`,
    `GPU buffers constant after the warm-up: ${r.gpu.constantAfterWarmup ? 'yes' : 'NO'}; back to the start after every destroy: ${r.gpu.backAfterDestroy ? 'yes' : 'NO'}`,
  ].join('\n');
}
