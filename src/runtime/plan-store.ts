/**
 * Where tuned plans (src/runtime/tune.ts) are kept between loads: one record per adapter, model,
 * input shape and engine version, under the SHA-256 of that key. The CLI keeps them as JSON files in
 * its cache (src/node/plan-files.ts), the page in IndexedDB (IndexedDbPlanStore), a process without
 * either in memory (MemoryPlanStore).
 */
import type { Plan } from '../kernels/variants.ts';
import type { Direction } from '../kernels/variants.ts';

/** What a tuned plan is for: a plan is reused only where every field is equal. */
export interface PlanKey {
  adapter: { vendor: string; architecture: string; device: string; description: string };
  /** SHA-256 of the model's content (tune.ts modelDigest). */
  model: string;
  /** The input shape tuned at, its batch size first: a plan is per batch size (tune.ts). */
  input: number[];
  /** package.json's version and the SHA-256 of every declared kernel's WGSL (src/kernels/index.ts ALL_KERNELS). */
  engine: { version: string; shaders: string };
}

/** One measurement: a variant on one distinct layer shape, in one direction. */
export interface TuneTiming {
  /** The layers of that shape. */
  layers: string[];
  /** The shape in words (describeConv and the input size). */
  shape: string;
  direction: Direction;
  variant: string;
  /** Milliseconds per run: the least of the samples, each the mean of its repetitions (cut: the warm-up run alone). */
  ms: number;
  /** Set when the warm-up run was already CUT_OFF times the best so far: not sampled further. */
  cut?: boolean;
}

export const TUNED_PLAN_FORMAT = 'gradcam-webgpu tuned plan 1';

/** A stored tuned plan: the plan, what it is for, and the timings it was chosen by. */
export interface TunedPlan {
  format: typeof TUNED_PLAN_FORMAT;
  key: PlanKey;
  /** ISO time of the tuning. */
  date: string;
  /** 'timestamps' (GPU timestamp queries) or 'wall' (repeated dispatches timed to onSubmittedWorkDone). */
  method: 'timestamps' | 'wall';
  plan: Plan;
  timings: TuneTiming[];
}

export interface PlanStore {
  /** The plan stored under `id`, or undefined (none, or unreadable: the caller tunes again). */
  get(id: string): Promise<TunedPlan | undefined>;
  put(id: string, plan: TunedPlan): Promise<void>;
  /** Where `id` is kept, for messages (a file path, 'IndexedDB gradcam-webgpu/plans', 'memory'). */
  where(id: string): string;
}

/** True when `v` reads as a TunedPlan for `key` (a stored record from another version or key is not reused). */
export function isTunedPlanFor(v: unknown, key: PlanKey): v is TunedPlan {
  const t = v as TunedPlan | undefined;
  return !!t && t.format === TUNED_PLAN_FORMAT && typeof t.plan === 'object' && t.plan !== null && JSON.stringify(t.key) === JSON.stringify(key);
}

/** Plans in this process's memory only. */
export class MemoryPlanStore implements PlanStore {
  private plans = new Map<string, TunedPlan>();
  async get(id: string) {
    return this.plans.get(id);
  }
  async put(id: string, plan: TunedPlan) {
    this.plans.set(id, plan);
  }
  where() {
    return 'memory';
  }
}

/** The page's store: IndexedDB database 'gradcam-webgpu', object store 'plans', keyed by id. */
export class IndexedDbPlanStore implements PlanStore {
  constructor(private readonly database = 'gradcam-webgpu', private readonly store = 'plans') {}

  private open(): Promise<IDBDatabase> {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open(this.database, 1);
      req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(this.store)) req.result.createObjectStore(this.store);
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }

  private async request<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    const db = await this.open();
    try {
      return await new Promise<T>((resolve, reject) => {
        const req = f(db.transaction(this.store, mode).objectStore(this.store));
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
    } finally {
      db.close();
    }
  }

  async get(id: string): Promise<TunedPlan | undefined> {
    try {
      return (await this.request('readonly', (s) => s.get(id))) as TunedPlan | undefined;
    } catch {
      return undefined; // no IndexedDB here (a private window may refuse it): as if none were stored
    }
  }

  async put(id: string, plan: TunedPlan): Promise<void> {
    await this.request('readwrite', (s) => s.put(plan, id));
  }

  where(id: string): string {
    return `IndexedDB ${this.database}/${this.store} ${id.slice(0, 16)}`;
  }
}
