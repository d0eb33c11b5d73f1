/**
 * The project's own data files, found from the repository root (so they are found from the
 * sources and from the bundled dist/gradcam.mjs alike). The class names are also bundled into the
 * code (src/gradcam/labels.ts imports the text); the sample pictures are not.
 */
import { join } from 'node:path';
import { repositoryRoot } from '../node/paths.ts';

/** weights/labels/imagenet-classes.txt: line N is the name of class N−1. */
export function imagenetLabelsPath(): string {
  return join(repositoryRoot(), 'weights', 'labels', 'imagenet-classes.txt');
}

/** A sample picture by file name (weights/samples/README.md says where they come from). */
export function samplePath(name: 'chelsea.png' | 'coffee.png'): string {
  return join(repositoryRoot(), 'weights', 'samples', name);
}
