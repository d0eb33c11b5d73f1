/**
 * torchvision's ResNet family (resnet.py) as torch.onnx.export writes it, with BatchNormalization
 * kept as nodes: conv1 → bn1 → relu → maxpool, layer1–4 of BasicBlock or Bottleneck (conv → bn
 * → relu, the residual Add, then the block's `relu` once more, exported as `relu_1` / `relu_2`),
 * a 1×1 stride-s conv + BN `downsample` where the shape changes, avgpool → Flatten → fc (Gemm).
 * ResNeXt is the same Bottleneck with a grouped 3×3 conv (`groups`, `width_per_group`).
 *
 *   resnet50  (full): Bottleneck [3, 4, 6, 3], 224×224, 1000 classes (25.6 M parameters)
 *   resnet    (ci):   BasicBlock [2, 1, 1, 1], planes 6·2^i (C not a multiple of 4), 48×48
 *   resnext50_32x4d (full): Bottleneck [3, 4, 6, 3], 32 groups × 4
 *   resnext   (ci):   Bottleneck [1, 1, 1, 1], 4 groups × 8 (planes 16·2^i), 40×40
 * The CI sizes still cross every pattern: identity and downsample shortcuts, stride 2 in conv2 of a
 * Bottleneck (v1.5), odd spatial sizes (48 → 24 → 12 → 12, 6, 3, 2).
 */
import type { OnnxModel } from '../../src/onnx/model.ts';
import { type T, TorchNet } from './torch-net.ts';

export interface ResNetConfig {
  block: 'basic' | 'bottleneck';
  layers: number[];
  /** Planes of layer1 (64 in torchvision); layer i has planes·2^i. */
  planes: number;
  groups: number;
  widthPerGroup: number;
  size: number;
  classes: number;
}

export const RESNET_CONFIGS = {
  resnet50: { block: 'bottleneck', layers: [3, 4, 6, 3], planes: 64, groups: 1, widthPerGroup: 64, size: 224, classes: 1000 },
  'resnet-ci': { block: 'basic', layers: [2, 1, 1, 1], planes: 6, groups: 1, widthPerGroup: 64, size: 48, classes: 1000 },
  resnext50_32x4d: { block: 'bottleneck', layers: [3, 4, 6, 3], planes: 64, groups: 32, widthPerGroup: 4, size: 224, classes: 1000 },
  'resnext-ci': { block: 'bottleneck', layers: [1, 1, 1, 1], planes: 16, groups: 4, widthPerGroup: 8, size: 40, classes: 1000 },
} as const satisfies Record<string, ResNetConfig>;

export function resnet(seed: number, c: ResNetConfig, producer: string): OnnxModel {
  const net = new TorchNet(seed);
  const expansion = c.block === 'bottleneck' ? 4 : 1;
  let x: T = net.input([1, 3, c.size, c.size], 1);
  x = net.relu('relu', net.bn('bn1', net.conv('conv1', x, c.planes, 7, { stride: 2, pad: 3 })));
  x = net.maxPool('maxpool', x, 3, 2, 1);
  let inplanes = c.planes;
  c.layers.forEach((blocks, i) => {
    const planes = c.planes * 2 ** i;
    for (let b = 0; b < blocks; b++) {
      const p = `layer${i + 1}.${b}`;
      const stride = b === 0 && i > 0 ? 2 : 1;
      const identity = stride !== 1 || inplanes !== planes * expansion
        ? net.bn(`${p}.downsample.1`, net.conv(`${p}.downsample.0`, x, planes * expansion, 1, { stride }))
        : x;
      let y: T;
      if (c.block === 'basic') {
        y = net.relu(`${p}.relu`, net.bn(`${p}.bn1`, net.conv(`${p}.conv1`, x, planes, 3, { stride, pad: 1 })));
        y = net.bn(`${p}.bn2`, net.conv(`${p}.conv2`, y, planes, 3, { pad: 1 }));
      } else {
        const width = Math.floor(planes * (c.widthPerGroup / 64)) * c.groups;
        y = net.relu(`${p}.relu`, net.bn(`${p}.bn1`, net.conv(`${p}.conv1`, x, width, 1)));
        y = net.relu(`${p}.relu`, net.bn(`${p}.bn2`, net.conv(`${p}.conv2`, y, width, 3, { stride, pad: 1, group: c.groups })));
        y = net.bn(`${p}.bn3`, net.conv(`${p}.conv3`, y, planes * expansion, 1));
      }
      // ReLU(y + identity): an identity shortcut is itself a ReLU output (≥ 0), which the ReLU
      // passes whole; only the zero-mean residual y loses half its E[x²]. Tracked as (a + b)/2, the
      // sum grows ~1.5× per block unnoticed (ResNet-50's logits reached std 68).
      const sum = net.relu(`${p}.relu`, net.add(p, y, identity));
      x = { ...sum, m2: identity === x ? identity.m2 + y.m2 / 2 : sum.m2 };
      inplanes = planes * expansion;
    }
  });
  x = net.flatten('', net.gap('avgpool', x));
  return net.build(net.linear('fc', x, c.classes, undefined, 'logits'), 17, producer);
}
