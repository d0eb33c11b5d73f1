/**
 * The kernel lab (bench/kernels.ts, bench/peaks.ts; issue 21 item 3) on SwiftShader:
 *   - the peak probe's arithmetic on tiny sizes: the copy kernel moves exactly the elements its byte
 *     count says (every one, none past the end), the FMA kernel runs exactly the multiply-adds its
 *     FLOP count says (with a = b = 1 each chain ends at start + steps, exactly, in float32);
 *   - `npm run bench -- --kernels` end to end on the small test model (tiny sizes, one run each):
 *     the JSON holds every variant of the engine's table that applies to each distinct conv layer
 *     shape, in both directions, exactly one of them marked as the fixed rules' choice, each row
 *     running that variant's own kernels, FLOPs and bytes as counted by hand, rates that follow
 *     from them; and the HTML report next to it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { copyBytes, expectedFmaResult, fmaFlops, measurePeaks, PEAKS, peakDispatches } from '../bench/peaks.ts';
import { distinctConvs, type KernelLab, type KernelRow } from '../bench/kernels.ts';
import { DispatchTimer } from '../bench/timing.ts';
import { KernelEnv } from '../src/gpu/dispatch.ts';
import { checkKernel } from '../src/gpu/kernel.ts';
import { lower } from '../src/graph/lower.ts';
import { applicableVariants, convLowering } from '../src/kernels/variants.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { encodeStage } from '../src/runtime/program.ts';
import { ROOT } from './helpers/cli.ts';
import { testGpu } from './helpers/gpu.ts';
import { buildModel, int, ints, node, weight } from './reference/models.ts';
import { randomTensor, rng } from './reference/tensor.ts';

/**
 * x [1, 3, 10, 7] → conv 3×3 3 → 8 + ReLU → depthwise 3×3 stride 2 (group 8) → GAP → Flatten → Gemm 8 → 4:
 * the five variants between them (gemm-blocked, gemm-tiled, winograd and im2col on the first conv,
 * direct on the depthwise one), sizes that are no multiple of any tile.
 */
/**
 * How far a stored rate may be from its count over the stored median time: the rate is rounded to 4
 * significant digits (relative error ≤ 5e-4) and computed from the unrounded time, while the stored time
 * is rounded to 0.1 µs (absolute error ≤ 5e-5 ms, relative 5e-5 / ms: 1e-3 for a 50 µs kernel alone);
 * 1e-6 for the product of the two.
 */
function storedRateBound(medianMs: number): number {
  return 5e-4 + 5e-5 / medianMs + 1e-6;
}

function labModel() {
  const r = rng(21);
  return buildModel({
    inputs: { x: [1, 3, 10, 7] },
    outputs: ['logits'],
    weights: [
      weight('w1', randomTensor([8, 3, 3, 3], r)), weight('b1', randomTensor([8], r)), weight('wd', randomTensor([8, 1, 3, 3], r)),
      weight('fc', randomTensor([4, 8], r)), weight('fcb', randomTensor([4], r)),
    ],
    nodes: [
      node('Conv', ['x', 'w1', 'b1'], ['c1'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }),
      node('Relu', ['c1'], ['a1']),
      node('Conv', ['a1', 'wd'], ['c2'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]), strides: ints([2, 2]), group: int(8) }),
      node('GlobalAveragePool', ['c2'], ['g']),
      node('Flatten', ['g'], ['flat']),
      node('Gemm', ['flat', 'fc', 'fcb'], ['logits'], { transB: int(1) }),
    ],
  });
}

async function readBuffer(device: GPUDevice, buffer: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
  const staging = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(buffer, 0, staging, 0, bytes);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = staging.getMappedRange().slice(0);
  staging.destroy();
  return out;
}

describe('peak probe (SwiftShader)', () => {
  // 1000 vec4 in steps of 7 per invocation (stride 143: the last invocation's steps run past the
  // end and must stop there); 300 FMA invocations (not a multiple of the 256-wide workgroup), 12 steps.
  const sizes = { copyVec4s: 1000, copySteps: 7, fmaInvocations: 300, fmaSteps: 12 };

  test("the probe's declaration matches its WGSL body (as test/kernel-declarations checks the engine's)", () => {
    expect(checkKernel(PEAKS)).toEqual([]);
  });

  test('the counts: 2 × 16 bytes per vec4 copied, 64 FLOPs per invocation and step', () => {
    expect(copyBytes(1000)).toBe(32_000);
    expect(fmaFlops(300, 12)).toBe(300 * 12 * 8 * 4 * 2);
    // Each chain starts at (id mod 16) + 4j + lane and gains exactly `steps`.
    expect(expectedFmaResult(0, 0)).toBe(496); // Σ_{j<8, lane<4} (4j + lane) = Σ_{0..31}
    expect(expectedFmaResult(17, 12)).toBe(496 + 32 * (1 + 12));
  });

  test('the kernels do exactly the counted work', async () => {
    const gpu = await testGpu();
    const env = new KernelEnv(gpu.device, 'cpu');
    try {
      const d = await peakDispatches(env, sizes);
      const src = new Float32Array(4 * sizes.copyVec4s + 8).map((_, i) => i * 0.5 - 7);
      gpu.device.queue.writeBuffer(d.buffers.src, 0, src, 0, 4 * sizes.copyVec4s);
      // A sentinel just past the counted elements: the copy must leave it alone.
      const sentinel = new Float32Array(4 * sizes.copyVec4s + 4).fill(-99);
      gpu.device.queue.writeBuffer(d.buffers.dst, 0, sentinel, 0, Math.min(sentinel.length, d.buffers.dst.size / 4));
      const enc = gpu.device.createCommandEncoder();
      encodeStage(enc, 'peaks', [d.copy, d.fma]);
      gpu.device.queue.submit([enc.finish()]);
      const dst = new Float32Array(await readBuffer(gpu.device, d.buffers.dst, d.buffers.dst.size));
      expect(Array.from(dst.subarray(0, 4 * sizes.copyVec4s))).toEqual(Array.from(src.subarray(0, 4 * sizes.copyVec4s)));
      expect(Array.from(dst.subarray(4 * sizes.copyVec4s))).toEqual(Array(dst.length - 4 * sizes.copyVec4s).fill(-99));
      const result = new Float32Array(await readBuffer(gpu.device, d.buffers.result, 4 * sizes.fmaInvocations));
      const expected = Array.from({ length: sizes.fmaInvocations }, (_, id) => expectedFmaResult(id, sizes.fmaSteps));
      expect(Array.from(result)).toEqual(expected);

      // The rates are the counts over the median time.
      const timer = new DispatchTimer(gpu.device, gpu.features.timestamps);
      const peaks = await measurePeaks(env, timer, sizes, 3, 1);
      timer.destroy();
      expect(peaks.bandwidth.bytes).toBe(32_000);
      expect(peaks.fma.flops).toBe(230_400);
      expect(Math.abs(peaks.bandwidth.gbPerS / (32_000 / (peaks.bandwidth.medianMs * 1e6)) - 1)).toBeLessThan(storedRateBound(peaks.bandwidth.medianMs));
      expect(Math.abs(peaks.fma.gflopPerS / (230_400 / (peaks.fma.medianMs * 1e6)) - 1)).toBeLessThan(storedRateBound(peaks.fma.medianMs));
    } finally {
      env.destroy();
    }
  });
});

describe('npm run bench -- --kernels, end to end (small model)', () => {
  let dir: string;
  let lab: KernelLab;
  let stdout = '';

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'bench-kernels-'));
    writeFileSync(join(dir, 'lab.onnx'), encodeOnnx(labModel()));
    execFileSync(process.execPath, ['scripts/build.mjs', '--quiet', 'bench'], { cwd: ROOT });
    const run = spawnSync(process.execPath, [join(ROOT, 'dist', 'bench.mjs'), '--model', join(dir, 'lab.onnx'), '--only', 'kernels', '--no-ort',
      '--kernel-runs', '1', '--gemm-sizes', '16,40', '--peak-sizes', 'tiny', '--out', dir, '--name', 'lab.json'], { cwd: ROOT, encoding: 'utf8', timeout: 400_000 });
    expect(run.status, run.stderr).toBe(0);
    stdout = run.stdout;
    lab = JSON.parse(readFileSync(join(dir, 'lab.json'), 'utf8')).kernels;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('every applicable variant on every distinct conv layer shape, both directions; the fixed rules marked once', async () => {
    const convs = distinctConvs(lower(labModel()));
    // conv 3×3 3 → 8, the depthwise 3×3, the Gemm 8 → 4 as a 1×1 conv.
    expect(convs.map((c) => c.key)).toEqual(['3×10×7 → 8×10×7 k3×3/1 p1,1,1,1', '8×10×7 → 8×5×4 k3×3/2 p1,1,1,1 g8', '8×1×1 → 4×1×1 k1×1/1 p0,0,0,0']);
    expect(new Set(lab.conv.map((r) => r.variant))).toEqual(new Set(['gemm-blocked', 'gemm-tiled', 'winograd', 'im2col', 'direct', 'gather']));
    for (const c of convs) {
      for (const direction of ['forward', 'backward'] as const) {
        const rows = lab.conv.filter((r) => r.shape === c.key && r.direction === direction);
        expect(rows.map((r) => r.variant), `${c.key} ${direction}`).toEqual(applicableVariants(c.op, direction));
        expect(rows.filter((r) => r.fixed).map((r) => r.variant)).toEqual([convLowering(c.op, 'cpu', direction)]);
        for (const r of rows) expect(r.error, `${r.variant}: ${r.error}`).toBeUndefined();
      }
    }
    expect(lab.family).toBe('cpu');
    expect(lab.peaks.bandwidth.gbPerS).toBeGreaterThan(0);
    expect(lab.peaks.fma.gflopPerS).toBeGreaterThan(0);
  });

  test("each row runs its variant's own kernels (the plan took effect)", () => {
    const marks: Record<string, RegExp> = {
      'gemm-blocked': /^conv\.(forward|backward)\.gemm$/, 'gemm-tiled': /^conv_tiled\./, winograd: /^winograd\./, im2col: /^im2col\./, direct: /^depthwise\./,
      gather: /^conv_gather\./,
    };
    for (const r of [...lab.conv, ...lab.gemm]) {
      expect(r.kernels.some((k) => marks[r.variant].test(k)), `${r.shape} ${r.direction} ${r.variant}: ${r.kernels}`).toBe(true);
      for (const [v, re] of Object.entries(marks)) {
        // Winograd's and im2col's GEMMs run conv.wgsl under their own use names (conv.winograd.gemm, conv.im2col.gemm).
        if (v !== r.variant && v !== 'gemm-blocked') expect(r.kernels.some((k) => re.test(k)), `${r.variant} ran ${v}: ${r.kernels}`).toBe(false);
      }
    }
  });

  test('FLOPs and bytes as counted by hand; rates and fractions follow from them', () => {
    // conv 3×3, 3 → 8 channels on 10×7, pads 1: 8·10·7 outputs × 3·9 multiply-adds.
    const first = lab.conv.filter((r) => r.shape.startsWith('3×10×7 → 8×10×7'));
    expect(first.length).toBe(8); // forward: gemm-blocked, gemm-tiled, winograd, im2col; backward: the same but gather for im2col
    for (const r of first) {
      expect(r.flops).toBe(2 * 8 * 10 * 7 * 3 * 9);
      // x 3·10·7, weights 8·3·9, y 8·10·7, bias 8 (forward only), 4 bytes each.
      expect(r.bytes).toBe(4 * (210 + 216 + 560 + (r.direction === 'forward' ? 8 : 0)));
    }
    // The depthwise layer: 8·5·4 outputs × 9 multiply-adds each (its own channel only).
    for (const r of lab.conv.filter((x) => x.shape.endsWith('g8'))) {
      expect(r.flops).toBe(2 * 8 * 5 * 4 * 9);
      expect(r.bytes).toBe(4 * (560 + 72 + 160 + (r.direction === 'forward' ? 8 : 0)));
    }
    const gemm = lab.gemm.find((r) => r.shape === '40×16×40' && r.variant === 'gemm-blocked')!;
    expect(gemm.flops).toBe(2 * 40 * 16 * 40);
    expect(gemm.bytes).toBe(4 * (40 * 40 + 40 * 16 + 40 * 16 + 40));
    // The sweep's 8 shapes (16, 40 cubed) and the model's ungrouped layers' implicit GEMMs, both GEMM variants each.
    expect(lab.gemm.filter((r) => r.source === 'sweep').length).toBe(16);
    // The model's: the first conv (8 × 70 × 27) and the Gemm (4 × 1 × 8); the depthwise one is grouped.
    expect(lab.gemm.filter((r) => r.source === 'model').map((r) => r.shape)).toEqual(['8×70×27', '8×70×27', '4×1×8', '4×1×8']);
    // The roof: the probes' peaks, raised to the best kernel rate where a kernel measured more.
    const roof = lab.roof;
    expect(roof.gflopPerS).toBe(Math.max(lab.peaks.fma.gflopPerS, ...[...lab.conv, ...lab.gemm].map((r) => r.gflopPerS)));
    expect(roof.gbPerS).toBe(Math.max(lab.peaks.bandwidth.gbPerS, ...[...lab.conv, ...lab.gemm].map((r) => r.gbPerS)));
    expect(roof.flopsFrom === 'the FMA probe').toBe(roof.gflopPerS === lab.peaks.fma.gflopPerS);
    // Rates are stored to 4 significant digits (relative error ≤ 5e-4 each): ratios of stored values agree to 1e-3.
    const near = (x: number, y: number, bound = 1e-3) => expect(Math.abs(x - y) / Math.abs(y), `${x} vs ${y}`).toBeLessThan(bound);
    for (const r of [...lab.conv, ...lab.gemm] as KernelRow[]) {
      near(r.gflopPerS, r.flops / (r.medianMs * 1e6), storedRateBound(r.medianMs));
      near(r.gbPerS, r.bytes / (r.medianMs * 1e6), storedRateBound(r.medianMs));
      near(r.intensity, r.flops / r.bytes);
      near(r.ofPeakFlops, r.gflopPerS / roof.gflopPerS);
      near(r.ofPeakBandwidth, r.gbPerS / roof.gbPerS);
      near(r.ofRoof, r.gflopPerS / Math.min(roof.gflopPerS, (r.flops / r.bytes) * roof.gbPerS));
      // No point above the roof.
      expect(r.ofRoof).toBeLessThanOrEqual(1.0005);
    }
  });

  test('the report is written next to the JSON, and the table printed', () => {
    const html = readFileSync(join(dir, 'lab.html'), 'utf8');
    expect(existsSync(join(dir, 'latest.html'))).toBe(true);
    expect(html).toContain('class="chart roofline"');
    expect(html).toContain('class="chart variant-bars"');
    expect(stdout).toMatch(/Kernel lab \((GPU timestamps|wall time)/);
    expect(stdout).toMatch(/peaks: [\d.]+ GB\/s/);
  });
});
