/**
 * What every kernel module builds on: a pipeline cache, the few buffer helpers, and the recorded
 * `Dispatch` (pipeline + bind group + workgroup count, made once at compile time and replayed on
 * every run). Kernels are declared in src/gpu/kernel.ts and record their dispatches through
 * `Kernel.dispatch`, which binds by name and ends in `KernelEnv.dispatch` (the device-limit checks).
 */
import { GradcamError } from '../errors.ts';
import { createBuffer, destroyBuffer } from './buffers.ts';

/** A view of a storage buffer: item i's values start at element i·stride + offset. */
export interface BufferView {
  buffer: GPUBuffer;
  offset: number;
  stride: number;
}

export interface Dispatch {
  /** The kernel and its entry point, `<kernel>[.<use>].<entry>` ('maxpool.backward', 'conv.winograd.gemm'; Kernel.dispatch). */
  kernel: string;
  /** The graph op (or stage) it belongs to, for profiles. */
  label: string;
  /** ONNX op type(s) behind it, for the per-op summary ('Conv+Relu'). */
  opType: string;
  /** Human-readable shapes, for the profile. */
  shapes: string;
  /** Floating-point operations (a multiply-add counts 2). */
  flops: number;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: [number, number, number];
}

export type DispatchMeta = Pick<Dispatch, 'kernel' | 'label' | 'opType' | 'shapes' | 'flops'>;

/**
 * A grid [x, y, z] of planes along z (pool.wgsl), fitted to the per-dimension limit: when z exceeds
 * it, z is folded into y (dispatched y = y · f, z = ⌈z / f⌉) and the kernel, compiled with FOLD,
 * rebuilds the plane from the workgroup id: plane group = (wid.y / y) · num_workgroups.z + wid.z.
 * Refuses (naming the limit) what cannot be folded.
 */
export function foldPlanes(grid: [number, number, number], limit: number, what: string): { grid: [number, number, number]; folded: boolean } {
  const [x, y, z] = grid;
  if (x <= limit && y <= limit && z <= limit) return { grid, folded: false };
  const f = Math.ceil(z / limit);
  if (x > limit || y * f > limit) {
    throw new GradcamError(`${what} needs ${x} × ${y} × ${z} workgroups, more than this GPU's maxComputeWorkgroupsPerDimension (${limit}) allows even folded`,
      'Ask for fewer classes at once, or a smaller input.');
  }
  return { grid: [x, y * f, Math.ceil(z / f)], folded: true };
}

/** The limits a request must fit (the device's, as granted). */
export interface DeviceLimits {
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

export function deviceLimits(device: GPUDevice): DeviceLimits {
  const l = device.limits;
  return {
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
  };
}

/** Bytes as GiB, MiB or KiB for messages. */
export function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  return bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : `${(bytes / 2 ** 10).toFixed(1)} KiB`;
}

/** Throws when a storage buffer of `bytes` would exceed what the device binds or allocates. */
export function checkStorageSize(limits: DeviceLimits, bytes: number, what: string, hint = 'Ask for fewer classes or fewer layers at once, or a smaller input.'): void {
  const [limit, name] = limits.maxStorageBufferBindingSize <= limits.maxBufferSize
    ? [limits.maxStorageBufferBindingSize, 'maxStorageBufferBindingSize'] : [limits.maxBufferSize, 'maxBufferSize'];
  if (bytes > limit) throw new GradcamError(`${what} needs ${formatBytes(bytes)}, more than this GPU's ${name} (${formatBytes(limit)})`, hint);
}

/**
 * Which kernel variants to build: 'cpu' for a software adapter (SwiftShader: register blocking, no
 * workgroup memory), 'gpu' otherwise (workgroup-memory tiles). GRADCAM_KERNELS=cpu|gpu overrides.
 */
export type KernelVariant = 'cpu' | 'gpu';

/**
 * Each conv layer's kernel variant by name and direction, as resolved for one engine
 * (src/kernels/variants.ts resolvePlan: a plan, `variant`, else the fixed rules of the family).
 */
export type VariantChoices = ReadonlyMap<string, { readonly forward: string; readonly backward: string }>;

export function kernelVariant(isSoftware: boolean): KernelVariant {
  const forced = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.GRADCAM_KERNELS;
  if (forced === 'cpu' || forced === 'gpu') return forced;
  return isSoftware ? 'cpu' : 'gpu';
}

/**
 * Shader modules and compute pipelines by code, entry point and override constants, each compiled
 * once per device: every engine on a device shares its cache (`PipelineCache.of`), the engines of
 * one network (one per batch size: pipelines do not depend on the batch, which is in the uniforms
 * and the workgroup counts) as well as networks loaded one after another. A pipeline is never
 * destroyed (WebGPU has no destroy for it); the cache holds one per kernel variant used, a bounded
 * set, and goes with the device. Making them again for every load would cost the compilation each
 * time, and memory that Dawn on SwiftShader does not give back (test/memory-soak.test.ts).
 */
export class PipelineCache {
  private modules = new Map<string, GPUShaderModule>();
  private pipelines = new Map<string, Promise<GPUComputePipeline>>();
  private static byDevice = new WeakMap<GPUDevice, PipelineCache>();

  constructor(readonly device: GPUDevice) {}

  /** The device's cache. */
  static of(device: GPUDevice): PipelineCache {
    let cache = PipelineCache.byDevice.get(device);
    if (!cache) {
      cache = new PipelineCache(device);
      PipelineCache.byDevice.set(device, cache);
    }
    return cache;
  }

  /** A compute pipeline for `entry` of `code` specialised by override constants; cached, compiled once. */
  get(code: string, entry: string, constants: Record<string, number | boolean> = {}): Promise<GPUComputePipeline> {
    const consts: Record<string, number> = {};
    for (const [k, v] of Object.entries(constants)) consts[k] = typeof v === 'boolean' ? (v ? 1 : 0) : v;
    const key = `${entry}|${JSON.stringify(Object.entries(consts).sort())}|${code}`;
    let p = this.pipelines.get(key);
    if (!p) {
      let module = this.modules.get(code);
      if (!module) {
        module = this.device.createShaderModule({ code });
        this.modules.set(code, module);
      }
      p = this.device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: entry, constants: consts } });
      this.pipelines.set(key, p);
    }
    return p;
  }

  get size(): number {
    return this.pipelines.size;
  }
}

export class KernelEnv {
  private uniforms = new Map<string, GPUBuffer>();
  /** A small buffer bound where a kernel's read-only binding (mask, scale) is unused by this dispatch. */
  readonly dummy: GPUBuffer;
  /** The same for an unused writable binding (one buffer may not be bound read-only and writable at once). */
  readonly dummyWritable: GPUBuffer;
  /** Every buffer this environment created, destroyed with it. */
  private owned: GPUBuffer[] = [];
  /** The read-write buffers made by `scratch` (activations, gradients, kernel scratch): the largest, and all together, in bytes. */
  readonly scratchBytes = { largest: 0, total: 0 };

  /**
   * `lower` replaces some of the device's limits by smaller ones (tests use it to reach the folding
   * and refusal paths with small shapes).
   */
  constructor(readonly device: GPUDevice, readonly variant: KernelVariant = 'cpu', private readonly lower: Partial<DeviceLimits> = {},
    /** The pipeline cache: the device's by default. */
    readonly pipelines: PipelineCache = PipelineCache.of(device),
    /** Conv layers' variants by name (layers not in it: the fixed rules of `variant`). */
    readonly choices: VariantChoices = new Map()) {
    this.dummy = this.storage(new Float32Array(4));
    this.dummyWritable = this.scratch(4, 'unused');
  }

  /** A compute pipeline for `entry` of `code` specialised by override constants; cached, compiled once. */
  pipeline(code: string, entry: string, constants: Record<string, number | boolean> = {}): Promise<GPUComputePipeline> {
    return this.pipelines.get(code, entry, constants);
  }

  get pipelineCount(): number {
    return this.pipelines.size;
  }

  /**
   * A uniform buffer holding `data` (a kernel's packed Params, Kernel.pack). Uniform buffers are
   * written once and never changed, so equal contents share one buffer.
   */
  uniformBytes(data: ArrayBuffer): GPUBuffer {
    const key = new Uint32Array(data).join(',');
    let buf = this.uniforms.get(key);
    if (!buf) {
      buf = createBuffer(this.device, { size: data.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      this.device.queue.writeBuffer(buf, 0, data);
      this.owned.push(buf);
      this.uniforms.set(key, buf);
    }
    return buf;
  }

  get limits(): DeviceLimits {
    const d = deviceLimits(this.device);
    const m = (k: keyof DeviceLimits) => Math.min(d[k], this.lower[k] ?? Infinity);
    return { maxComputeWorkgroupsPerDimension: m('maxComputeWorkgroupsPerDimension'), maxStorageBufferBindingSize: m('maxStorageBufferBindingSize'), maxBufferSize: m('maxBufferSize') };
  }

  /** A read-only storage buffer holding `data` (weights, constants). */
  storage(data: Float32Array | Uint32Array): GPUBuffer {
    const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
    checkStorageSize(this.limits, size, 'a constant buffer');
    const buf = createBuffer(this.device, { size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, mappedAtCreation: true });
    const Ctor = data instanceof Float32Array ? Float32Array : Uint32Array;
    new Ctor(buf.getMappedRange()).set(data);
    buf.unmap();
    this.owned.push(buf);
    return buf;
  }

  /** A read-write storage buffer of `floats` float32 values. */
  scratch(floats: number, label?: string): GPUBuffer {
    const size = Math.max(16, Math.ceil((floats * 4) / 16) * 16);
    checkStorageSize(this.limits, size, `the buffer '${label ?? 'scratch'}'`);
    this.scratchBytes.largest = Math.max(this.scratchBytes.largest, size);
    this.scratchBytes.total += size;
    const buf = createBuffer(this.device, {
      label, size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    this.owned.push(buf);
    return buf;
  }

  /**
   * Records a dispatch: `entries` (binding numbers and buffers) make its bind group. Kernels call it
   * through Kernel.dispatch, which binds by name; here the workgroup counts are checked against the
   * device's maxComputeWorkgroupsPerDimension.
   */
  dispatch(pipeline: GPUComputePipeline, entries: GPUBindGroupEntry[], workgroups: [number, number, number], meta: DispatchMeta): Dispatch {
    const limit = this.limits.maxComputeWorkgroupsPerDimension;
    if (workgroups.some((w) => w > limit)) {
      throw new GradcamError(`${meta.label} (${meta.kernel}, ${meta.shapes}) needs ${workgroups.join(' × ')} workgroups, more than this GPU's maxComputeWorkgroupsPerDimension (${limit})`,
        'Ask for fewer classes or fewer layers at once, or a smaller input.');
    }
    const bindGroup = this.device.createBindGroup({ label: meta.label, layout: pipeline.getBindGroupLayout(0), entries });
    return { ...meta, pipeline, bindGroup, workgroups };
  }

  /**
   * An environment sharing this one's device, variant, choices, limits and pipelines, with buffers and
   * uniforms of its own: what it makes is freed by its own destroy (caches of per-size stages).
   */
  child(): KernelEnv {
    return new KernelEnv(this.device, this.variant, this.lower, this.pipelines, this.choices);
  }

  destroy(): void {
    for (const b of this.owned) destroyBuffer(b);
    this.owned = [];
    this.uniforms.clear();
  }
}

/**
 * Runs `fn` (which creates GPU objects or encodes and submits work) inside validation and
 * out-of-memory error scopes, and turns a captured error into an exception: WebGPU otherwise only
 * reports it as an uncaptured error event, and the work silently does not happen.
 */
export async function checked<T>(device: GPUDevice, what: string, fn: () => T | Promise<T>): Promise<T> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: T;
  try {
    result = await fn();
  } finally {
    const validation = await device.popErrorScope();
    const oom = await device.popErrorScope();
    if (oom) throw new GradcamError(`${what}: the GPU ran out of memory (${oom.message})`, 'Use a smaller batch, fewer classes or fewer layers at once.');
    if (validation) throw new Error(`${what}: WebGPU validation failed: ${validation.message}`);
  }
  return result!;
}
