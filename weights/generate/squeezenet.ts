/**
 * torchvision's SqueezeNet 1.1 (squeezenet.py) as torch.onnx.export writes it: Conv (with bias) →
 * ReLU → MaxPool(3, 2, ceil_mode=True), Fire modules (squeeze 1×1 → ReLU, then expand1x1 and
 * expand3x3 → ReLU each, Concat), two more ceil-mode pools, and a classifier without Gemm:
 * classifier.1 a 1×1 conv to the classes → ReLU → AdaptiveAvgPool2d(1) (GlobalAveragePool) →
 * Flatten, which is `logits`.
 *
 *   squeezenet1_1 (full): 224×224.  ci: channels / 4 or less, 49×49 (after the stride-2 conv 24, so
 *   ceil mode matters at every pool: 24 → 12 (floor: 11), 12 → 6 (5), 6 → 3 (2)).
 */
import type { OnnxModel } from '../../src/onnx/model.ts';
import { type Scale, type T, TorchNet } from './torch-net.ts';

/** Fire(squeeze, expand1x1, expand3x3) per features index; 'M' is a ceil-mode max-pool. */
const CFG: Record<Scale, { stem: number; layers: ([number, number, number] | 'M')[]; size: number }> = {
  full: {
    stem: 64,
    layers: ['M', [16, 64, 64], [16, 64, 64], 'M', [32, 128, 128], [32, 128, 128], 'M', [48, 192, 192], [48, 192, 192], [64, 256, 256], [64, 256, 256]],
    size: 224,
  },
  ci: { stem: 12, layers: ['M', [4, 8, 8], [6, 8, 10], 'M', [6, 12, 12], 'M', [8, 14, 14], [8, 16, 16]], size: 49 },
};

export function squeezenet(seed: number, scale: Scale, producer: string): OnnxModel {
  const cfg = CFG[scale];
  const net = new TorchNet(seed);
  const convRelu = (conv: string, relu: string, x: T, cout: number, k: number, stride = 1, pad = 0, rms = 1) =>
    net.relu(relu, net.conv(conv, x, cout, k, { stride, pad, bias: true, rms }));
  let x = net.input([1, 3, cfg.size, cfg.size], 1);
  x = convRelu('features.0', 'features.1', x, cfg.stem, 3, 2);
  cfg.layers.forEach((l, i) => {
    const p = `features.${i + 2}`;
    if (l === 'M') {
      x = net.maxPool(p, x, 3, 2, 0, true);
      return;
    }
    const s = convRelu(`${p}.squeeze`, `${p}.squeeze_activation`, x, l[0], 1);
    const e1 = convRelu(`${p}.expand1x1`, `${p}.expand1x1_activation`, s, l[1], 1);
    const e3 = convRelu(`${p}.expand3x3`, `${p}.expand3x3_activation`, s, l[2], 3, 1, 1);
    x = net.concat(p, [e1, e3]);
  });
  x = convRelu('classifier.1', 'classifier.2', x, 1000, 1, 1, 0, 3);
  x = net.gap('classifier.3', x);
  return net.build(net.flatten('', x, 'logits'), 17, producer);
}
