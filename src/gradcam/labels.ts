/**
 * Class names. Where they come from (the first that applies): the user's (`--labels FILE`, the
 * API's `labels`), the manifest's label set, the model's metadata_props 'labels' (a JSON list of
 * strings, or one name per line), ImageNet's 1000 for a model with 1000 classes, else "class k".
 */
import text from '../../weights/labels/imagenet-classes.txt';
import { GradcamError } from '../errors.ts';

export const IMAGENET_LABELS: readonly string[] = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);

/** The known-answer demonstration model's classes: 0 red, 1 green, 2 blue, the rest unused. */
export const KNOWN_ANSWER_LABELS: readonly string[] = ['red', 'green', 'blue', ...Array.from({ length: 997 }, (_, i) => `unused ${i + 3}`)];

/** A label set by manifest name ('imagenet', 'known-answer'). */
export function labelSet(name: string | undefined): readonly string[] | undefined {
  if (name === 'imagenet') return IMAGENET_LABELS;
  if (name === 'known-answer') return KNOWN_ANSWER_LABELS;
  return undefined;
}

/** The metadata_props key read for labels. */
export const LABELS_KEY = 'labels';

/**
 * A labels file's text: one name per line (surrounding white space and a final newline dropped;
 * Windows line ends read too). An empty line inside the list is an error, not an unnamed class.
 */
export function parseLabels(text: string, source: string): string[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/).map((l) => l.trim());
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) throw new GradcamError(`${source}: no class names (expected one name per line)`);
  const blank = lines.indexOf('');
  if (blank >= 0) throw new GradcamError(`${source}: line ${blank + 1} is empty; expected one class name per line (line k + 1 names class k)`);
  return lines;
}

/** The labels in a model's metadata_props 'labels' (a JSON list of strings, or one name per line), or undefined. */
export function labelsFromMetadata(metadata: Record<string, string> | undefined): string[] | undefined {
  if (!metadata || !Object.hasOwn(metadata, LABELS_KEY)) return undefined;
  const value = metadata[LABELS_KEY];
  const source = `the model's metadata_props '${LABELS_KEY}'`;
  if (value.trim().startsWith('[')) {
    let list: unknown;
    try {
      list = JSON.parse(value);
    } catch {
      throw new GradcamError(`${source}: starts with '[' but is not a JSON list`);
    }
    if (!Array.isArray(list) || list.length === 0 || !list.every((x) => typeof x === 'string')) throw new GradcamError(`${source}: expected a JSON list of strings`);
    return list;
  }
  return parseLabels(value, source);
}

/** Class names and where they came from, in words ('--labels names.txt', "the manifest's label set 'imagenet'", …). */
export interface LabelChoice {
  labels?: readonly string[];
  /** Undefined when none was stated (then ImageNet's for 1000 classes, else 'class k': describeLabelSource). */
  from?: string;
}

/**
 * The class names of a model, the first that applies: the user's (a labels file, already parsed;
 * `user.from` says which), the manifest's label set, the model's metadata_props 'labels'; else none
 * stated. Used by the CLI's model resolution and by the page.
 */
export function chooseLabels(from: { user?: { labels: readonly string[]; from: string }; manifestSet?: string; metadata?: Record<string, string> }): LabelChoice {
  if (from.user) return { labels: from.user.labels, from: from.user.from };
  const set = labelSet(from.manifestSet);
  if (set) return { labels: set, from: `the manifest's label set '${from.manifestSet}'` };
  const meta = labelsFromMetadata(from.metadata);
  return meta ? { labels: meta, from: `the model's metadata_props '${LABELS_KEY}'` } : {};
}

/** Where a model's class names come from, in words, once its class count is known. */
export function describeLabelSource(from: string | undefined, classes: number): string {
  if (from) return from;
  return classes === IMAGENET_LABELS.length ? "ImageNet's 1000 (the default for 1000 classes)" : `none stated: 'class 0' … 'class ${classes - 1}'`;
}

/** Refuses labels whose count is not the model's class count (a shifted list would name every class wrongly). */
export function checkLabelCount(labels: readonly string[], classes: number, source: string): void {
  if (labels.length !== classes) {
    throw new GradcamError(`${source}: ${labels.length} class names, but the model has ${classes} classes`, `Give one name per class, in the order of the model's outputs (line k + 1 names class k).`);
  }
}

/** The label of class `c`: from `labels` when given, else ImageNet names for a 1000-class model, else "class c". */
export function labelOf(c: number, classes: number, labels?: readonly string[]): string {
  if (labels && c < labels.length) return labels[c];
  return classes === IMAGENET_LABELS.length ? IMAGENET_LABELS[c] : `class ${c}`;
}
