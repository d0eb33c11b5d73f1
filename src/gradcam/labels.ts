/** The 1000 ImageNet class names (line N = class N − 1), bundled with the code. */
import text from '../../weights/labels/imagenet-classes.txt';

export const IMAGENET_LABELS: readonly string[] = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);

/** The label of class `c` for a model with `classes` outputs: ImageNet names for 1000 classes. */
export function labelOf(c: number, classes: number): string {
  return classes === IMAGENET_LABELS.length ? IMAGENET_LABELS[c] : `class ${c}`;
}
