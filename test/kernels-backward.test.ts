/**
 * Every kernel's backward pass on odd shapes: the engine's gradients (one backward pass for K classes
 * per image, helpers/grad.ts) against the float64 reference's reverse mode (backwardReference) and
 * against central finite differences of the reference's forward.
 *
 * The cases (helpers/kernel-cases.ts) are branches `x_k → [op under test] → Flatten → Gemm(W_k)` of a
 * few small models, so the gradient reaching each op is a dense random vector. Gradients are compared
 * at the graph input x (all branches summed), at each branch input x_k (that branch alone) and at the
 * cases' intermediate tensors, for each class k (item b = image·K + k), with the logit reduction
 * (seed: one-hot on the logits) and, where listed, the softmax reduction (seed p_c·(e_c − p) on the
 * logits, as test/reference/gradcam.ts does; the engine differentiates the probability itself).
 *
 * Tolerance (helpers/magnitude.ts): |gpu − ref| ≤ rtol·M element-wise, M = the backward pass on
 * absolute values (|seed|, |W|, every term of LRN's and Softmax's backward in absolute value, the
 * real ReLU masks and arg-maxes), rtol = u·Σ_{ops between the tensor and the logits} (n_op + 16)
 * plus 1 ulp per consumer (summed gradients): the worst-case float32 error. For the softmax
 * reduction the engine's seed is computed from its own float32 probabilities: every logit is off by
 * at most δ = rtol_fwd(logits)·max M(logits), which moves each p_j by a factor within e^{±2δ}, and the
 * softmax adds its own rounding ρ, so the seed's terms are within 2·(2δ + ρ) relative, plus the
 * softmax backward's own (length + 16 ulp).
 *
 * Finite differences: 8 coordinates of x per item (6 where the gradient is non-zero, 2 anywhere),
 * step h = 1e-5·max|x|, in float64. Their own error: rounding ≈ (ops)·ε64·M_L/h ≤ 1e-12·M_L/h, M_L the
 * score's magnitude; truncation h²·|L'''|/6, zero for piecewise-linear models away from kinks (the
 * cases keep ReLU inputs and max-pool runners-up ≥ 1e-4·M from them) and below 1e-6·M for LRN and
 * softmax. The GPU may differ from them by its tolerance plus that. Exact-tie cases skip this (a max
 * is not differentiable at a tie); they are judged by the reference and by hand.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { gpuGradients } from './helpers/grad.ts';
import { kernelCases, type KernelCase, type Reduction } from './helpers/kernel-cases.ts';
import { centralDifference, compare, loadNetwork, prepare, printReport, rows, seeds, softmaxRtol } from './helpers/kernel-check.ts';
import { backwardBudgets, backwardMagnitudes, convWindow, U } from './helpers/magnitude.ts';
import { backwardReference, forwardValues } from './reference/graph.ts';
import { maxAbs, numel, rng } from './reference/tensor.ts';
import { convLowering } from '../src/kernels/conv.ts';

const FILE = 'backward';

/** 8 coordinates of image n's slice: 6 where the reference gradient is non-zero, 2 anywhere. */
function sample(ref: Float64Array, per: number, n: number, r: () => number): number[] {
  const nonzero: number[] = [];
  for (let i = 0; i < per; i++) if (ref[n * per + i] !== 0) nonzero.push(i);
  const pick = (from: number[], k: number) => {
    const pool = [...from];
    const out: number[] = [];
    while (out.length < k && pool.length) out.push(pool.splice(Math.floor(r() * pool.length), 1)[0]);
    return out;
  };
  const chosen = pick(nonzero, 6);
  return [...chosen, ...pick([...Array(per).keys()].filter((i) => !chosen.includes(i)), 2)];
}

async function engineGradients(c: KernelCase, net: Awaited<ReturnType<typeof loadNetwork>>, wrt: string[], reduction: Reduction) {
  const input = { shape: c.input.shape, data: Float32Array.from(c.input.data) };
  const kernels: string[] = [];
  const grads = await gpuGradients(net, input, wrt, c.input.shape[0] === 1 ? c.classes[0] : c.classes, reduction, kernels);
  // The CPU variant computes the data gradient of 3×3 stride-1 ungrouped convolutions (pads ≤ 2) as
  // Winograd F(2×2, 3×3), that of narrow groups (depthwise) with the direct kernel: every conv lies
  // between x and the logits, so each runs its lowering once.
  const values = forwardValues(c.model, { x: c.input });
  const convs = c.model.nodes.filter((n) => n.opType === 'Conv').map((n) => convWindow(n, values.get(n.inputs[0])!.shape, values.get(n.inputs[1])!.shape));
  const lowered = (l: string) => convs.filter((w) => convLowering(w, net.engine.env.variant, 'backward') === l).length;
  expect(kernels.filter((k) => k === 'conv.winograd.backward.gemm').length, 'Winograd data gradients').toBe(lowered('winograd'));
  expect(kernels.filter((k) => k === 'depthwise.backward.conv').length, 'direct grouped data gradients').toBe(lowered('direct'));
  return grads;
}

describe('kernels, backward, against the float64 reference and finite differences', () => {
  afterAll(() => {
    printReport(FILE);
    const fd = rows.filter((r) => r.file === FILE && r.what.startsWith('FD'));
    console.log(`finite differences: ${fd.reduce((a, r) => a + r.count, 0)} coordinates, max |Δ|/allowed ${Math.max(...fd.map((r) => r.ratio)).toFixed(4)}`);
  });

  test.each(kernelCases().map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const { values, mags, fwd } = prepare(c);
    const net = await loadNetwork(c);
    try {
      const wrt = c.grads.map((g) => g.tensor);
      const [N] = c.input.shape;
      const K = c.classes[0].length;
      const z = values.get('logits')!;
      const rtolOf = backwardBudgets(c.model, values, 'logits');
      const delta = fwd.get('logits')! * maxAbs(mags.get('logits')!.data);
      const r = rng(7);
      for (const reduction of c.reductions) {
        const s = seeds(z, c.classes, reduction);
        const ref = backwardReference(c.model, values, { score: 'logits', seeds: s.ref, wrt });
        const bound = backwardMagnitudes(c.model, values, 'logits', s.mag, wrt, mags);
        const got = await engineGradients(c, net, wrt, reduction);
        const extra = reduction === 'softmax' ? 2 * (2 * delta + softmaxRtol(z)) + (z.shape[1] + 16) * U : 0;

        // Each branch's own tensors first, the graph input (all branches summed) last.
        for (const g of [...c.grads.slice(1), c.grads[0]]) {
          const per = numel(values.get(g.tensor)!.shape.slice(1));
          const rtol = rtolOf.get(g.tensor)! + extra;
          expect(got[g.tensor].length, `${g.tensor}: items`).toBe(N * K);
          for (let n = 0; n < N; n++) {
            for (let k = 0; k < K; k++) {
              const b = n * K + k;
              const full = ref[g.tensor][b].data;
              // Image n's class score does not depend on another image's values.
              for (let m = 0; m < N; m++) if (m !== n) expect(maxAbs(full.subarray(m * per, (m + 1) * per)), 'cross-image gradient').toBe(0);
              const want = full.subarray(n * per, (n + 1) * per), mag = bound[g.tensor][b].data.subarray(n * per, (n + 1) * per);
              compare(FILE, c, g, `${g.tensor} [${reduction}]`, got[g.tensor][b], want, (i) => rtol * mag[i]);
            }
          }
        }

        if (c.handChecks && reduction === 'logit') expect(c.handChecks(got), 'hand-checked gradients').toEqual([]);
        if (c.noFd) continue;

        // Central differences at sampled coordinates of x, for every item.
        const xg = c.grads[0];
        expect(xg.tensor).toBe('x');
        const per = numel(c.input.shape.slice(1));
        // The score's rounding scale: the logits' magnitude (a probability's error is at most twice its logits' error).
        const scoreMag = maxAbs(mags.get('logits')!.data) * (reduction === 'logit' ? 1 : 2);
        const rtol = rtolOf.get('x')! + extra;
        for (let n = 0; n < N; n++) {
          for (let k = 0; k < K; k++) {
            const b = n * K + k;
            const want = ref.x[b].data, mag = bound.x[b].data;
            const coords = sample(want, per, n, r);
            const fds: number[] = [], gpu: number[] = [], tols: number[] = [];
            for (const i of coords) {
              const { fd, h } = centralDifference(c, n, c.classes[n][k], reduction, n * per + i);
              const fdErr = (1e-12 * scoreMag) / h + 1e-6 * mag[n * per + i];
              expect(Math.abs(want[n * per + i] - fd), `reference vs FD at x[${n * per + i}] (a kink crossed?)`).toBeLessThanOrEqual(fdErr);
              fds.push(fd);
              gpu.push(got.x[b][i]);
              tols.push(rtol * mag[n * per + i] + fdErr);
            }
            compare(FILE, c, { ...xg, kernel: 'finite diff' }, `FD x [${reduction}]`, gpu, fds, (j) => tols[j]);
          }
        }
      }
    } finally {
      net.destroy();
    }
  });
});

