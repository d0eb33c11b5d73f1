/**
 * torchvision's Inception v3 (inception.py, aux_logits off, transform_input=False) as
 * torch.onnx.export writes it, BN kept: BasicConv2d = conv (no bias) → bn (ε 1e-3) → F.relu; the
 * stem Conv2d_1a … Conv2d_4a with maxpool1/2; InceptionA (Mixed_5b–d: 1×1, 5×5, double 3×3, pool),
 * InceptionB (Mixed_6a, stride-2 reduction), InceptionC (Mixed_6b–e: the asymmetric 1×7 / 7×1
 * convolutions, pads (0, 3) and (3, 0)), InceptionD (Mixed_7a), InceptionE (Mixed_7b–c: 1×3 / 3×1
 * pairs, three Concats); F.avg_pool2d(3, 1, 1) with count_include_pad is Pad → AveragePool; avgpool
 * → Flatten → fc.
 *
 *   inception_v3 (full): 299×299, every block.
 *   ci: downscaled for CI: 107×107 (the stem gives 11×11, Mixed_6a 5×5), channels / 8, and the
 *   blocks up to the first asymmetric one (5b, 6a, 6b): every distinct kernel window is a pipeline
 *   of its own, compiled once, and 7a/7b's would double the test's compile time. InceptionD and E
 *   are generated at the full size only.
 */
import type { OnnxModel } from '../../src/onnx/model.ts';
import { type Scale, type T, TorchNet } from './torch-net.ts';

const CFG: Record<Scale, { size: number; div: number; blocks: string[] }> = {
  full: { size: 299, div: 1, blocks: ['5b', '5c', '5d', '6a', '6b', '6c', '6d', '6e', '7a', '7b', '7c'] },
  ci: { size: 107, div: 8, blocks: ['5b', '6a', '6b'] },
};

/** pool_features of Mixed_5b–d, channels_7x7 of Mixed_6b–e. */
const POOL: Record<string, number> = { '5b': 32, '5c': 64, '5d': 64 };
const C7: Record<string, number> = { '6b': 128, '6c': 160, '6d': 160, '6e': 192 };

export function inceptionV3(seed: number, scale: Scale, producer: string): OnnxModel {
  const cfg = CFG[scale];
  const net = new TorchNet(seed);
  const ch = (c: number) => Math.max(2, Math.round(c / cfg.div));
  const basic = (p: string, x: T, cout: number, k: number | [number, number], stride = 1, pad: number | [number, number] = 0) => {
    const pads: [number, number, number, number] = typeof pad === 'number' ? [pad, pad, pad, pad] : [pad[0], pad[1], pad[0], pad[1]];
    return net.relu(p, net.bn(`${p}.bn`, net.conv(`${p}.conv`, x, ch(cout), k, { stride, pad: pads }), 1e-3));
  };
  const pool = (p: string, x: T) => net.avgPool(p, x, 3, 1, 1);

  const blockA = (p: string, x: T) => net.concat(p, [
    basic(`${p}.branch1x1`, x, 64, 1),
    basic(`${p}.branch5x5_2`, basic(`${p}.branch5x5_1`, x, 48, 1), 64, 5, 1, 2),
    basic(`${p}.branch3x3dbl_3`, basic(`${p}.branch3x3dbl_2`, basic(`${p}.branch3x3dbl_1`, x, 64, 1), 96, 3, 1, 1), 96, 3, 1, 1),
    basic(`${p}.branch_pool`, pool(p, x), POOL[p.slice(6)]!, 1),
  ]);
  const blockB = (p: string, x: T) => net.concat(p, [
    basic(`${p}.branch3x3`, x, 384, 3, 2),
    basic(`${p}.branch3x3dbl_3`, basic(`${p}.branch3x3dbl_2`, basic(`${p}.branch3x3dbl_1`, x, 64, 1), 96, 3, 1, 1), 96, 3, 2),
    net.maxPool(p, x, 3, 2),
  ]);
  const blockC = (p: string, x: T) => {
    const c7 = C7[p.slice(6)]!;
    let b7 = basic(`${p}.branch7x7_1`, x, c7, 1);
    b7 = basic(`${p}.branch7x7_3`, basic(`${p}.branch7x7_2`, b7, c7, [1, 7], 1, [0, 3]), 192, [7, 1], 1, [3, 0]);
    let d = basic(`${p}.branch7x7dbl_1`, x, c7, 1);
    d = basic(`${p}.branch7x7dbl_2`, d, c7, [7, 1], 1, [3, 0]);
    d = basic(`${p}.branch7x7dbl_3`, d, c7, [1, 7], 1, [0, 3]);
    d = basic(`${p}.branch7x7dbl_4`, d, c7, [7, 1], 1, [3, 0]);
    d = basic(`${p}.branch7x7dbl_5`, d, 192, [1, 7], 1, [0, 3]);
    return net.concat(p, [basic(`${p}.branch1x1`, x, 192, 1), b7, d, basic(`${p}.branch_pool`, pool(p, x), 192, 1)]);
  };
  const blockD = (p: string, x: T) => {
    const b3 = basic(`${p}.branch3x3_2`, basic(`${p}.branch3x3_1`, x, 192, 1), 320, 3, 2);
    let b7 = basic(`${p}.branch7x7x3_1`, x, 192, 1);
    b7 = basic(`${p}.branch7x7x3_2`, b7, 192, [1, 7], 1, [0, 3]);
    b7 = basic(`${p}.branch7x7x3_3`, b7, 192, [7, 1], 1, [3, 0]);
    b7 = basic(`${p}.branch7x7x3_4`, b7, 192, 3, 2);
    return net.concat(p, [b3, b7, net.maxPool(p, x, 3, 2)]);
  };
  const blockE = (p: string, x: T) => {
    const b1 = basic(`${p}.branch1x1`, x, 320, 1);
    const s = basic(`${p}.branch3x3_1`, x, 384, 1);
    const b3 = net.concat(p, [basic(`${p}.branch3x3_2a`, s, 384, [1, 3], 1, [0, 1]), basic(`${p}.branch3x3_2b`, s, 384, [3, 1], 1, [1, 0])]);
    const d = basic(`${p}.branch3x3dbl_2`, basic(`${p}.branch3x3dbl_1`, x, 448, 1), 384, 3, 1, 1);
    const bd = net.concat(p, [basic(`${p}.branch3x3dbl_3a`, d, 384, [1, 3], 1, [0, 1]), basic(`${p}.branch3x3dbl_3b`, d, 384, [3, 1], 1, [1, 0])]);
    return net.concat(p, [b1, b3, bd, basic(`${p}.branch_pool`, pool(p, x), 192, 1)]);
  };
  const BLOCK: Record<string, (p: string, x: T) => T> = { 5: blockA, '6a': blockB, 6: blockC, '7a': blockD, 7: blockE };

  let x = net.input([1, 3, cfg.size, cfg.size], 1);
  x = basic('Conv2d_1a_3x3', x, 32, 3, 2);
  x = basic('Conv2d_2a_3x3', x, 32, 3);
  x = basic('Conv2d_2b_3x3', x, 64, 3, 1, 1);
  x = net.maxPool('maxpool1', x, 3, 2);
  x = basic('Conv2d_3b_1x1', x, 80, 1);
  x = basic('Conv2d_4a_3x3', x, 192, 3);
  x = net.maxPool('maxpool2', x, 3, 2);
  for (const b of cfg.blocks) x = (BLOCK[b] ?? BLOCK[b[0]!]!)(`Mixed_${b}`, x);
  x = net.flatten('', net.gap('avgpool', x));
  return net.build(net.linear('fc', x, 1000, undefined, 'logits'), 17, producer);
}
