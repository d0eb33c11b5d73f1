/**
 * Class names for the page, over the model's label choice (src/gradcam/labels.ts chooseLabels: a
 * labels file, the manifest's set, metadata_props, else ImageNet's for 1000 classes or "class k"):
 * what a class is called, and which classes the search box offers (the known-answer demonstration
 * model has 1000 outputs, of which only 0 red, 1 green, 2 blue mean something).
 */
import { KNOWN_ANSWER_LABELS, labelOf } from '../gradcam/labels.ts';

export interface LabelSet {
  /** A key that changes when the names change (the class picker is rebuilt then). */
  name: string;
  count: number;
  /** The names, for Network.load's `labels` option; undefined = the engine's default. */
  list: readonly string[] | undefined;
  of(c: number): string;
  /** Classes 0 … meaningful − 1 mean something (the search box offers them; the others are hidden from the top 5). */
  meaningful: number;
}

/** `from` says where the names came from (the label choice's words); undefined = the default names. */
export function labelSet(list: readonly string[] | undefined, from: string | undefined, count: number): LabelSet {
  const meaningful = list === KNOWN_ANSWER_LABELS ? Math.min(3, count) : count;
  return { name: from ?? 'default', count, list, of: (c) => labelOf(c, count, list), meaningful };
}
