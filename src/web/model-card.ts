/**
 * The model card's details: the loaded model's input (name, shape in the file, shape and layout as
 * run), its recipe with where it came from (the user, the manifest, metadata_props or a guess) and
 * why, and where its class names come from; and the form that changes them, field by field as the
 * CLI's --recipe, --mean, --std, --size, --layout and --labels do (an empty field keeps the model's
 * own). The choices themselves are the library's (chooseRecipe, chooseLabels: src/web/models.ts).
 */
import { GradcamError } from '../errors.ts';
import { describeLabelSource } from '../gradcam/labels.ts';
import { describeRecipe, type Layout, parseLayout, parseSize, parseTriple, RECIPES, type RecipeOverrides } from '../image/recipes.ts';
import type { LoadedModel, ModelSettings } from './models.ts';
import { h, ui } from './ui.ts';

/** What the page ran the model with (for the hook and the facts). */
export interface ModelFacts {
  input: { name: string; fileShape: (number | string | null)[]; shape: number[]; layout: Layout; openSize: boolean };
  recipe: { name: string; source: string; why: string; description: string };
  labels: string;
  classes: number;
}

const WHERE: Record<string, string> = { user: 'set here', manifest: 'the manifest', metadata: "the model's metadata_props", guess: 'a guess' };

/** The CLI's option names in a reason ("--mean, --size from the user; …") as the page's field names. */
const inWords = (why: string) => why.replace(/--(\w+)/g, '$1').replace('from the user', 'set here');

export function modelFacts(loaded: LoadedModel, run: { shape: number[]; layout: Layout; classes: number }): ModelFacts {
  const input = loaded.model.inputs[0];
  const fileShape = input?.shape ?? [];
  const spatial = run.layout === 'NHWC' ? [1, 2] : [2, 3];
  const { recipe, source, why } = loaded.recipeChoice;
  return {
    input: { name: input?.name ?? '?', fileShape, shape: run.shape, layout: run.layout, openSize: spatial.some((i) => typeof fileShape[i] !== 'number' || fileShape[i] === 0) },
    recipe: { name: recipe.name, source, why: inWords(why), description: describeRecipe(recipe, run.layout) },
    labels: describeLabelSource(loaded.labels.from, run.classes),
    classes: run.classes,
  };
}

const dims = (shape: readonly (number | string | null)[]) => `[${shape.map((d) => d ?? '?').join(', ')}]`;

/** Shows the facts, and sets the form to the model's current settings. */
export function renderModelCard(loaded: LoadedModel, facts: ModelFacts): void {
  const { input, recipe } = facts;
  const row = (k: string, ...v: (string | Node)[]) => [h('dt', {}, k), h('dd', {}, ...v)];
  ui.modelFacts.replaceChildren(
    ...row('input', h('code', {}, input.name), ` ${dims(input.fileShape)} in the file`, h('span', { className: 'why' }, `run as ${dims(input.shape)}, ${input.layout}`)),
    ...row('recipe', h('span', { id: 'recipe-description' }, recipe.description),
      h('span', { id: 'recipe-source', className: 'why' }, `from ${WHERE[recipe.source] ?? recipe.source}: ${recipe.why}`)),
    ...row('labels', h('span', { id: 'labels-source' }, `${facts.labels}`), h('span', { className: 'why' }, `${facts.classes} classes`)),
  );
  ui.modelDetails.hidden = false;
  const own = loaded.settings.recipe ?? {};
  ui.recipePreset.replaceChildren(
    h('option', { value: '' }, loaded.settings.recipe ? "the model's own" : `the model's own (${recipe.name})`),
    ...Object.keys(RECIPES).map((name) => h('option', { value: name }, name)));
  ui.recipePreset.value = own.recipe ?? '';
  const r = loaded.recipeChoice.recipe;
  const set = (el: HTMLInputElement, value: string | undefined, shown: string) => {
    el.value = value ?? '';
    el.placeholder = shown;
  };
  set(ui.recipeMean, own.mean?.join(','), r.mean.join(','));
  set(ui.recipeStd, own.std?.join(','), r.std.join(','));
  set(ui.recipeSize, own.size?.join('x'), input.openSize ? `${input.shape[input.layout === 'NHWC' ? 1 : 2]}x${input.shape[input.layout === 'NHWC' ? 2 : 3]}` : 'fixed by the file');
  ui.recipeSize.disabled = !input.openSize;
  ui.recipeLayout.value = own.layout ?? '';
}

/** The form's recipe fields as overrides; a malformed field is a GradcamError naming it. */
export function readRecipeForm(): RecipeOverrides | undefined {
  const text = (el: HTMLInputElement) => el.value.trim();
  const o: RecipeOverrides = {};
  if (ui.recipePreset.value) o.recipe = ui.recipePreset.value;
  if (text(ui.recipeMean)) o.mean = parseTriple(text(ui.recipeMean), 'mean');
  if (text(ui.recipeStd)) o.std = parseTriple(text(ui.recipeStd), 'std', true);
  if (!ui.recipeSize.disabled && text(ui.recipeSize)) o.size = parseSize(text(ui.recipeSize), 'size');
  if (ui.recipeLayout.value) o.layout = parseLayout(ui.recipeLayout.value, 'layout');
  return Object.keys(o).length ? o : undefined;
}

/** The settings with the form's recipe fields (the labels stay as they are). */
export function settingsFromForm(current: ModelSettings): ModelSettings {
  try {
    return { ...current, recipe: readRecipeForm() };
  } catch (e) {
    throw e instanceof GradcamError ? new GradcamError(`the model card: ${e.message}`, e.hint) : e;
  }
}
