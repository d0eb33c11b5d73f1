/**
 * torchvision's VGG-16 (vgg.py, configuration "D") as torch.onnx.export writes it: features.N of
 * Conv (3×3, bias) → ReLU and 2×2 max-pools; avgpool (AdaptiveAvgPool2d((7, 7)) on a 7×7 map: the
 * exporter writes AveragePool 1×1), Flatten, then the large classifier: Gemm → ReLU → (Dropout,
 * not exported) → Gemm → ReLU → Gemm.
 *
 *   vgg16 (full): 224×224, classifier 25088 → 4096 → 4096 → 1000 (138 M parameters).
 *   ci: 48×48, 4 pools, channels 8–32: features of 32×3×3; the adaptive pool's target is the map's
 *   own 3×3 (so it is the same 1×1 AveragePool), classifier 288 → 256 → 256 → 1000.
 */
import type { OnnxModel } from '../../src/onnx/model.ts';
import { type Scale, TorchNet } from './torch-net.ts';

const CFG: Record<Scale, { layers: (number | 'M')[]; hidden: number; size: number }> = {
  full: { layers: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'], hidden: 4096, size: 224 },
  ci: { layers: [8, 'M', 12, 12, 'M', 20, 20, 'M', 32, 32, 'M'], hidden: 256, size: 48 },
};

export function vgg16(seed: number, scale: Scale, producer: string): OnnxModel {
  const cfg = CFG[scale];
  const net = new TorchNet(seed);
  let x = net.input([1, 3, cfg.size, cfg.size], 1);
  let i = 0;
  for (const l of cfg.layers) {
    if (l === 'M') {
      x = net.maxPool(`features.${i++}`, x, 2, 2);
    } else {
      x = net.conv(`features.${i++}`, x, l, 3, { pad: 1, bias: true, rms: 1 });
      x = net.relu(`features.${i++}`, x);
    }
  }
  x = net.flatten('', net.adaptiveIdentity('avgpool', x));
  x = net.relu('classifier.1', net.linear('classifier.0', x, cfg.hidden, 1));
  x = net.relu('classifier.4', net.linear('classifier.3', x, cfg.hidden, 1));
  return net.build(net.linear('classifier.6', x, 1000, undefined, 'logits'), 17, producer);
}
