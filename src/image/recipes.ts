/**
 * Preprocessing recipes: how an RGB picture becomes a model's input tensor. The GPU kernel
 * (shaders/preprocess.wgsl) resizes to the input size with an antialiased bilinear filter, then
 * computes (value · valueScale − mean[c]) / std[c] per channel, in the model's channel order.
 */

export interface Recipe {
  /** Short name, e.g. 'caffe-bgr' (ONNX Model Zoo GoogLeNet) or 'imagenet-rgb' (torchvision). */
  name: string;
  /** 1 keeps 0–255; 1/255 maps to 0–1 first. */
  valueScale: number;
  /** Per channel, in R, G, B order (after valueScale). */
  mean: [number, number, number];
  std: [number, number, number];
  channelOrder: 'RGB' | 'BGR';
}

/** ONNX Model Zoo GoogLeNet (Caffe): 0–255, minus the RGB means, reordered to BGR. */
export const CAFFE_BGR: Recipe = {
  name: 'caffe-bgr', valueScale: 1, mean: [123.68, 116.779, 103.939], std: [1, 1, 1], channelOrder: 'BGR',
};

/** torchvision ImageNet models: 0–1, ImageNet mean and std, RGB. */
export const IMAGENET_RGB: Recipe = {
  name: 'imagenet-rgb', valueScale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], channelOrder: 'RGB',
};

export const RECIPES: Record<string, Recipe> = { [CAFFE_BGR.name]: CAFFE_BGR, [IMAGENET_RGB.name]: IMAGENET_RGB };

/**
 * The recipe for a model when nothing else says: Caffe-converted models (the zoo's input is named
 * 'data_0', and it carries LRN) get Caffe BGR; anything else the torchvision ImageNet recipe.
 */
export function guessRecipe(inputName: string, opTypes: string[]): Recipe {
  if (inputName === 'data_0' || opTypes.includes('LRN')) return CAFFE_BGR;
  return IMAGENET_RGB;
}

/** Inverts a recipe for one pixel of a tensor (for drawing a .npy input under its overlay). */
export function unprocess(recipe: Recipe, values: [number, number, number]): [number, number, number] {
  const rgb = recipe.channelOrder === 'BGR' ? [values[2], values[1], values[0]] : values;
  return rgb.map((v, c) => Math.max(0, Math.min(255, Math.round(((v * recipe.std[c]) + recipe.mean[c]) / recipe.valueScale)))) as [number, number, number];
}

/** A recipe applied to one RGB pixel (0–255): the input tensor's values, in the model's channel order. */
export function preprocessPixel(recipe: Recipe, rgb: [number, number, number]): [number, number, number] {
  const v = rgb.map((x, c) => (x * recipe.valueScale - recipe.mean[c]) / recipe.std[c]);
  return (recipe.channelOrder === 'BGR' ? [v[2], v[1], v[0]] : v) as [number, number, number];
}
