/**
 * Where the repository is, for Node code that reads the project's own files (labels, sample
 * images, generated models).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/**
 * The repository root: the nearest folder above this module that holds package.json. Walking up
 * (instead of a fixed '../..') keeps it right when this code is bundled into dist/gradcam.mjs.
 */
export function repositoryRoot(): string {
  if (root) return root;
  const here = fileURLToPath(import.meta.url);
  let dir = dirname(here);
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${here}`);
    dir = parent;
  }
  root = dir;
  return dir;
}
