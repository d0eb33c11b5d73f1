/**
 * Feature-layer choice for any CNN (src/gradcam/layers.ts, src/graph/layout.ts) on small hand-built
 * graphs with torch.onnx's names: `auto`, `all` (stage outputs and inception blocks), torchvision
 * module paths, channels-last tensors. Lowering only: no GPU.
 */
import { describe, expect, it } from 'vitest';
import { GradcamError } from '../src/errors.ts';
import { candidateLayers, modulePrefix, resolveLayers } from '../src/gradcam/layers.ts';
import { lower } from '../src/graph/lower.ts';
import type { OnnxModel } from '../src/onnx/model.ts';
import { GraphBuilder, int, ints } from '../weights/generate/builder.ts';
import { smallResnet as resnet, weights } from './helpers/small-resnet.ts';

/** The GradcamError that `fn` throws. */
function refusal(fn: () => unknown): GradcamError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(GradcamError);
    return e as GradcamError;
  }
  throw new Error('expected a refusal');
}

describe('a ResNet with torchvision names', () => {
  const g = lower(resnet());
  const L1 = '/layer1/layer1.1/relu_1/Relu_output_0', L2 = '/layer2/layer2.1/relu_1/Relu_output_0';

  it('auto is the last stage output before the global pool; all is the last cut tensor at each resolution', () => {
    expect(resolveLayers(g, ['auto'])).toEqual([L2]);
    // At 8×8 the last tensor is layer2.0's conv1 (1×1, stride 1), which the downsample shortcut
    // bypasses: the stage output is layer1's.
    const at8 = candidateLayers(g).filter((l) => l.shape[2] === 8).map((l) => l.name);
    expect(at8.at(-1)).toBe('/layer2/layer2.0/relu/Relu_output_0');
    expect(resolveLayers(g, ['all'])).toEqual(['/relu/Relu_output_0', L1, L2]);
    expect(candidateLayers(g).filter((l) => l.block)).toEqual([]);
  });

  it('module paths resolve to the last feature layer in the module; missing and non-spatial modules are named', () => {
    expect(modulePrefix('layer4.1')).toBe('/layer4/layer4.1/');
    expect(modulePrefix('features.18')).toBe('/features/features.18/');
    expect(resolveLayers(g, ['layer1'])).toEqual([L1]);
    expect(resolveLayers(g, ['layer2.0'])).toEqual(['/layer2/layer2.0/relu_2/Relu_output_0']);
    expect(resolveLayers(g, ['layer1.0', 'layer2'])).toEqual(['/layer1/layer1.0/relu_1/Relu_output_0', L2]);
    expect(resolveLayers(g, ['/layer2/layer2.0'])).toEqual(['/layer2/layer2.0/relu_2/Relu_output_0']);
    // Exact tensor names still win.
    expect(resolveLayers(g, ['/layer2/layer2.0/relu/Relu_output_0'])).toEqual(['/layer2/layer2.0/relu/Relu_output_0']);
    const fc = refusal(() => resolveLayers(g, ['fc']));
    expect(fc.message).toBe("layer 'fc': module /fc/ has no tensor with spatial extent that the score depends on");
    expect(fc.hint).toMatch(/^Modules with feature layers: relu, maxpool, layer1, layer2\./);
    expect(refusal(() => resolveLayers(g, ['avgpool'])).message).toBe("layer 'avgpool': module /avgpool/ has no tensor with spatial extent that the score depends on");
    const missing = refusal(() => resolveLayers(g, ['layer5']));
    expect(missing.message).toBe("unknown layer 'layer5'");
    expect(missing.hint).toContain('Modules: relu, maxpool, layer1, layer2 (and their sub-modules, e.g. layer2.0).');
    expect(missing.hint).toContain(`Stage or block outputs ('all'): /relu/Relu_output_0, ${L1}, ${L2}.`);
    // A path component that several candidates share is ambiguous, with them listed.
    expect(refusal(() => resolveLayers(g, ['relu_1'])).message).toMatch(/^layer 'relu_1' is ambiguous: it matches \/layer1\/layer1\.0\/relu_1\/Relu_output_0, /);
  });
});

describe('layouts: channels-last tensors are never feature layers', () => {
  /** conv [1,6,4,5] → Transpose to NHWC → Relu → Transpose back → GAP [1,6,1,1] → Transpose to [1,1,1,6] → Flatten → Gemm. */
  function channelsLast(): OnnxModel {
    const b = new GraphBuilder();
    const w = weights(b);
    let x = b.input('x', [1, 3, 4, 5]);
    const c = b.node('Conv', 'conv', [x, w('w', [6, 3, 3, 3])], 'c', { kernel_shape: ints(3, 3), pads: ints(1, 1, 1, 1) });
    const nhwc = b.node('Transpose', 'to_nhwc', [c], 'nhwc', { perm: ints(0, 2, 3, 1) });
    const r = b.node('Relu', 'relu', [nhwc], 'nhwc_relu');
    const back = b.node('Transpose', 'to_nchw', [r], 'back', { perm: ints(0, 3, 1, 2) });
    const gap = b.node('GlobalAveragePool', 'gap', [back], 'gap');
    x = b.node('Transpose', 'gap_last', [gap], 'gap_nhwc', { perm: ints(0, 2, 3, 1) });
    x = b.node('Flatten', 'flat', [x], 'flat', { axis: int(1) });
    x = b.node('Gemm', 'fc', [x, w('fc_w', [4, 6])], 'logits', { transB: int(1) });
    b.output(x, [1, 4]);
    return b.build({ opset: 13, irVersion: 8, producerName: 'test', graphName: 'channels-last' });
  }

  it('[N, H, W, C] and [N, 1, 1, C] after a Transpose are not candidates; the NCHW tensors are', () => {
    const g = lower(channelsLast());
    expect(g.spatial.get('nhwc')).toEqual([1, 2]);
    expect(g.spatial.get('back')).toEqual([2, 3]);
    expect(g.spatial.get('gap_nhwc')).toEqual([1, 2]);
    expect(g.tensors.get('gap_nhwc')!.shape).toEqual([1, 1, 1, 6]); // 1·6 "H·W" by shape alone
    expect(candidateLayers(g).map((l) => l.name)).toEqual(['c', 'back']);
    expect(resolveLayers(g, ['auto'])).toEqual(['back']);
  });

  it('a channel shuffle (Reshape to rank 5 → Transpose → Reshape) keeps H, W', () => {
    const b = new GraphBuilder();
    const w = weights(b);
    const x = b.input('x', [1, 3, 4, 4]);
    const c = b.node('Conv', 'conv', [x, w('w', [6, 3, 1, 1])], 'c', { kernel_shape: ints(1, 1) });
    const r5 = b.node('Reshape', 'r5', [c, b.int64('s5', [1, 2, 3, 4, 4])], 'g');
    const t = b.node('Transpose', 't', [r5], 't', { perm: ints(0, 2, 1, 3, 4) });
    const s = b.node('Reshape', 'r4', [t, b.int64('s4', [1, 6, 4, 4])], 'shuffled');
    const y = b.node('Relu', 'relu', [s], 'y');
    const gap = b.node('GlobalAveragePool', 'gap', [y], 'gap');
    const f = b.node('Flatten', 'flat', [gap], 'flat', { axis: int(1) });
    b.output(b.node('Gemm', 'fc', [f, w('fc_w', [3, 6])], 'logits', { transB: int(1) }), [1, 3]);
    const g = lower(b.build({ opset: 13, irVersion: 8, producerName: 'test', graphName: 'shuffle' }));
    expect([g.spatial.get('g'), g.spatial.get('t'), g.spatial.get('shuffled')]).toEqual([[3, 4], [3, 4], [2, 3]]);
    expect(resolveLayers(g, ['auto'])).toEqual(['y']);
  });
});

describe('inception blocks against running concatenations', () => {
  it('a Concat of three parallel branches is a block; DenseNet-style concatenations (inputs in several concats) are not', () => {
    const b = new GraphBuilder();
    const w = weights(b);
    const conv = (name: string, x: string, cin: number, cout: number) =>
      b.node('Relu', `${name}/relu`, [b.node('Conv', name, [x, w(`${name}_w`, [cout, cin, 3, 3])], `${name}_c`, { kernel_shape: ints(3, 3), pads: ints(1, 1, 1, 1) })], `${name}_r`);
    const x = b.input('x', [1, 3, 6, 6]);
    const stem = conv('stem', x, 3, 4);
    const block = b.node('Concat', 'inc/cat', [conv('inc/a', stem, 4, 2), conv('inc/b', stem, 4, 3), conv('inc/c', stem, 4, 1)], 'inc/output', { axis: int(1) });
    const f1 = conv('dense/f1', block, 6, 2);
    const c1 = b.node('Concat', 'dense/cat1', [block, f1], 'dense/cat1_out', { axis: int(1) });
    const f2 = conv('dense/f2', c1, 8, 2);
    const c2 = b.node('Concat', 'dense/cat2', [block, f1, f2], 'dense/cat2_out', { axis: int(1) });
    const gap = b.node('GlobalAveragePool', 'gap', [c2], 'gap');
    const f = b.node('Flatten', 'flat', [gap], 'flat', { axis: int(1) });
    b.output(b.node('Gemm', 'fc', [f, w('fc_w', [3, 10])], 'logits', { transB: int(1) }), [1, 3]);
    const g = lower(b.build({ opset: 13, irVersion: 8, producerName: 'test', graphName: 'concats' }));
    const layers = candidateLayers(g);
    expect(layers.filter((l) => l.block).map((l) => l.name)).toEqual(['inc/output']);
    // One resolution: its stage output is the last cut tensor, the final concatenation.
    expect(layers.filter((l) => l.stage).map((l) => l.name)).toEqual(['dense/cat2_out']);
    // 'all': the inception blocks where the model has them (they are its stages).
    expect(resolveLayers(g, ['all'])).toEqual(['inc/output']);
    expect(resolveLayers(g, ['inc'])).toEqual(['inc/output']);
  });
});
