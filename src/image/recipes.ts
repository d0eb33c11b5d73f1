/**
 * Preprocessing recipes: how an RGB picture becomes a model's input tensor, as data. The GPU kernel
 * (shaders/preprocess.wgsl) resamples the picture (the whole of it stretched, or a centre crop) to
 * the input size with an antialiased bilinear filter, then computes (value · valueScale − mean[c]) /
 * std[c] per channel, in the model's channel order, written NCHW or NHWC.
 *
 * Where a model's recipe comes from (chooseRecipe): the user (--recipe, --mean, --std, --size,
 * --layout; the API's load options), else the manifest, else the model's metadata_props (the keys
 * in METADATA_KEYS), else a guess from the input's name and ops. The choice carries its source and
 * a reason, which `info` and `explain` print.
 */
import { GradcamError } from '../errors.ts';

export type Layout = 'NCHW' | 'NHWC';
export type ResizePolicy = 'stretch' | 'centre-crop';

export interface Recipe {
  /** Short name, e.g. 'caffe-bgr' (ONNX Model Zoo GoogLeNet) or 'torchvision' (torchvision's ImageNet models). */
  name: string;
  /** 1 keeps 0–255; 1/255 maps to 0–1 first. */
  valueScale: number;
  /** Per channel, in R, G, B order (after valueScale). */
  mean: [number, number, number];
  std: [number, number, number];
  channelOrder: 'RGB' | 'BGR';
  /**
   * 'stretch' (the default): the whole picture scaled to the input size, each axis on its own.
   * 'centre-crop': the shorter side scaled to size / cropFraction, then the centre cut out at the
   * input size (torchvision's Resize(256) + CenterCrop(224): cropFraction 224 / 256 = 0.875).
   */
  resize?: ResizePolicy;
  cropFraction?: number;
  /** The input's layout; default: read from the input's shape (the axis of size 3). */
  layout?: Layout;
  /** [H, W] for an input whose spatial size is not fixed in the file (dim_param or 0); default DEFAULT_SIZE. */
  size?: [number, number];
}

/** The spatial size of an input whose height and width the file leaves open, when nothing states one. */
export const DEFAULT_SIZE: [number, number] = [224, 224];

/** ONNX Model Zoo GoogLeNet (Caffe): 0–255, minus the RGB means, reordered to BGR; stretched. */
export const CAFFE_BGR: Recipe = {
  name: 'caffe-bgr', valueScale: 1, mean: [123.68, 116.779, 103.939], std: [1, 1, 1], channelOrder: 'BGR',
};

/** torchvision's ImageNet values (0–1, ImageNet mean and std, RGB), the picture stretched to the input. */
export const IMAGENET_RGB: Recipe = {
  name: 'imagenet-rgb', valueScale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], channelOrder: 'RGB',
};

/** torchvision's evaluation transform: Resize(256), CenterCrop(224), ImageNet mean and std (the zoo's ResNet, MobileNet, SqueezeNet, VGG, ShuffleNet pages). */
export const TORCHVISION: Recipe = { ...IMAGENET_RGB, name: 'torchvision', resize: 'centre-crop', cropFraction: 224 / 256 };

/** The zoo's EfficientNet-Lite4 (TensorFlow Lite): NHWC RGB as (x − 127) / 128, centre crop of 87.5 %. */
export const EFFICIENTNET_LITE: Recipe = {
  name: 'efficientnet-lite', valueScale: 1, mean: [127, 127, 127], std: [128, 128, 128], channelOrder: 'RGB',
  resize: 'centre-crop', cropFraction: 0.875, layout: 'NHWC',
};

export const RECIPES: Record<string, Recipe> = Object.fromEntries(
  [CAFFE_BGR, IMAGENET_RGB, TORCHVISION, EFFICIENTNET_LITE].map((r) => [r.name, r]),
);

/** A named recipe, or a GradcamError listing the names. */
export function namedRecipe(name: string, where: string): Recipe {
  const r = Object.hasOwn(RECIPES, name) ? RECIPES[name] : undefined;
  if (!r) throw new GradcamError(`${where}: unknown recipe '${name}'; the recipes are ${Object.keys(RECIPES).join(', ')}`);
  return r;
}

/**
 * The recipe for a model when nothing states one: Caffe-converted models (the zoo's input is named
 * 'data_0', and it carries LRN) get Caffe BGR; anything else torchvision's ImageNet values, stretched.
 */
export function guessRecipe(inputName: string, opTypes: string[]): Recipe {
  return guessWithReason(inputName, opTypes).recipe;
}

function guessWithReason(inputName: string, opTypes: string[]): { recipe: Recipe; why: string } {
  if (inputName === 'data_0') return { recipe: CAFFE_BGR, why: "the input is named 'data_0', as in the Model Zoo's Caffe conversions" };
  if (opTypes.includes('LRN')) return { recipe: CAFFE_BGR, why: 'the model has LRN, as Caffe models do' };
  return { recipe: IMAGENET_RGB, why: "no recipe stated by the manifest, the model's metadata or the user; torchvision's ImageNet values assumed" };
}

/** Where a recipe came from. */
export type RecipeSource = 'user' | 'manifest' | 'metadata' | 'guess';

export interface RecipeChoice {
  recipe: Recipe;
  source: RecipeSource;
  /** Why, in words: "--recipe torchvision", "the manifest's entry resnet50-v1-7", "guessed: ...". */
  why: string;
}

/** What the user may set (CLI options, the API's load options); each replaces the chosen recipe's field. */
export interface RecipeOverrides {
  recipe?: string;
  mean?: [number, number, number];
  std?: [number, number, number];
  size?: [number, number];
  layout?: Layout;
}

/**
 * The metadata_props keys read for a recipe (all optional): 'recipe' (a name of RECIPES, the base),
 * 'mean' and 'std' (three numbers, comma-separated, R, G, B, after the value scale), 'value_scale'
 * (a number, or 1/255), 'channel_order' (RGB or BGR), 'layout' (NCHW or NHWC), 'size' (N or HxW),
 * 'resize' (stretch or centre-crop), 'crop_fraction' (in (0, 1]). Labels: see src/gradcam/labels.ts.
 */
export const METADATA_KEYS = ['recipe', 'mean', 'std', 'value_scale', 'channel_order', 'layout', 'size', 'resize', 'crop_fraction'] as const;

/** Three finite numbers 'a,b,c'; std entries must be > 0. */
export function parseTriple(text: string, what: string, positive = false): [number, number, number] {
  const parts = text.split(',').map((s) => s.trim());
  const values = parts.map(Number);
  if (parts.length !== 3 || parts.some((p) => p === '') || values.some((v) => !Number.isFinite(v)) || (positive && values.some((v) => v <= 0))) {
    throw new GradcamError(`${what} takes three ${positive ? 'numbers > 0' : 'numbers'} separated by commas (R,G,B), got '${text}'`);
  }
  return values as [number, number, number];
}

/** 'N' (square) or 'HxW', each an integer from 1 to 8192. */
export function parseSize(text: string, what: string): [number, number] {
  const m = /^(\d+)(?:[x×](\d+))?$/i.exec(text.trim());
  const hw = m ? [Number(m[1]), Number(m[2] ?? m[1])] : [];
  if (!m || hw.some((v) => !Number.isSafeInteger(v) || v < 1 || v > 8192)) throw new GradcamError(`${what} takes N or HxW (integers from 1 to 8192), got '${text}'`);
  return hw as [number, number];
}

export function parseLayout(text: string, what: string): Layout {
  const l = text.trim().toUpperCase();
  if (l !== 'NCHW' && l !== 'NHWC') throw new GradcamError(`${what} takes nchw or nhwc, got '${text}'`);
  return l;
}

/** A recipe from metadata_props, or undefined when the model states none of METADATA_KEYS. */
function fromMetadata(meta: Record<string, string>): { recipe: Recipe; keys: string[] } | undefined {
  const keys = METADATA_KEYS.filter((k) => Object.hasOwn(meta, k));
  if (keys.length === 0) return undefined;
  const where = (k: string) => `the model's metadata_props '${k}'`;
  const r: Recipe = { ...(meta.recipe !== undefined ? namedRecipe(meta.recipe, where('recipe')) : IMAGENET_RGB), name: 'metadata' };
  if (meta.recipe !== undefined) r.name = meta.recipe;
  if (meta.mean !== undefined) r.mean = parseTriple(meta.mean, where('mean'));
  if (meta.std !== undefined) r.std = parseTriple(meta.std, where('std'), true);
  if (meta.value_scale !== undefined) {
    const v = meta.value_scale.trim() === '1/255' ? 1 / 255 : Number(meta.value_scale);
    if (!(Number.isFinite(v) && v > 0)) throw new GradcamError(`${where('value_scale')} takes a number > 0 or 1/255, got '${meta.value_scale}'`);
    r.valueScale = v;
  }
  if (meta.channel_order !== undefined) {
    const c = meta.channel_order.trim().toUpperCase();
    if (c !== 'RGB' && c !== 'BGR') throw new GradcamError(`${where('channel_order')} takes RGB or BGR, got '${meta.channel_order}'`);
    r.channelOrder = c;
  }
  if (meta.layout !== undefined) r.layout = parseLayout(meta.layout, where('layout'));
  if (meta.size !== undefined) r.size = parseSize(meta.size, where('size'));
  if (meta.resize !== undefined) {
    const p = meta.resize.trim().replace('center', 'centre');
    if (p !== 'stretch' && p !== 'centre-crop') throw new GradcamError(`${where('resize')} takes stretch or centre-crop, got '${meta.resize}'`);
    r.resize = p;
  }
  if (meta.crop_fraction !== undefined) {
    const f = Number(meta.crop_fraction);
    if (!(f > 0 && f <= 1)) throw new GradcamError(`${where('crop_fraction')} takes a number in (0, 1], got '${meta.crop_fraction}'`);
    r.cropFraction = f;
  }
  if (r.resize === 'centre-crop' && r.cropFraction === undefined) r.cropFraction = 0.875;
  return { recipe: r, keys };
}

/**
 * The recipe for a model and why: the user's --recipe, else the manifest's, else the model's
 * metadata_props, else a guess; then the user's --mean, --std, --size, --layout on top (the source
 * is then 'user', and the reason names what the rest came from).
 */
export function chooseRecipe(from: {
  user?: RecipeOverrides;
  manifest?: { model: string; recipe: string; note?: string };
  metadata?: Record<string, string>;
  inputName: string;
  opTypes: string[];
}): RecipeChoice {
  const { user = {} } = from;
  let choice: RecipeChoice;
  const meta = from.metadata ? fromMetadata(from.metadata) : undefined;
  if (user.recipe !== undefined) {
    choice = { recipe: namedRecipe(user.recipe, '--recipe'), source: 'user', why: `--recipe ${user.recipe}` };
  } else if (from.manifest) {
    const note = from.manifest.note ? ` (${from.manifest.note})` : '';
    choice = { recipe: namedRecipe(from.manifest.recipe, `the manifest's entry '${from.manifest.model}'`), source: 'manifest', why: `the manifest's entry ${from.manifest.model}${note}` };
  } else if (meta) {
    choice = { recipe: meta.recipe, source: 'metadata', why: `the model's metadata_props (${meta.keys.join(', ')})` };
  } else {
    const g = guessWithReason(from.inputName, from.opTypes);
    choice = { recipe: g.recipe, source: 'guess', why: g.why };
  }
  const set = (['mean', 'std', 'size', 'layout'] as const).filter((k) => user[k] !== undefined);
  if (set.length === 0) return choice;
  const recipe: Recipe = { ...choice.recipe, name: `${choice.recipe.name}+user` };
  if (user.mean) recipe.mean = user.mean;
  if (user.std) recipe.std = user.std;
  if (user.size) recipe.size = user.size;
  if (user.layout) recipe.layout = user.layout;
  return { recipe, source: 'user', why: `${set.map((k) => `--${k}`).join(', ')} from the user; the rest from ${choice.why}` };
}

/** chooseRecipe for a decoded model and its manifest entry, if any (the CLI's model resolution and the page's model card). */
export function chooseModelRecipe(
  model: { metadata?: Record<string, string>; inputs: readonly { name: string }[]; nodes: readonly { opType: string }[] },
  entry: { name: string; recipe: string; recipeNote?: string } | undefined,
  user?: RecipeOverrides,
): RecipeChoice {
  return chooseRecipe({
    user,
    manifest: entry ? { model: entry.name, recipe: entry.recipe, note: entry.recipeNote } : undefined,
    metadata: model.metadata,
    inputName: model.inputs[0]?.name ?? '',
    opTypes: [...new Set(model.nodes.map((n) => n.opType))],
  });
}

/** One line: "torchvision (RGB, 0–1, mean …, std …, resize shorter side then centre crop 87.5 %, NCHW)". */
export function describeRecipe(r: Recipe, layout?: Layout): string {
  const range = r.valueScale === 1 ? '0–255' : r.valueScale === 1 / 255 ? '0–1' : `× ${r.valueScale}`;
  const crop = r.resize === 'centre-crop' ? `shorter side resized, centre crop ${+((r.cropFraction ?? 0.875) * 100).toFixed(1)} %` : 'stretched';
  return `${r.name} (${r.channelOrder}, ${range}, mean ${r.mean.join('/')}, std ${r.std.join('/')}, ${crop}, ${layout ?? r.layout ?? 'layout from the input shape'})`;
}

/**
 * The input's layout: the recipe's when it states one, else NHWC when the last axis has 3 channels
 * and axis 1 does not, else NCHW. `shape` entries that are not numbers (symbolic) count as unknown.
 */
export function inputLayout(shape: readonly (number | string | null)[], stated?: Layout): Layout {
  if (stated) return stated;
  return shape.length === 4 && shape[3] === 3 && shape[1] !== 3 ? 'NHWC' : 'NCHW';
}

/** [channels, height, width] of one image of `shape` (rank 4) in `layout`. */
export function chwOf(shape: readonly number[], layout: Layout): [number, number, number] {
  return layout === 'NHWC' ? [shape[3], shape[1], shape[2]] : [shape[1], shape[2], shape[3]];
}

/**
 * One image of `shape` (rank 4, `layout`) as C planes of H × W (CHW): a copy, or `data` itself when
 * it is NCHW already. inLayout is its inverse.
 */
export function toPlanes(data: Float32Array, shape: readonly number[], layout: Layout): Float32Array {
  if (layout === 'NCHW') return data;
  const [c, h, w] = chwOf(shape, layout);
  const hw = h * w;
  const out = new Float32Array(c * hw);
  for (let i = 0; i < hw; i++) for (let ch = 0; ch < c; ch++) out[ch * hw + i] = data[i * c + ch];
  return out;
}

/** C planes of H × W (CHW) as one image of `shape` in `layout`: toPlanes's inverse. */
export function inLayout(planes: Float32Array, shape: readonly number[], layout: Layout): Float32Array {
  if (layout === 'NCHW') return planes;
  const [c, h, w] = chwOf(shape, layout);
  const hw = h * w;
  const out = new Float32Array(c * hw);
  for (let i = 0; i < hw; i++) for (let ch = 0; ch < c; ch++) out[i * c + ch] = planes[ch * hw + i];
  return out;
}

/**
 * The source rectangle a picture of `width` × `height` is resampled from, for an input of `outW` ×
 * `outH`: the whole picture when stretched; for a centre crop, the picture is scaled by s so that its
 * shorter side is min(outW, outH) / cropFraction, and the centre outW × outH of that is cut (the offset
 * rounded to whole scaled pixels, as torchvision's CenterCrop does); returned in picture pixels.
 */
export function sourceRect(r: Recipe, width: number, height: number, outW: number, outH: number): { x: number; y: number; w: number; h: number } {
  if (r.resize !== 'centre-crop') return { x: 0, y: 0, w: width, h: height };
  const shorter = Math.min(outW, outH) / (r.cropFraction ?? 0.875);
  const s = shorter / Math.min(width, height); // scaled pixels per picture pixel
  const scaledW = width < height ? shorter : Math.floor(width * s);
  const scaledH = width < height ? Math.floor(height * s) : shorter;
  // A picture too small (or too narrow) for the crop takes it all along that axis.
  const cw = Math.min(outW, scaledW), ch = Math.min(outH, scaledH);
  const left = Math.round((scaledW - cw) / 2), top = Math.round((scaledH - ch) / 2);
  return { x: left / s, y: top / s, w: cw / s, h: ch / s };
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
