/**
 * Stand-ins for the models a person brings (issue 19): no weights are downloaded here, so these
 * have the structure and names of the real thing with seeded weights.
 *
 * - resnet-finetuned-10: a torchvision ResNet (BasicBlock [1, 1, 1, 1], planes 8, 64×64) whose
 *   fc was replaced for 10 classes, as a fine-tuned model is exported by torch.onnx; its class
 *   names are weights/labels/resnet-finetuned-10.txt (CIFAR-10's ten).
 * - efficientnet-lite-nhwc: the zoo's EfficientNet-Lite4 input as tf2onnx writes it: NHWC
 *   `images:0` [1, 224, 224, 3], a Transpose to NCHW first, then convolutions (stride 4 and 2, few
 *   channels: small on purpose), global pooling and a 1000-class Gemm.
 */
import type { OnnxModel } from '../../src/onnx/model.ts';
import { resnet } from './resnet.ts';
import { TorchNet } from './torch-net.ts';

export function resnetFinetuned10(): OnnxModel {
  return resnet(61, { block: 'basic', layers: [1, 1, 1, 1], planes: 8, groups: 1, widthPerGroup: 64, size: 64, classes: 10 }, 'resnet-finetuned-10');
}

export function efficientnetLiteNhwc(): OnnxModel {
  const net = new TorchNet(62);
  let x = net.input([1, 224, 224, 3], 1);
  x = net.transpose('', x, [0, 3, 1, 2]);
  x = net.relu('stem.relu', net.bn('stem.bn', net.conv('stem.conv', x, 8, 3, { stride: 4, pad: 1 })));
  x = net.relu('blocks.0.relu', net.bn('blocks.0.bn', net.conv('blocks.0.conv', x, 16, 3, { stride: 2, pad: 1 })));
  x = net.flatten('', net.gap('pool', x));
  const model = net.build(net.linear('classifier', x, 1000, undefined, 'logits'), 11, 'efficientnet-lite-nhwc');
  // tf2onnx names the input after the TensorFlow tensor.
  const rename = (n: string) => (n === 'x' ? 'images:0' : n);
  model.inputs = model.inputs.map((v) => ({ ...v, name: rename(v.name) }));
  model.nodes = model.nodes.map((n) => ({ ...n, inputs: n.inputs.map(rename) }));
  return model;
}
