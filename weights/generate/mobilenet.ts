/**
 * torchvision's MobileNetV2 and MobileNetV3 (mobilenetv2.py, mobilenetv3.py) as torch.onnx.export
 * writes them, BatchNormalization kept as nodes.
 *
 * MobileNetV2: features.0 Conv2dNormActivation (Conv → BN → ReLU6, exported as Clip(0, 6)), then
 * InvertedResidual blocks `conv`: a 1×1 expansion (t ≠ 1), a depthwise 3×3 (group = channels), a
 * linear 1×1 projection + BN (no activation: the linear bottleneck), and `x + conv(x)` where stride
 * is 1 and the channels agree; features.18 a 1×1 conv to the last channels; the functional
 * adaptive_avg_pool2d → GlobalAveragePool, Flatten, classifier.1 (Gemm).
 *
 * MobileNetV3: the same blocks named `block`, with HardSwish or ReLU, a squeeze-and-excite
 * `SqueezeExcitation` (avgpool → fc1 (1×1 conv) → ReLU → fc2 → HardSigmoid (α = 1/6, β = 0.5)
 * → Mul with the block's tensor: the [N, C, 1, 1] × [N, C, H, W] product) where the config says;
 * avgpool → Flatten → classifier.0 Gemm → HardSwish → classifier.3 Gemm.
 *
 * BN outputs are scaled up (gain 3) before the clipping activations, so that ReLU6 clips at 6 and
 * HardSigmoid/HardSwish reach their saturated parts: each kink is crossed somewhere.
 *
 *   mobilenet_v2 (full): width 1.0, 224×224.  ci: 5 block settings, 8–24 channels, 40×40.
 *   mobilenet_v3_large (full): torchvision's 15 blocks, 224×224.  ci: 4 blocks, 40×40.
 */
import type { OnnxModel } from '../../src/onnx/model.ts';
import { type Scale, type T, TorchNet } from './torch-net.ts';

const ACT_GAIN = 3;

/** [t, c, n, s] as torchvision's inverted_residual_setting. */
const V2: Record<Scale, { stem: number; settings: number[][]; last: number; size: number }> = {
  full: { stem: 32, settings: [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]], last: 1280, size: 224 },
  ci: { stem: 8, settings: [[1, 6, 1, 1], [6, 10, 2, 2], [4, 14, 2, 2], [4, 18, 1, 1]], last: 36, size: 40 },
};

export function mobilenetV2(seed: number, scale: Scale, producer: string): OnnxModel {
  const cfg = V2[scale];
  const net = new TorchNet(seed);
  /** Conv2dNormActivation at `p`: p.0 Conv (no bias), p.1 BN, p.2 ReLU6. */
  const cna = (p: string, x: T, cout: number, k: number, stride = 1, group = 1) =>
    net.relu6(`${p}.2`, net.bn(`${p}.1`, net.conv(`${p}.0`, x, cout, k, { stride, pad: (k - 1) / 2, group }), 1e-5, ACT_GAIN));
  let x = net.input([1, 3, cfg.size, cfg.size], 1);
  x = cna('features.0', x, cfg.stem, 3, 2);
  let i = 1;
  for (const [t, c, n, s] of cfg.settings) {
    for (let b = 0; b < n!; b++, i++) {
      const p = `features.${i}.conv`;
      const inp = x.shape[1]!;
      const stride = b === 0 ? s! : 1;
      const hidden = Math.round(inp * t!);
      let y = x, j = 0;
      if (t !== 1) y = cna(`${p}.${j++}`, y, hidden, 1);
      y = cna(`${p}.${j++}`, y, hidden, 3, stride, hidden);
      y = net.conv(`${p}.${j++}`, y, c!, 1);
      y = net.bn(`${p}.${j++}`, y);
      x = stride === 1 && inp === c ? net.add(`features.${i}`, x, y) : y;
    }
  }
  x = cna(`features.${i}`, x, cfg.last, 1);
  x = net.flatten('', net.gap('', x));
  return net.build(net.linear('classifier.1', x, 1000, undefined, 'logits'), 17, producer);
}

/** torchvision's InvertedResidualConfig: kernel, expanded channels, out channels, SE, activation, stride. */
type V3Block = [k: number, exp: number, out: number, se: boolean, act: 'RE' | 'HS', stride: number];
const V3: Record<Scale, { stem: number; blocks: V3Block[]; last: number; hidden: number; size: number }> = {
  full: {
    stem: 16,
    blocks: [
      [3, 16, 16, false, 'RE', 1], [3, 64, 24, false, 'RE', 2], [3, 72, 24, false, 'RE', 1], [5, 72, 40, true, 'RE', 2],
      [5, 120, 40, true, 'RE', 1], [5, 120, 40, true, 'RE', 1], [3, 240, 80, false, 'HS', 2], [3, 200, 80, false, 'HS', 1],
      [3, 184, 80, false, 'HS', 1], [3, 184, 80, false, 'HS', 1], [3, 480, 112, true, 'HS', 1], [3, 672, 112, true, 'HS', 1],
      [5, 672, 160, true, 'HS', 2], [5, 960, 160, true, 'HS', 1], [5, 960, 160, true, 'HS', 1],
    ],
    last: 960, hidden: 1280, size: 224,
  },
  ci: {
    stem: 8,
    blocks: [[3, 8, 8, false, 'RE', 1], [3, 24, 12, false, 'RE', 2], [5, 36, 12, true, 'HS', 1], [5, 36, 20, true, 'HS', 2]],
    last: 40, hidden: 64, size: 40,
  },
};

/** torchvision's _make_divisible(v, 8). */
const divisible = (v: number, d = 8) => {
  const n = Math.max(d, Math.floor(v + d / 2) - (Math.floor(v + d / 2) % d));
  return n < 0.9 * v ? n + d : n;
};

export function mobilenetV3(seed: number, scale: Scale, producer: string): OnnxModel {
  const cfg = V3[scale];
  const net = new TorchNet(seed);
  const act = (p: string, x: T, a: 'RE' | 'HS') => (a === 'HS' ? net.hardswish(p, x) : net.relu(p, x));
  const cna = (p: string, x: T, cout: number, k: number, a: 'RE' | 'HS', stride = 1, group = 1) =>
    act(`${p}.2`, net.bn(`${p}.1`, net.conv(`${p}.0`, x, cout, k, { stride, pad: (k - 1) / 2, group }), 1e-3, ACT_GAIN), a);
  let x = net.input([1, 3, cfg.size, cfg.size], 1);
  x = cna('features.0', x, cfg.stem, 3, 'HS', 2);
  cfg.blocks.forEach(([k, exp, out, se, a, stride], b) => {
    const p = `features.${b + 1}.block`;
    const inp = x.shape[1]!;
    let y = x, j = 0;
    if (exp !== inp) y = cna(`${p}.${j++}`, y, exp, 1, a);
    y = cna(`${p}.${j++}`, y, exp, k, a, stride, exp);
    if (se) {
      // SqueezeExcitation(exp, _make_divisible(exp // 4, 8)): scale = hardsigmoid(fc2(relu(fc1(avgpool(x))))); scale * x.
      const s = `${p}.${j++}`;
      let g = net.gap(`${s}.avgpool`, y);
      g = net.relu(`${s}.activation`, net.conv(`${s}.fc1`, g, divisible(Math.floor(exp / 4)), 1, { bias: true, rms: 1 }));
      g = net.hardsigmoid(`${s}.scale_activation`, net.conv(`${s}.fc2`, g, exp, 1, { bias: true, rms: 3 }));
      y = net.mul(s, g, y, y.shape);
    }
    y = net.bn(`${p}.${j}.1`, net.conv(`${p}.${j}.0`, y, out, 1));
    x = stride === 1 && inp === out ? net.add(`features.${b + 1}`, y, x) : y;
  });
  x = cna(`features.${cfg.blocks.length + 1}`, x, cfg.last, 1, 'HS');
  x = net.flatten('', net.gap('avgpool', x));
  x = net.hardswish('classifier.1', net.linear('classifier.0', x, cfg.hidden, 3));
  return net.build(net.linear('classifier.3', x, 1000, undefined, 'logits'), 17, producer);
}
