/**
 * A micro-benchmark behind a claim in bench/README.md (issue 18, item 6): grouped and depthwise
 * convolutions as the engine runs them (convLowering: the direct kernel, shaders/depthwise.wgsl, for
 * narrow groups; one GEMM per group for wide ones) against the general convolution on the same shapes
 * (the same layer as a dense conv with block-diagonal weights, as the engine lowers a group-1 conv:
 * Winograd for 3×3 stride 1 on a CPU, else the GEMM): what running grouped layers without group
 * support would cost. Forward and data gradient, batch 1, each layer's two variants measured in
 * alternation (one submit each, median of the pairs' ratios), so that a load that drifts cancels.
 * Also the direct kernel against the per-group GEMM at the group widths around DIRECT_BELOW.
 *
 *   node scripts/build.mjs --quiet grouped-conv && node dist/grouped-conv.mjs [--runs N] [--only NAME-PART] [--json file]
 */
import { writeFileSync } from 'node:fs';
import { convLowering, DIRECT_BELOW, gemm, groupPadded, layoutWeights } from '../src/kernels/conv.ts';
import { convDirect, directWeights } from '../src/kernels/depthwise.ts';
import type { Dispatch } from '../src/gpu/dispatch.ts';
import { KernelEnv } from '../src/gpu/dispatch.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import { conv as convSpec, type ConvOp } from '../src/ops/conv.ts';
import { encodeStage } from '../src/runtime/program.ts';
import { seeded } from '../src/runtime/tune.ts';

interface Layer { name: string; c: number; cOut: number; hw: number; k: number; stride: number; group: number; resnext?: boolean }

// MobileNetV2's 3×3 depthwise layers (224×224 input; its 17 blocks have 10 distinct shapes, 5 here), and
// ResNeXt-50 32×4d's grouped 3×3 convolutions (group 32: 4, 8, 16 and 32 channels per group).
const LAYERS: Layer[] = [
  { name: 'MobileNetV2 dw 32 @112 s1', c: 32, cOut: 32, hw: 112, k: 3, stride: 1, group: 32 },
  { name: 'MobileNetV2 dw 144 @56 s2', c: 144, cOut: 144, hw: 56, k: 3, stride: 2, group: 144 },
  { name: 'MobileNetV2 dw 192 @28 s1', c: 192, cOut: 192, hw: 28, k: 3, stride: 1, group: 192 },
  { name: 'MobileNetV2 dw 576 @14 s1', c: 576, cOut: 576, hw: 14, k: 3, stride: 1, group: 576 },
  { name: 'MobileNetV2 dw 960 @7 s1', c: 960, cOut: 960, hw: 7, k: 3, stride: 1, group: 960 },
  { name: 'ResNeXt-50 32×4d layer1 128 @56 g32', c: 128, cOut: 128, hw: 56, k: 3, stride: 1, group: 32, resnext: true },
  { name: 'ResNeXt-50 32×4d layer2 256 @28 g32', c: 256, cOut: 256, hw: 28, k: 3, stride: 1, group: 32, resnext: true },
  { name: 'ResNeXt-50 32×4d layer3 512 @14 g32', c: 512, cOut: 512, hw: 14, k: 3, stride: 1, group: 32, resnext: true },
  { name: 'ResNeXt-50 32×4d layer4 1024 @7 g32', c: 1024, cOut: 1024, hw: 7, k: 3, stride: 1, group: 32, resnext: true },
];

function op(l: Layer, group: number, weight: Float32Array): ConvOp {
  return {
    kind: 'conv', name: l.name, onnxTypes: ['Conv'], inputs: ['x'], output: 'y', weight, bias: seeded(l.cOut, 2),
    cIn: l.c, cOut: l.cOut, kh: l.k, kw: l.k, strideH: l.stride, strideW: l.stride, pads: [1, 1, 1, 1], dilations: [1, 1], group, relu: false,
  };
}

/** The grouped weights [C_out, C_in/g, k, k] as a dense [C_out, C_in, k, k] (zeros off the diagonal blocks). */
function dense(l: Layer, w: Float32Array): Float32Array {
  const inPG = l.c / l.group, outPG = l.cOut / l.group, taps = l.k * l.k;
  const out = new Float32Array(l.cOut * l.c * taps);
  for (let co = 0; co < l.cOut; co++) {
    const g = Math.floor(co / outPG);
    out.set(w.subarray(co * inPG * taps, (co + 1) * inPG * taps), (co * l.c + g * inPG) * taps);
  }
  return out;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const runs = Number(args[args.indexOf('--runs') + 1] ?? 0) || 7;
  const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
  const gpu = await nodeGpu();
  const { device, adapter } = gpu;
  const env = new KernelEnv(device, 'cpu');
  console.log(`grouped and depthwise convolutions on ${adapter.description || adapter.architecture} (${env.variant} variant), batch 1, median of ${runs} paired runs`);

  const time = async (ds: Dispatch[]) => {
    const t0 = performance.now();
    const enc = device.createCommandEncoder();
    encodeStage(enc, 'bench', ds);
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  /** Median time of a and b, and the median of the paired ratios b/a. */
  const pair = async (a: Dispatch[], b: Dispatch[]) => {
    await time(a);
    await time(b);
    const ta: number[] = [], tb: number[] = [], r: number[] = [];
    for (let i = 0; i < runs; i++) {
      const x = await time(a), y = await time(b);
      ta.push(x); tb.push(y); r.push(y / x);
    }
    const med = (v: number[]) => [...v].sort((p, q) => p - q)[Math.floor(v.length / 2)];
    return { a: med(ta), b: med(tb), ratio: med(r) };
  };

  const rows: Record<string, unknown>[] = [];
  const line = (s: string) => console.log(s);
  line(`${'layer'.padEnd(38)} dir       engine (lowering)     general conv (lowering)   general/engine`);
  for (const l of LAYERS.filter((x) => !only || x.name.includes(only))) {
    const out = Math.floor((l.hw + 2 - l.k) / l.stride) + 1;
    const w = seeded(l.cOut * (l.c / l.group) * l.k * l.k, 1);
    const grouped = op(l, l.group, w);
    const general = op(l, 1, dense(l, w));
    const x = { buffer: env.scratch(l.c * l.hw * l.hw), offset: 0, stride: l.c * l.hw * l.hw };
    device.queue.writeBuffer(x.buffer, 0, seeded(l.c * l.hw * l.hw, 3));
    const y = { buffer: env.scratch(l.cOut * out * out), offset: 0, stride: l.cOut * out * out };
    device.queue.writeBuffer(y.buffer, 0, seeded(l.cOut * out * out, 4));
    const shapes = { inputs: [[1, l.c, l.hw, l.hw]], output: [1, l.cOut, out, out] };
    for (const dir of ['forward', 'backward'] as const) {
      const dispatches = (o: ConvOp) => {
        const k = convSpec.kernel(o, shapes);
        return dir === 'forward'
          ? k.forward({ env, inputs: [x], output: y, batch: 1 })
          : k.backward({ env, inputs: [x], output: y, dy: y, dx: [{ view: x, accumulate: false }], items: 1, maskDiv: 1 });
      };
      const m = await pair(await dispatches(grouped), await dispatches(general));
      const row = { layer: l.name, direction: dir, engine: convLowering(grouped, 'cpu', dir), general: convLowering(general, 'cpu', dir), engineMs: m.a, generalMs: m.b, ratio: m.ratio };
      rows.push(row);
      line(`${l.name.padEnd(38)} ${dir.padEnd(9)} ${`${m.a.toFixed(2)} ms (${row.engine})`.padEnd(21)} ${`${m.b.toFixed(2)} ms (${row.general})`.padEnd(25)} ${m.ratio.toFixed(2)}×`);
    }
    // At the threshold: the direct kernel against the per-group GEMM, forward, for the ResNeXt widths.
    if (l.resnext) {
      const g = l.group;
      const directD = [await convDirect(env, grouped, {
        rows: l.c / g, cols: l.cOut / g, groups: g, inH: l.hw, inW: l.hw, outH: out, outW: out, items: 1, input: x, output: y, mask: null, maskDiv: 1,
        relu: false, accumulate: false, transposed: false, weights: env.storage(directWeights(grouped, false)), bias: env.storage(grouped.bias),
      }, 'forward', 0)];
      const gemmD = await gemm(env, grouped, {
        window: grouped, groups: g, rows: l.c / g, inH: l.hw, inW: l.hw, cols: l.cOut / g, outH: out, outW: out, items: 1, input: x, output: y, mask: null, maskDiv: 1,
        relu: false, accumulate: false, transposed: false, weights: env.storage(layoutWeights(grouped, false)), bias: env.storage(groupPadded(grouped.bias, g)),
      }, 'forward', 0);
      const m = await pair(directD, gemmD);
      rows.push({ layer: l.name, direction: 'forward', compare: 'direct vs per-group GEMM', directMs: m.a, gemmMs: m.b, ratio: m.ratio });
      line(`${''.padEnd(38)} forward   direct ${m.a.toFixed(2)} ms, per-group GEMM ${m.b.toFixed(2)} ms: GEMM/direct ${m.ratio.toFixed(2)}× (${l.cOut / g} per group; direct below ${DIRECT_BELOW})`);
    }
  }
  if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify({ date: new Date().toISOString(), adapter: adapter.description || adapter.architecture, runs, rows }, null, 2)}\n`);
  env.destroy();
  gpu.device.destroy();
}

await main();
