/**
 * The models the project generates itself, by name, and their files under weights/generated/
 * (git-ignored: they are rebuilt from code and a seed, never committed or downloaded).
 *
 * This module is Node-only (it writes files); browser code imports the generator modules
 * (googlenet-zoo.ts, ...) directly and encodes the model in memory.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { GradcamError } from '../../src/errors.ts';
import { writeFileAtomic } from '../../src/node/files.ts';
import { isCheckout, modelCacheDir, repositoryRoot } from '../../src/node/paths.ts';
import type { OnnxModel } from '../../src/onnx/model.ts';
import { encodeOnnx } from '../../src/onnx/write.ts';
import { googlenetKnownAnswer } from './googlenet-known-answer.ts';
import { googlenetTorchvision } from './googlenet-torchvision.ts';
import { googlenetZoo } from './googlenet-zoo.ts';
import { convnextTiny } from './convnext.ts';
import { densenet } from './densenet.ts';
import { efficientnetB0 } from './efficientnet.ts';
import { inceptionV3 } from './inception-v3.ts';
import { efficientnetLiteNhwc, resnetFinetuned10 } from './own-models.ts';
import { mobilenetV2, mobilenetV3 } from './mobilenet.ts';
import { RESNET_CONFIGS, resnet } from './resnet.ts';
import { shufflenetV2 } from './shufflenet.ts';
import { squeezenet } from './squeezenet.ts';
import type { Scale } from './torch-net.ts';
import { vgg16 } from './vgg.ts';

export interface GeneratedModelSpec {
  /** One line for listings and logs. */
  description: string;
  /** Builds the model; deterministic (same bytes every time). */
  build: () => OnnxModel;
  /**
   * A real-size family model (14-550 MB, 1.3 GB together): generated when asked for by name (the
   * bench's --model generated:NAME, `gradcam generate NAME`), not by `gradcam generate all`.
   */
  byNameOnly?: boolean;
}

/** Every generated model. Adding one is adding an entry here. */
export const GENERATED_MODELS: Record<string, GeneratedModelSpec> = {
  'googlenet-zoo-seeded': {
    description: 'ONNX Model Zoo googlenet-12 topology and names (opset 12), seeded random weights',
    build: () => googlenetZoo(1),
  },
  'googlenet-torchvision-seeded': {
    description: 'torchvision GoogLeNet as torch.onnx.export writes it (opset 13, Conv+BatchNormalization), seeded random weights',
    build: () => googlenetTorchvision(2),
  },
  'googlenet-known-answer': {
    description: 'ONNX Model Zoo googlenet-12 topology and names, hand-set weights: classes 0, 1, 2 score red, green, blue (Grad-CAM known in advance)',
    build: googlenetKnownAnswer,
  },
  // The CNN families (issue 18), as torch.onnx.export writes torchvision's models: a small `-ci`
  // version for the tests (few channels, small input, every pattern of the family) and the real size.
  'resnet-ci': {
    description: 'torchvision ResNet (BasicBlock [2, 1, 1, 1], planes 6, 48×48) as torch.onnx exports it with BatchNormalization kept, seeded weights',
    build: () => resnet(31, RESNET_CONFIGS['resnet-ci'], 'resnet-ci'),
  },
  'resnet50-seeded': {
    description: 'torchvision resnet50 (224×224, 25.6 M parameters) as torch.onnx exports it with BatchNormalization kept, seeded weights',
    build: () => resnet(32, RESNET_CONFIGS.resnet50, 'resnet50-seeded'),
    byNameOnly: true,
  },
  'resnext-ci': {
    description: 'torchvision ResNeXt (Bottleneck [1, 1, 1, 1], 4 groups × 8, 40×40), BatchNormalization kept, seeded weights',
    build: () => resnet(33, RESNET_CONFIGS['resnext-ci'], 'resnext-ci'),
  },
  'resnext50_32x4d-seeded': {
    description: 'torchvision resnext50_32x4d (224×224), BatchNormalization kept, seeded weights',
    build: () => resnet(34, RESNET_CONFIGS.resnext50_32x4d, 'resnext50_32x4d-seeded'),
    byNameOnly: true,
  },
  ...family('mobilenetv2', 'mobilenetv2', 'torchvision mobilenet_v2 (depthwise, ReLU6 as Clip, linear bottlenecks with residual Add)', 35, mobilenetV2),
  ...family('mobilenetv3', 'mobilenetv3-large', 'torchvision mobilenet_v3_large (HardSwish, squeeze-and-excite with HardSigmoid)', 37, mobilenetV3),
  ...family('efficientnet', 'efficientnet-b0', 'torchvision efficientnet_b0 (SiLU as Sigmoid·Mul, squeeze-and-excite)', 39, efficientnetB0),
  ...family('shufflenetv2', 'shufflenetv2-x1_0', 'torchvision shufflenet_v2_x1_0 (Split, channel shuffle: Reshape rank 5 → Transpose → Reshape, Concat)', 41, shufflenetV2),
  ...family('densenet', 'densenet121', 'torchvision densenet121 (dense Concat, BN + ReLU after concat, Pad + AveragePool)', 43, densenet),
  ...family('squeezenet', 'squeezenet1_1', 'torchvision squeezenet1_1 (fire modules, ceil-mode max-pools, no Gemm)', 45, squeezenet),
  ...family('vgg', 'vgg16', 'torchvision vgg16 (3×3 convs, large Gemm classifier)', 47, vgg16),
  ...family('inceptionv3', 'inceptionv3', 'torchvision inception_v3 (asymmetric 1×7 / 7×1 convs, Pad + AveragePool branches; 299×299, CI: 107×107, width / 8)', 49, inceptionV3),
  ...family('convnext', 'convnext-tiny', 'torchvision convnext_tiny at opset 17 (depthwise 7×7, channels-last LayerNorm, MatMul, GELU as Erf, layer scale)', 51, convnextTiny),
  // Stand-ins for a person's own model (issue 19): a fine-tuned 10-class ResNet (labels: weights/labels/resnet-finetuned-10.txt), an NHWC input.
  'resnet-finetuned-10': {
    description: 'torchvision ResNet (BasicBlock [1, 1, 1, 1], planes 8, 64×64) fine-tuned to 10 classes (CIFAR-10 names in weights/labels/resnet-finetuned-10.txt), seeded weights',
    build: resnetFinetuned10,
  },
  'efficientnet-lite-nhwc': {
    description: "the zoo's EfficientNet-Lite4 input as tf2onnx writes it (NHWC images:0 [1, 224, 224, 3], Transpose to NCHW), a small CNN behind it, seeded weights",
    build: efficientnetLiteNhwc,
  },
};

/** `<ci>-ci` (the tests' small version) and `<full>-seeded` (torchvision's size) of one family generator. */
function family(ci: string, full: string, what: string, seed: number,
  build: (seed: number, scale: Scale, producer: string) => OnnxModel): Record<string, GeneratedModelSpec> {
  return {
    [`${ci}-ci`]: { description: `${what}, small for CI, seeded weights`, build: () => build(seed, 'ci', `${ci}-ci`) },
    [`${full}-seeded`]: { description: `${what}, real size, seeded weights`, build: () => build(seed + 1, 'full', `${full}-seeded`), byNameOnly: true },
  };
}

function spec(name: string): GeneratedModelSpec {
  // Own entries only: a name like '__proto__' or 'constructor' is unknown, not Object's prototype.
  const s = Object.hasOwn(GENERATED_MODELS, name) ? GENERATED_MODELS[name] : undefined;
  if (!s) throw new GradcamError(`unknown generated model '${name}'`, `Known: ${Object.keys(GENERATED_MODELS).join(', ')}.`);
  return s;
}

/**
 * The absolute path of `weights/generated/<name>.onnx` in a checkout of the repository; for an
 * installed package, `generated/<name>.onnx` in the model cache (never inside node_modules).
 */
export function generatedModelPath(name: string): string {
  spec(name);
  const folder = isCheckout() ? join(repositoryRoot(), 'weights', 'generated') : join(modelCacheDir(), 'generated');
  return join(folder, `${name}.onnx`);
}

/** Builds a generated model and encodes it as ONNX bytes (no file involved). */
export function generateModelBytes(name: string): Uint8Array {
  return encodeOnnx(spec(name).build());
}

/**
 * Writes `weights/generated/<name>.onnx` unless it is there already (or `force`), and returns
 * its absolute path. The file is written to a temporary name in the same folder and renamed, so a
 * reader (or a concurrent test process) never sees half a file.
 */
export async function ensureGeneratedModel(
  name: string,
  opts: { force?: boolean; log?: (line: string) => void } = {},
): Promise<string> {
  const path = generatedModelPath(name);
  if (!opts.force && existsSync(path)) return path;
  opts.log?.(`generating ${name}: ${spec(name).description}`);
  const bytes = generateModelBytes(name);
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, bytes);
  opts.log?.(`wrote ${path} (${(bytes.length / 1e6).toFixed(1)} MB)`);
  return path;
}
