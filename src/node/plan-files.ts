/**
 * Tuned plans as JSON files (the CLI's and loadNetwork's PlanStore): <cache>/plans/<id>.json, the
 * cache being the model cache (src/node/paths.ts modelCacheDir: weights/cache/ in a checkout,
 * ~/.cache/gradcam-webgpu installed, GRADCAM_CACHE over both). Written atomically; a file that
 * does not read as a plan is ignored (the caller tunes again and replaces it).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PlanStore, TunedPlan } from '../runtime/plan-store.ts';
import { writeFileAtomic } from './files.ts';
import { modelCacheDir } from './paths.ts';

export class FilePlanStore implements PlanStore {
  constructor(readonly dir = join(modelCacheDir(), 'plans')) {}

  where(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  async get(id: string): Promise<TunedPlan | undefined> {
    try {
      return JSON.parse(await readFile(this.where(id), 'utf8')) as TunedPlan;
    } catch {
      return undefined;
    }
  }

  async put(id: string, plan: TunedPlan): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(this.where(id), `${JSON.stringify(plan, null, 1)}\n`);
  }
}
