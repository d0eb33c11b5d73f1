/**
 * A two-stage ResNet on 1×3×32×32 with torchvision's module names as torch.onnx writes them
 * (`/layer1/layer1.1/relu_1/Relu_output_0`), for the layer-choice and inspector tests.
 */
import type { OnnxModel } from '../../src/onnx/model.ts';
import { float, GraphBuilder, int, ints } from '../../weights/generate/builder.ts';

/** Small deterministic weights. */
export function weights(b: GraphBuilder) {
  let seed = 1;
  return (name: string, dims: number[]) => b.weight(name, dims, Float32Array.from({ length: dims.reduce((a, c) => a * c, 1) }, () => {
    seed = (seed * 16807) % 2147483647;
    return (seed / 2147483647 - 0.5) * 0.4;
  }));
}

/**
 * The ResNet:
 * conv1 (stride 2) → relu → maxpool → layer1 (two basic blocks, identity shortcuts, 8×8) → layer2
 * (a bottleneck whose 1×1 conv1 runs at 8×8 before its stride-2 conv2, with a downsample shortcut;
 * then a basic block, 4×4) → GlobalAveragePool → Flatten → fc.
 */
export function smallResnet(): OnnxModel {
  const b = new GraphBuilder();
  const w = weights(b);
  const conv = (scope: string, x: string, cin: number, cout: number, k: number, stride = 1) =>
    b.node('Conv', `${scope}/Conv`, [x, w(`${scope}.weight`, [cout, cin, k, k]), w(`${scope}.bias`, [cout])], `${scope}/Conv_output_0`,
      { kernel_shape: ints(k, k), strides: ints(stride, stride), pads: ints(k >> 1, k >> 1, k >> 1, k >> 1) });
  const relu = (scope: string, x: string) => b.node('Relu', `${scope}/Relu`, [x], `${scope}/Relu_output_0`);
  const basic = (p: string, x: string, c: number) => {
    const y = conv(`${p}/conv2`, relu(`${p}/relu`, conv(`${p}/conv1`, x, c, c, 3)), c, c, 3);
    return relu(`${p}/relu_1`, b.node('Add', `${p}/Add`, [y, x], `${p}/Add_output_0`));
  };
  let x = b.input('input', [1, 3, 32, 32]);
  x = relu('/relu', conv('/conv1', x, 3, 4, 3, 2));
  x = b.node('MaxPool', '/maxpool/MaxPool', [x], '/maxpool/MaxPool_output_0', { kernel_shape: ints(2, 2), strides: ints(2, 2) });
  x = basic('/layer1/layer1.0', x, 4);
  x = basic('/layer1/layer1.1', x, 4);
  const p = '/layer2/layer2.0';
  let y = relu(`${p}/relu`, conv(`${p}/conv1`, x, 4, 4, 1));
  y = relu(`${p}/relu_1`, conv(`${p}/conv2`, y, 4, 4, 3, 2));
  y = conv(`${p}/conv3`, y, 4, 8, 1);
  const shortcut = conv(`${p}/downsample/downsample.0`, x, 4, 8, 1, 2);
  x = relu(`${p}/relu_2`, b.node('Add', `${p}/Add`, [y, shortcut], `${p}/Add_output_0`));
  x = basic('/layer2/layer2.1', x, 8);
  x = b.node('GlobalAveragePool', '/avgpool/GlobalAveragePool', [x], '/avgpool/GlobalAveragePool_output_0');
  x = b.node('Flatten', '/Flatten', [x], '/Flatten_output_0', { axis: int(1) });
  x = b.node('Gemm', '/fc/Gemm', [x, w('fc.weight', [5, 8]), w('fc.bias', [5])], 'logits', { alpha: float(1), beta: float(1), transB: int(1) });
  b.output(x, [1, 5]);
  return b.build({ opset: 13, irVersion: 8, producerName: 'pytorch', graphName: 'main_graph' });
}
