/**
 * Every kernel's forward pass on odd shapes, against the float64 reference (test/reference/).
 *
 * The cases (helpers/kernel-cases.ts) are branches `x_k → [op under test] → Flatten → Gemm` of a few
 * small models; we compare each op's output (read back with readTensor; taps where fusion would hide
 * it), the logits and, for a model ending in Softmax, the probabilities.
 *
 * Tolerance (helpers/magnitude.ts): |gpu − ref| ≤ rtol·M element-wise, M = the same computation on
 * absolute values (Σ|terms|, through the whole chain), rtol = u·Σ_{ops up to the value} (n_op + 16),
 * n_op the op's reduction length: the worst-case float32 error of any summation order (pow and exp
 * with their WGSL accuracy). Probabilities: |Δp_j| ≤ p_j·(2δ + ρ), δ = rtol·max M(logits) bounding
 * every logit's error (p_j moves by a factor within e^{±2δ} when every logit moves by at most δ),
 * ρ the softmax's own rounding (exp within 3 + 2|t| ulp).
 */
import { afterAll, describe, expect, test } from 'vitest';
import { kernelCases } from './helpers/kernel-cases.ts';
import { compare, loadNetwork, prepare, printReport, softmaxRtol } from './helpers/kernel-check.ts';
import { convWindow } from './helpers/magnitude.ts';
import { maxAbs } from './reference/tensor.ts';
import { convLowering } from '../src/kernels/conv.ts';

const FILE = 'forward';

describe('kernels, forward, against the float64 reference', () => {
  afterAll(() => printReport(FILE));

  test.each(kernelCases().map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const { values, mags, fwd } = prepare(c);
    const net = await loadNetwork(c);
    try {
      const engine = net.engine;
      expect(engine.batch).toBe(c.input.shape[0]);
      // The CPU variant runs every 3×3 stride-1 ungrouped convolution as Winograd F(2×2, 3×3),
      // ungrouped convolutions with few input channels as im2col + GEMM, narrow groups (depthwise) with
      // the direct kernel, the rest as GEMMs: each lowering is exercised here (convLowering picks them).
      const convs = c.model.nodes.filter((n) => n.opType === 'Conv').map((n) => convWindow(n, values.get(n.inputs[0])!.shape, values.get(n.inputs[1])!.shape));
      const lowered = (l: string) => convs.filter((w) => convLowering(w, engine.env.variant, 'forward') === l).length;
      const count = (kernel: string) => engine.compiled.dispatches.filter((d) => d.kernel === kernel).length;
      expect(count('conv.winograd.gemm')).toBe(lowered('winograd'));
      expect(count('conv.im2col.gemm')).toBe(lowered('im2col'));
      expect(count('depthwise.forward.conv')).toBe(lowered('direct'));
      engine.writeInput(Float32Array.from(c.input.data), c.input.shape);
      const { logits, probabilities } = await engine.classify();
      for (const on of c.checks) {
        const got = await engine.readTensor(on.tensor);
        const ref = values.get(on.tensor)!, m = mags.get(on.tensor)!, rtol = fwd.get(on.tensor)!;
        compare(FILE, c, on, on.tensor, got, ref.data, (i) => rtol * m.data[i]);
      }
      const all = { tensor: 'logits', kernel: 'logits', branch: 'all branches' };
      const z = values.get('logits')!, mz = mags.get('logits')!, rz = fwd.get('logits')!;
      compare(FILE, c, all, 'logits', logits, z.data, (i) => rz * mz.data[i]);
      if (values.has('prob')) {
        expect(engine.graph.logits).toBe('logits');
        const p = values.get('prob')!;
        const delta = rz * maxAbs(mz.data), rho = softmaxRtol(z);
        compare(FILE, c, { ...all, tensor: 'prob', kernel: 'softmax' }, 'prob', probabilities, p.data, (i) => p.data[i] * (2 * delta + rho));
      }
    } finally {
      net.destroy();
    }
  });
});
