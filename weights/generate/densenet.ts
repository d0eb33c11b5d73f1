/**
 * torchvision's DenseNet (densenet.py) as torch.onnx.export writes it: conv0 → norm0 → relu0 →
 * pool0; dense blocks whose every layer concatenates all earlier outputs (torch.cat, a Concat
 * of one input for the first layer) and runs norm1 → relu1 → conv1 (1×1) → norm2 → relu2 → conv2
 * (3×3): BatchNormalization after a Concat, not after a conv, so it cannot be folded into one; the
 * block's output is the Concat of everything; transitions norm → relu → conv → pool
 * (AvgPool2d(2, 2): the exporter's all-zero Pad, then AveragePool); norm5, then F.relu,
 * adaptive_avg_pool2d, flatten and classifier (Gemm) at the top scope.
 *
 *   densenet121 (full): growth 32, blocks (6, 12, 24, 16), 64 initial features, 224×224.
 *   ci: growth 4, blocks (2, 3, 2), 8 initial features, bn_size 2, 48×48.
 */
import type { OnnxModel } from '../../src/onnx/model.ts';
import { type Scale, type T, TorchNet } from './torch-net.ts';

const CFG: Record<Scale, { growth: number; blocks: number[]; init: number; bnSize: number; size: number }> = {
  full: { growth: 32, blocks: [6, 12, 24, 16], init: 64, bnSize: 4, size: 224 },
  ci: { growth: 4, blocks: [2, 3, 2], init: 8, bnSize: 2, size: 48 },
};

export function densenet(seed: number, scale: Scale, producer: string): OnnxModel {
  const cfg = CFG[scale];
  const net = new TorchNet(seed);
  let x = net.input([1, 3, cfg.size, cfg.size], 1);
  x = net.relu('features.relu0', net.bn('features.norm0', net.conv('features.conv0', x, cfg.init, 7, { stride: 2, pad: 3 })));
  x = net.maxPool('features.pool0', x, 3, 2, 1);
  cfg.blocks.forEach((layers, i) => {
    const b = `features.denseblock${i + 1}`;
    const features: T[] = [x];
    for (let l = 1; l <= layers; l++) {
      const p = `${b}.denselayer${l}`;
      let y = net.concat(p, features);
      y = net.conv(`${p}.conv1`, net.relu(`${p}.relu1`, net.bn(`${p}.norm1`, y)), cfg.bnSize * cfg.growth, 1);
      y = net.conv(`${p}.conv2`, net.relu(`${p}.relu2`, net.bn(`${p}.norm2`, y)), cfg.growth, 3, { pad: 1 });
      features.push(y);
    }
    x = net.concat(b, features);
    if (i < cfg.blocks.length - 1) {
      const t = `features.transition${i + 1}`;
      x = net.conv(`${t}.conv`, net.relu(`${t}.relu`, net.bn(`${t}.norm`, x)), Math.floor(x.shape[1]! / 2), 1);
      x = net.avgPool(`${t}.pool`, x, 2, 2);
    }
  });
  x = net.relu('', net.bn('features.norm5', x));
  x = net.flatten('', net.gap('', x));
  return net.build(net.linear('classifier', x, 1000, undefined, 'logits'), 17, producer);
}
