/**
 * The one read-back at the end of a run: every region a program reports is copied, in the same
 * command buffer as the work, into one staging buffer made at compile time, which is then mapped once.
 */

import { GradcamError } from '../errors.ts';
import { formatBytes } from '../gpu/dispatch.ts';

export interface Region {
  buffer: GPUBuffer;
  /** Byte offset and length in `buffer` (multiples of 4). */
  offset: number;
  bytes: number;
}

export class Readback {
  private staging: GPUBuffer;
  private places: number[] = [];

  constructor(device: GPUDevice, private readonly regions: Region[]) {
    let size = 0;
    for (const r of regions) {
      this.places.push(size);
      size += Math.ceil(r.bytes / 4) * 4;
    }
    // Callers fit what they read back to the limits (fitDisplay, checkProgramFits); this is the backstop.
    if (size > device.limits.maxBufferSize) {
      throw new GradcamError(`reading back ${formatBytes(size)} exceeds this GPU's maxBufferSize (${formatBytes(device.limits.maxBufferSize)})`,
        'Ask for fewer classes or layers at once, or a smaller picture.');
    }
    this.staging = device.createBuffer({ label: 'readback', size: Math.max(4, size), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  encode(encoder: GPUCommandEncoder): void {
    this.regions.forEach((r, i) => encoder.copyBufferToBuffer(r.buffer, r.offset, this.staging, this.places[i], r.bytes));
  }

  /** After submission: maps the staging buffer and returns a copy of each region. */
  async read(): Promise<ArrayBuffer[]> {
    await this.staging.mapAsync(GPUMapMode.READ);
    const all = this.staging.getMappedRange();
    const out = this.regions.map((r, i) => all.slice(this.places[i], this.places[i] + r.bytes));
    this.staging.unmap();
    return out;
  }

  destroy(): void {
    this.staging.destroy();
  }
}

/** The regions of a tensor view for `items` items (one per item when the view is not contiguous). */
export function viewRegions(buffer: GPUBuffer, offset: number, stride: number, perItem: number, items: number): Region[] {
  if (stride === perItem && offset === 0) return [{ buffer, offset: 0, bytes: perItem * items * 4 }];
  return Array.from({ length: items }, (_, i) => ({ buffer, offset: (i * stride + offset) * 4, bytes: perItem * 4 }));
}
