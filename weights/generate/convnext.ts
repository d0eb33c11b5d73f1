/**
 * torchvision's ConvNeXt-Tiny (convnext.py) as torch.onnx.export writes it at opset 17: the stem
 * Conv 4×4/4 (bias) → LayerNorm2d (Transpose to channels-last → LayerNormalization → Transpose
 * back); stages of CNBlock `block`: depthwise 7×7 conv (bias) → Permute (Transpose) → LayerNorm
 * (ε 1e-6) → Linear 4C (MatMul on the last axis + Add of the bias) → GELU (exact, before opset 20
 * written as Div by √2 → Erf → Add 1 → Mul x → Mul 0.5) → Linear C → Permute back; then the layer
 * scale (Mul by a [C, 1, 1] parameter) and the residual Add; downsampling LayerNorm2d → Conv 2×2/2;
 * avgpool → classifier LayerNorm2d on [N, C, 1, 1] → Flatten → Gemm.
 *
 * torchvision initialises the layer scale at 1e-6 (blocks start as identities); trained values are
 * of order 0.1–1, and a scale of 1e-6 would hide every error inside a block, so it is drawn in
 * [0.2, 1].
 *
 *   convnext_tiny (full): dims [96, 192, 384, 768], depths [3, 3, 9, 3], 224×224.
 *   ci: dims [8, 12, 16, 20], depths [2, 1, 1, 1], 64×64 (maps 16, 8, 4, 2).
 */
import type { OnnxModel } from '../../src/onnx/model.ts';
import { type Scale, type T, TorchNet } from './torch-net.ts';

const CFG: Record<Scale, { dims: number[]; depths: number[]; size: number }> = {
  full: { dims: [96, 192, 384, 768], depths: [3, 3, 9, 3], size: 224 },
  ci: { dims: [8, 12, 16, 20], depths: [2, 1, 1, 1], size: 64 },
};

export function convnextTiny(seed: number, scale: Scale, producer: string): OnnxModel {
  const cfg = CFG[scale];
  const net = new TorchNet(seed);
  /** LayerNorm2d: permute to channels-last, layer_norm, permute back. */
  const ln2d = (p: string, x: T) => {
    const t = net.transpose(p, x, [0, 2, 3, 1]);
    return net.transpose(p, { ...t, ...net.layerNorm(p, t), shape: t.shape }, [0, 3, 1, 2]);
  };
  let x = net.input([1, 3, cfg.size, cfg.size], 1);
  x = ln2d('features.0.1', net.conv('features.0.0', x, cfg.dims[0]!, 4, { stride: 4, bias: true }));
  let f = 1;
  cfg.depths.forEach((depth, s) => {
    const dim = cfg.dims[s]!;
    if (s > 0) {
      x = ln2d(`features.${f}.0`, x);
      x = net.conv(`features.${f}.1`, x, dim, 2, { stride: 2, bias: true, rms: 1 });
      f++;
    }
    for (let b = 0; b < depth; b++) {
      const p = `features.${f}.${b}`;
      let y = net.conv(`${p}.block.0`, x, dim, 7, { pad: 3, group: dim, bias: true });
      y = net.transpose(`${p}.block.1`, y, [0, 2, 3, 1]);
      y = net.layerNorm(`${p}.block.2`, y);
      y = net.linearLastAxis(`${p}.block.3`, y, 4 * dim, 1.5);
      y = net.gelu(`${p}.block.4`, y);
      y = net.linearLastAxis(`${p}.block.5`, y, dim, 1);
      y = net.transpose(`${p}.block.6`, y, [0, 3, 1, 2]);
      const scaleParam = net.parameter(`${p}.layer_scale`, [dim, 1, 1], net.rng.uniforms(dim, 0.2, 1));
      y = net.mul(p, scaleParam, y, y.shape);
      x = net.add(p, y, x);
    }
    f++;
  });
  x = net.gap('avgpool', x);
  x = net.flatten('classifier.1', ln2d('classifier.0', x));
  return net.build(net.linear('classifier.2', x, 1000, undefined, 'logits'), 17, producer);
}
