/** The 1000 ImageNet class names (line N = class N − 1), bundled with the code. */
import text from '../../weights/labels/imagenet-classes.txt';

export const IMAGENET_LABELS: readonly string[] = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);

/** The known-answer demonstration model's classes: 0 red, 1 green, 2 blue, the rest unused. */
export const KNOWN_ANSWER_LABELS: readonly string[] = ['red', 'green', 'blue', ...Array.from({ length: 997 }, (_, i) => `unused ${i + 3}`)];

/** A label set by manifest name ('imagenet', 'known-answer'). */
export function labelSet(name: string | undefined): readonly string[] | undefined {
  if (name === 'imagenet') return IMAGENET_LABELS;
  if (name === 'known-answer') return KNOWN_ANSWER_LABELS;
  return undefined;
}

/** The label of class `c`: from `labels` when given, else ImageNet names for a 1000-class model. */
export function labelOf(c: number, classes: number, labels?: readonly string[]): string {
  if (labels && c < labels.length) return labels[c];
  return classes === IMAGENET_LABELS.length ? IMAGENET_LABELS[c] : `class ${c}`;
}
