/**
 * torchvision's ShuffleNetV2 (shufflenetv2.py) as torch.onnx.export writes it, BN kept: conv1
 * (Conv → BN → ReLU), maxpool, stages of InvertedResidual: a stride-2 block runs `branch1`
 * (depthwise 3×3 → BN → 1×1 → BN → ReLU) and `branch2` (1×1 → BN → ReLU → depthwise 3×3 → BN →
 * 1×1 → BN → ReLU) on the whole input; a stride-1 block splits the channels in two (x.chunk(2,
 * dim=1): Split) and runs branch2 on the second half; then Concat and the channel shuffle:
 * Reshape to rank 5 [N, 2, C/2, H, W] → Transpose(0, 2, 1, 3, 4) → Reshape back. conv5, then
 * x.mean([2, 3]) (ReduceMean, keepdims 0) and fc (Gemm).
 *
 *   shufflenet_v2_x1_0 (full): repeats [4, 8, 4], channels [24, 116, 232, 464, 1024], 224×224.
 *   ci: repeats [2, 1, 1], channels [8, 12, 20, 28, 48], 48×48.
 */
import type { OnnxModel } from '../../src/onnx/model.ts';
import { type Scale, type T, TorchNet } from './torch-net.ts';

const CFG: Record<Scale, { repeats: number[]; channels: number[]; size: number }> = {
  full: { repeats: [4, 8, 4], channels: [24, 116, 232, 464, 1024], size: 224 },
  ci: { repeats: [2, 1, 1], channels: [8, 12, 20, 28, 48], size: 48 },
};

export function shufflenetV2(seed: number, scale: Scale, producer: string): OnnxModel {
  const cfg = CFG[scale];
  const net = new TorchNet(seed);
  const cbr = (p: string, x: T, cout: number, k: number, stride = 1, group = 1, relu = true) => {
    const y = net.bn(`${p}.1`, net.conv(`${p}.0`, x, cout, k, { stride, pad: (k - 1) / 2, group }));
    return relu ? net.relu(`${p}.2`, y) : y;
  };
  let x = net.input([1, 3, cfg.size, cfg.size], 1);
  x = cbr('conv1', x, cfg.channels[0]!, 3, 2);
  x = net.maxPool('maxpool', x, 3, 2, 1);
  cfg.repeats.forEach((n, s) => {
    const oup = cfg.channels[s + 1]!;
    const bf = oup / 2;
    for (let b = 0; b < n; b++) {
      const p = `stage${s + 2}.${b}`;
      const stride = b === 0 ? 2 : 1;
      const branch2 = (y: T) => {
        y = net.relu(`${p}.branch2.2`, net.bn(`${p}.branch2.1`, net.conv(`${p}.branch2.0`, y, bf, 1)));
        y = net.bn(`${p}.branch2.4`, net.conv(`${p}.branch2.3`, y, bf, 3, { stride, pad: 1, group: bf }));
        return net.relu(`${p}.branch2.7`, net.bn(`${p}.branch2.6`, net.conv(`${p}.branch2.5`, y, bf, 1)));
      };
      let out: T;
      if (stride === 2) {
        let y1 = net.bn(`${p}.branch1.1`, net.conv(`${p}.branch1.0`, x, x.shape[1]!, 3, { stride, pad: 1, group: x.shape[1]! }));
        y1 = net.relu(`${p}.branch1.4`, net.bn(`${p}.branch1.3`, net.conv(`${p}.branch1.2`, y1, bf, 1)));
        out = net.concat(p, [y1, branch2(x)]);
      } else {
        const [x1, x2] = net.split(p, x, [bf, bf]);
        out = net.concat(p, [x1!, branch2(x2!)]);
      }
      // channel_shuffle(out, 2)
      const [, c, h, w] = out.shape as [number, number, number, number];
      const r = net.reshape(p, out, [1, 2, c / 2, h, w]);
      const t = net.transpose(p, r, [0, 2, 1, 3, 4]);
      x = { ...net.reshape(p, t, [1, -1, h, w]), shape: [1, c, h, w] };
    }
  });
  x = cbr('conv5', x, cfg.channels[4]!, 1);
  x = net.reduceMean('', x, [2, 3], false);
  return net.build(net.linear('fc', x, 1000, undefined, 'logits'), 17, producer);
}
