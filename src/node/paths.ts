/**
 * Where the repository is, for Node code that reads the project's own files (labels, sample
 * images, generated models).
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InternalError } from '../errors.ts';

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
    if (parent === dir) throw new InternalError(`no package.json above ${here}`);
    dir = parent;
  }
  root = dir;
  return dir;
}

/**
 * True in a checkout of the repository (a clone, or an unpacked source archive); false when this
 * code runs from an installed package (somewhere under node_modules), whose folder is not ours to write,
 * or from a bundle with no package.json above it.
 */
export function isCheckout(): boolean {
  let repo: string;
  try {
    repo = repositoryRoot();
  } catch {
    return false; // bundled on its own (the GPU kit): no repository around it
  }
  return !repo.split(sep).includes('node_modules') && existsSync(join(repo, 'weights', 'generate'));
}

/**
 * Where downloaded models are kept: weights/cache/ in a checkout of the repository; a per-user cache
 * folder ($XDG_CACHE_HOME/gradcam-webgpu, else ~/.cache/gradcam-webgpu) when installed as a package.
 * GRADCAM_CACHE overrides both.
 */
export function modelCacheDir(): string {
  if (process.env.GRADCAM_CACHE) return process.env.GRADCAM_CACHE;
  if (isCheckout()) return join(repositoryRoot(), 'weights', 'cache');
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'gradcam-webgpu');
}
