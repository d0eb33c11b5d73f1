/**
 * torchvision's EfficientNet-B0 (efficientnet.py) as torch.onnx.export writes it, BN kept: every
 * activation is SiLU, exported as Sigmoid → Mul; MBConv `block`: 1×1 expansion (ratio ≠ 1),
 * depthwise k×k, SqueezeExcitation (avgpool → fc1 → SiLU → fc2 → Sigmoid → Mul, the
 * [N, C, 1, 1] × [N, C, H, W] product), 1×1 projection + BN, and the residual Add (stochastic
 * depth is the identity in eval); features.8 a 1×1 conv, avgpool → Flatten → classifier.1 (Gemm).
 * Blocks are grouped as torchvision's stages: `features.<stage>.<block>`.
 *
 *   efficientnet_b0 (full): 7 stages, 224×224.  ci: 4 stages, 40×40, 8–24 channels.
 */
import type { OnnxModel } from '../../src/onnx/model.ts';
import { type Scale, type T, TorchNet } from './torch-net.ts';

/** MBConvConfig: expand ratio, kernel, stride, in, out, layers. */
type Stage = [expand: number, k: number, stride: number, cin: number, cout: number, layers: number];
const B0: Record<Scale, { stages: Stage[]; last: number; size: number }> = {
  full: {
    stages: [[1, 3, 1, 32, 16, 1], [6, 3, 2, 16, 24, 2], [6, 5, 2, 24, 40, 2], [6, 3, 2, 40, 80, 3], [6, 5, 1, 80, 112, 3], [6, 5, 2, 112, 192, 4], [6, 3, 1, 192, 320, 1]],
    last: 1280, size: 224,
  },
  ci: { stages: [[1, 3, 1, 8, 8, 1], [4, 3, 2, 8, 12, 2], [4, 5, 2, 12, 20, 2], [4, 3, 1, 20, 24, 1]], last: 48, size: 40 },
};

export function efficientnetB0(seed: number, scale: Scale, producer: string): OnnxModel {
  const cfg = B0[scale];
  const net = new TorchNet(seed);
  const cna = (p: string, x: T, cout: number, k: number, stride = 1, group = 1, act = true) => {
    const y = net.bn(`${p}.1`, net.conv(`${p}.0`, x, cout, k, { stride, pad: (k - 1) / 2, group }), 1e-3);
    return act ? net.silu(`${p}.2`, y) : y;
  };
  let x = net.input([1, 3, cfg.size, cfg.size], 1);
  x = cna('features.0', x, cfg.stages[0]![3], 3, 2);
  cfg.stages.forEach(([expand, k, s, cin, cout, layers], st) => {
    for (let b = 0; b < layers; b++) {
      const p = `features.${st + 1}.${b}`;
      const inp = b === 0 ? cin : cout;
      const stride = b === 0 ? s : 1;
      const exp = inp * expand;
      let y = x, j = 0;
      if (exp !== inp) y = cna(`${p}.block.${j++}`, y, exp, 1);
      y = cna(`${p}.block.${j++}`, y, exp, k, stride, exp);
      // SqueezeExcitation(exp, max(1, inp // 4), activation=SiLU): Sigmoid gate.
      const se = `${p}.block.${j++}`;
      let g = net.gap(`${se}.avgpool`, y);
      g = net.silu(`${se}.activation`, net.conv(`${se}.fc1`, g, Math.max(1, Math.floor(inp / 4)), 1, { bias: true, rms: 1.5 }));
      g = net.sigmoid(`${se}.scale_activation`, net.conv(`${se}.fc2`, g, exp, 1, { bias: true, rms: 2 }));
      y = net.mul(se, g, y, y.shape);
      y = cna(`${p}.block.${j}`, y, cout, 1, 1, 1, false);
      x = stride === 1 && inp === cout ? net.add(p, y, x) : y;
    }
  });
  x = cna(`features.${cfg.stages.length + 1}`, x, cfg.last, 1);
  x = net.flatten('', net.gap('avgpool', x));
  return net.build(net.linear('classifier.1', x, 1000, undefined, 'logits'), 17, producer);
}
