/**
 * Class names for the page, over the shared label sets of src/gradcam/labels.ts (by the manifest's
 * `labels` field): what a class is called, and which classes the search box offers (the known-answer
 * demonstration model has 1000 outputs, of which only 0 red, 1 green, 2 blue mean something).
 */
import { labelOf, labelSet as sharedLabelSet } from '../gradcam/labels.ts';

export interface LabelSet {
  /** The manifest's label-set name, or 'default' (ImageNet names for 1000 classes, else "class N"). */
  name: string;
  count: number;
  /** The names, for Network.load's `labels` option; undefined = the engine's default. */
  list: readonly string[] | undefined;
  of(c: number): string;
  /** Classes 0 … meaningful − 1 mean something (the search box offers them; the others are hidden from the top 5). */
  meaningful: number;
}

export function labelSet(name: string | undefined, count: number): LabelSet {
  const list = sharedLabelSet(name);
  const meaningful = name === 'known-answer' ? Math.min(3, count) : count;
  return { name: list ? name! : 'default', count, list, of: (c) => labelOf(c, count, list), meaningful };
}
