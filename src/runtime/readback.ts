/**
 * The one read-back at the end of a run, as a plan of named regions. Each module adds what it reads
 * back under its own names (`plan.add('logits', regions)`, `plan.add('map:<layer>', …)`) and
 * decodes it by name from the result (`r.f32('logits')`, `r.u32('classes')`). The regions are
 * copied, in the same command buffer as the work, into one staging buffer (made on the first
 * encode, reused by every run), which is then mapped once.
 *
 * A name added twice, a region added after the first encode, a name read that the plan does not
 * hold, and a region read back but never decoded (`done()`) are InternalErrors: engine bugs.
 */
import { GradcamError, InternalError } from '../errors.ts';
import { formatBytes } from '../gpu/dispatch.ts';
import { createBuffer, destroyBuffer } from '../gpu/buffers.ts';

export interface Region {
  buffer: GPUBuffer;
  /** Byte offset and length in `buffer` (multiples of 4). */
  offset: number;
  bytes: number;
}

/** A named entry: its regions lie one after another in the staging buffer, from `start`. */
interface Entry {
  regions: readonly Region[];
  start: number;
  bytes: number;
}

export class ReadbackPlan {
  private readonly entries = new Map<string, Entry>();
  private size = 0;
  private staging?: GPUBuffer;

  constructor(private readonly device: GPUDevice) {}

  /** Adds the regions read back under `name` (their bytes decode as one array, in this order). */
  add(name: string, regions: Region | readonly Region[]): this {
    if (this.staging) throw new InternalError(`read-back region '${name}' added after the plan was encoded`);
    if (this.entries.has(name)) throw new InternalError(`read-back region '${name}' added twice`);
    const list: readonly Region[] = Array.isArray(regions) ? regions : [regions as Region];
    let bytes = 0;
    for (const r of list) {
      if (r.offset % 4 !== 0 || r.bytes % 4 !== 0) throw new InternalError(`read-back region '${name}': offset ${r.offset} and ${r.bytes} bytes must be multiples of 4`);
      bytes += r.bytes;
    }
    // Callers fit what they read back to the limits (fitDisplay, checkProgramFits); this is the backstop.
    const size = this.size + bytes;
    if (size > this.device.limits.maxBufferSize) {
      throw new GradcamError(`reading back ${formatBytes(size)} exceeds this GPU's maxBufferSize (${formatBytes(this.device.limits.maxBufferSize)})`,
        'Ask for fewer classes or layers at once, or a smaller picture.');
    }
    this.entries.set(name, { regions: list, start: this.size, bytes });
    this.size = size;
    return this;
  }

  /** The bytes read back by the regions added so far. */
  get bytes(): number {
    return this.size;
  }

  /** Copies every region into the staging buffer (made on the first call). */
  encode(encoder: GPUCommandEncoder): void {
    this.staging ??= createBuffer(this.device, { label: 'readback', size: Math.max(4, this.size), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    for (const e of this.entries.values()) {
      let at = e.start;
      for (const r of e.regions) {
        encoder.copyBufferToBuffer(r.buffer, r.offset, this.staging, at, r.bytes);
        at += r.bytes;
      }
    }
  }

  /** After submission: maps the staging buffer and returns a copy of every named region. */
  async read(): Promise<ReadbackResult> {
    if (!this.staging) throw new InternalError('a read-back was read before it was encoded');
    await this.staging.mapAsync(GPUMapMode.READ);
    const all = this.staging.getMappedRange();
    const data = new Map<string, ArrayBuffer>();
    for (const [name, e] of this.entries) data.set(name, all.slice(e.start, e.start + e.bytes));
    this.staging.unmap();
    return new ReadbackResult(data);
  }

  destroy(): void {
    destroyBuffer(this.staging);
  }
}

/** The regions of one read-back, by name. */
export class ReadbackResult {
  private readonly unread: Set<string>;

  constructor(private readonly data: ReadonlyMap<string, ArrayBuffer>) {
    this.unread = new Set(data.keys());
  }

  has(name: string): boolean {
    return this.data.has(name);
  }

  /** The bytes of `name` (its regions one after another). */
  bytes(name: string): ArrayBuffer {
    const d = this.data.get(name);
    if (!d) throw new InternalError(`read-back region '${name}' was not read back (read back: ${[...this.data.keys()].join(', ') || 'nothing'})`);
    this.unread.delete(name);
    return d;
  }

  f32(name: string): Float32Array {
    return new Float32Array(this.bytes(name));
  }

  u32(name: string): Uint32Array {
    return new Uint32Array(this.bytes(name));
  }

  u64(name: string): BigUint64Array {
    return new BigUint64Array(this.bytes(name));
  }

  /** RGBA8 pixels. */
  rgba(name: string): Uint8ClampedArray {
    return new Uint8ClampedArray(this.bytes(name));
  }

  /** Throws when a region was read back but never decoded (read for nothing, or decoded under another name). */
  done(): void {
    if (this.unread.size) throw new InternalError(`read-back regions never decoded: ${[...this.unread].join(', ')}`);
  }
}

/** The regions of a tensor view for `items` items (one per item when the view is not contiguous). */
export function viewRegions(buffer: GPUBuffer, offset: number, stride: number, perItem: number, items: number): Region[] {
  if (stride === perItem && offset === 0) return [{ buffer, offset: 0, bytes: perItem * items * 4 }];
  return Array.from({ length: items }, (_, i) => ({ buffer, offset: (i * stride + offset) * 4, bytes: perItem * 4 }));
}
