/**
 * The options that say how a model is read, for every command that loads one: its preprocessing
 * recipe (--recipe, --mean, --std, --size, --layout) and its class names (--labels). They override
 * the manifest, the model's metadata_props and the guess (src/image/recipes.ts chooseRecipe).
 */
import { GradcamError } from '../errors.ts';
import { parseLayout, parseSize, parseTriple, RECIPES, type RecipeOverrides } from '../image/recipes.ts';
import { type Args, type Command, type Options, stringOption, UsageError } from './command.ts';

export const MODEL_OPTIONS: Options = {
  recipe: { type: 'string' }, mean: { type: 'string' }, std: { type: 'string' }, size: { type: 'string' }, layout: { type: 'string' }, labels: { type: 'string' },
};

export const MODEL_VALUES: Record<string, string> = {
  recipe: `a recipe name (${Object.keys(RECIPES).join(', ')})`, mean: 'three numbers R,G,B', std: 'three numbers R,G,B', size: 'N or HxW', layout: 'nchw or nhwc', labels: 'a file name',
};

/** The help lines of MODEL_OPTIONS (indented to the help's option column, 2 + `width`). */
export function modelOptionsHelp(width: number): string {
  const pad = ' '.repeat(width + 2);
  const line = (opt: string, text: string) => `  ${opt.padEnd(width)}${text}`;
  return [
    line('--recipe NAME', `how a picture becomes the input: ${Object.keys(RECIPES).join(', ')}`),
    `${pad}(default: the manifest's, else the model's metadata_props, else a guess; info says which and why)`,
    line('--mean R,G,B', "the recipe's per-channel mean, after its value scale"),
    `${pad}(0–1 for imagenet-rgb and torchvision, 0–255 for caffe-bgr and efficientnet-lite)`,
    line('--std R,G,B', "the recipe's per-channel standard deviation (same scale)"),
    line('--size N|HxW', 'the input size for a model whose height and width are open (default 224)'),
    line('--layout L', "nchw or nhwc: the input's layout (default: read from its shape)"),
    line('--labels FILE', 'class names, one per line (line k + 1 names class k; as many as the model has classes)'),
  ].join('\n');
}

export interface ModelChoice {
  recipe: RecipeOverrides;
  labelsFile?: string;
}

/** The recipe overrides and labels file of the command line; a malformed value is a usage error. */
export function modelChoice(args: Args, command?: Command): ModelChoice {
  const usage = (f: () => void) => {
    try {
      f();
    } catch (err) {
      if (err instanceof GradcamError) throw new UsageError(err.message, command);
      throw err;
    }
  };
  const recipe: RecipeOverrides = {};
  const name = stringOption(args, 'recipe'), mean = stringOption(args, 'mean'), std = stringOption(args, 'std');
  const size = stringOption(args, 'size'), layout = stringOption(args, 'layout'), labelsFile = stringOption(args, 'labels');
  usage(() => {
    if (name !== undefined && !Object.hasOwn(RECIPES, name)) throw new GradcamError(`--recipe takes ${MODEL_VALUES.recipe}, got '${name}'`);
    if (name !== undefined) recipe.recipe = name;
    if (mean !== undefined) recipe.mean = parseTriple(mean, '--mean');
    if (std !== undefined) recipe.std = parseTriple(std, '--std', true);
    if (size !== undefined) recipe.size = parseSize(size, '--size');
    if (layout !== undefined) recipe.layout = parseLayout(layout, '--layout');
    if (labelsFile === '') throw new GradcamError('--labels takes a file name, got an empty one');
  });
  return { recipe, labelsFile };
}
