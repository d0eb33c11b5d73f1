/**
 * gradcam-webgpu: Grad-CAM for GoogLeNet on hand-written WebGPU kernels, in the browser and in Node.
 * This is the platform-neutral API; Node adds file and Dawn helpers in `gradcam-webgpu/node`.
 */
export { GradcamError, InternalError } from './errors.ts';
export { requestGpu, describeAdapter, type GpuContext, type AdapterSummary } from './gpu/device.ts';
export { decodeOnnx } from './onnx/decode.ts';
export type { OnnxModel } from './onnx/model.ts';
export { Network, gradCAM, type NetworkOptions } from './gradcam/network.ts';
export type { LayerInfo } from './gradcam/layers.ts';
export type {
  ClassSpec, GradcamMap, GradcamOptions, GradcamResult, GradcamTimings, ModelInput, Prediction, Reduction, TensorInput,
} from './gradcam/types.ts';
export type { BatchOptions, BatchPlace, Classification, ClassifyOptions, GradcamBatchOptions } from './gradcam/types.ts';
export { liveBuffers, type LiveBuffers } from './gpu/buffers.ts';
export { applicableVariants, CONV_VARIANT_NAMES, CONV_VARIANTS, type ConvVariant, type ConvVariantName, type LayerPlan, parsePlan, type Plan } from './kernels/variants.ts';
export { IndexedDbPlanStore, MemoryPlanStore, type PlanKey, type PlanStore, type TunedPlan, type TuneTiming } from './runtime/plan-store.ts';
export { type TuneOptions, type TuneProgress, type TuneReport } from './runtime/tune.ts';
export { IMAGENET_LABELS, KNOWN_ANSWER_LABELS, labelSet } from './gradcam/labels.ts';
export type { RgbaImage } from './image/image.ts';
export { CAFFE_BGR, chooseRecipe, EFFICIENTNET_LITE, IMAGENET_RGB, type Layout, RECIPES, type Recipe, type RecipeChoice, type RecipeOverrides, TORCHVISION } from './image/recipes.ts';
export * from './metrics/index.ts';
