/**
 * A kernel's interface, declared once: its uniforms (names and types, in order), its storage
 * bindings (names, element types and access), its workgroup size and its override constants.
 * The declaration
 *   - generates the WGSL header that the hand-written body (shaders/*.wgsl) is appended to: the
 *     `Params` struct (padded to 16 bytes), `var<uniform> p: Params` at binding 0, one
 *     `var<storage, …>` line per binding from binding 1 on, `const WG_X/WG_Y/WG_Z` for the body's
 *     `@workgroup_size(WG_X, WG_Y, WG_Z)`, and the `override` lines;
 *   - packs the uniforms by name (a missing or an extra name throws);
 *   - binds buffers by name, per entry point (each entry point lists the bindings it uses; WebGPU's
 *     'auto' layout holds exactly those);
 *   - computes the dispatch grid from the declared workgroup size.
 * A body never declares these itself; test/kernel-declarations.test.ts checks every declaration
 * against its body (every name declared is used, every `p.x`, binding and override used is declared).
 */
import { InternalError } from '../errors.ts';
import type { Dispatch, DispatchMeta, KernelEnv } from './dispatch.ts';

export type Scalar = 'u32' | 'i32' | 'f32';
export type ElementType = 'f32' | 'u32' | 'i32' | 'vec4<f32>' | 'atomic<u32>';

export interface BindingDecl {
  access: 'read' | 'read_write';
  /** The array's element type; default f32. */
  type?: ElementType;
}

export interface KernelDecl<U extends string, B extends string, E extends string, O extends string> {
  /** The kernel family's name, used in profiles ('lrn', 'pool', ...). */
  name: string;
  /** The hand-written WGSL body: helpers and entry points, no header. */
  body: string;
  uniforms: Record<U, Scalar>;
  bindings: Record<B, BindingDecl>;
  /** Workgroup size (x, y, z); the body's entry points use @workgroup_size(WG_X, WG_Y, WG_Z). */
  workgroupSize: readonly [number, number, number];
  /** Entry points and the bindings each one uses. */
  entries: Record<E, readonly B[]>;
  /** Override constants and their defaults (a pipeline may set them). */
  overrides?: Record<O, number | boolean>;
}

/** What a value of a uniform or override is given as. */
export type UniformValues<U extends string> = Record<U, number>;

export class Kernel<U extends string, B extends string, E extends string, O extends string> {
  /** The whole shader: generated header + body. */
  readonly code: string;
  readonly header: string;
  private readonly uniformNames: U[];
  private readonly uniformTypes: Scalar[];

  constructor(readonly decl: KernelDecl<U, B, E, O>) {
    this.uniformNames = Object.keys(decl.uniforms) as U[];
    this.uniformTypes = this.uniformNames.map((n) => decl.uniforms[n]);
    this.header = generateHeader(decl);
    this.code = `${this.header}\n${decl.body}`;
  }

  get name(): string {
    return this.decl.name;
  }

  get workgroupSize(): readonly [number, number, number] {
    return this.decl.workgroupSize;
  }

  /** Invocations per workgroup. */
  get invocations(): number {
    const [x, y, z] = this.decl.workgroupSize;
    return x * y * z;
  }

  /** The uniform struct's bytes, packed by name in declaration order (padded to 16 bytes). */
  pack(values: UniformValues<U>): ArrayBuffer {
    const given = Object.keys(values);
    const extra = given.filter((k) => !(this.uniformNames as string[]).includes(k));
    const missing = this.uniformNames.filter((k) => !Object.hasOwn(values, k));
    if (extra.length || missing.length) {
      throw new InternalError(`kernel '${this.name}': uniforms ${missing.length ? `missing ${missing.join(', ')}` : ''}${missing.length && extra.length ? '; ' : ''}${extra.length ? `not declared ${extra.join(', ')}` : ''}`);
    }
    const words = Math.max(4, Math.ceil(this.uniformNames.length / 4) * 4);
    const buf = new ArrayBuffer(words * 4);
    const dv = new DataView(buf);
    this.uniformNames.forEach((n, i) => {
      const v = values[n];
      if (typeof v !== 'number' || Number.isNaN(v) && this.uniformTypes[i] !== 'f32') throw new InternalError(`kernel '${this.name}': uniform ${n} = ${v}`);
      const t = this.uniformTypes[i];
      if (t === 'u32') {
        if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new InternalError(`kernel '${this.name}': uniform ${n} = ${v} is not a u32`);
        dv.setUint32(i * 4, v, true);
      } else if (t === 'i32') {
        if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new InternalError(`kernel '${this.name}': uniform ${n} = ${v} is not an i32`);
        dv.setInt32(i * 4, v, true);
      } else {
        dv.setFloat32(i * 4, v, true);
      }
    });
    return buf;
  }

  /** The compute pipeline of `entry`, specialised by override constants (cached by the environment). */
  pipeline(env: KernelEnv, entry: E, overrides: Partial<Record<O, number | boolean>> = {}): Promise<GPUComputePipeline> {
    const declared = this.decl.overrides ?? ({} as Record<O, number | boolean>);
    for (const k of Object.keys(overrides)) {
      if (!Object.hasOwn(declared, k)) throw new InternalError(`kernel '${this.name}': override ${k} is not declared`);
    }
    return env.pipeline(this.code, entry, overrides as Record<string, number | boolean>);
  }

  /**
   * Records a dispatch of `entry`: its uniforms packed by name, its buffers bound by name (exactly the
   * bindings the entry point declares), `workgroups` from {@link grid} or given.
   */
  dispatch(env: KernelEnv, pipeline: GPUComputePipeline, entry: E, uniforms: UniformValues<U>, buffers: Partial<Record<B, GPUBuffer>>,
    workgroups: [number, number, number], meta: Omit<DispatchMeta, 'kernel'> & { kernel?: string }): Dispatch {
    const used = this.decl.entries[entry];
    const names = Object.keys(buffers) as B[];
    const missing = used.filter((b) => !buffers[b]);
    const extra = names.filter((b) => !used.includes(b));
    if (missing.length || extra.length) {
      throw new InternalError(`kernel '${this.name}.${entry}': bindings ${missing.length ? `missing ${missing.join(', ')}` : ''}${extra.length ? ` not used by the entry ${extra.join(', ')}` : ''}`);
    }
    const names0 = Object.keys(this.decl.bindings) as B[];
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: env.uniformBytes(this.pack(uniforms)) } }];
    for (const b of used) entries.push({ binding: names0.indexOf(b) + 1, resource: { buffer: buffers[b]! } });
    const bindGroup = env.device.createBindGroup({ label: meta.label, layout: pipeline.getBindGroupLayout(0), entries });
    return { kernel: `${this.name}.${entry}`, ...meta, pipeline, bindGroup, workgroups } as Dispatch;
  }

  /**
   * Workgroups for `threads` invocations laid out 1-D along x (split over x and y when x would pass
   * the device's per-dimension limit; the body rebuilds the index with `linearIndex`).
   */
  grid1d(threads: number, maxPerDimension = 65535): [number, number, number] {
    const groups = Math.max(1, Math.ceil(threads / this.invocations));
    if (groups <= maxPerDimension) return [groups, 1, 1];
    const y = Math.ceil(groups / maxPerDimension);
    if (y > maxPerDimension) throw new InternalError(`kernel '${this.name}': ${threads} invocations exceed the device's dispatch limits`);
    return [maxPerDimension, y, 1];
  }
}

/** Declares a kernel; the header is generated once here. */
export function declareKernel<U extends string, B extends string, E extends string, O extends string = never>(
  decl: KernelDecl<U, B, E, O>,
): Kernel<U, B, E, O> {
  return new Kernel(decl);
}

function generateHeader(decl: KernelDecl<string, string, string, string>): string {
  const lines = [`// ---- generated from the declaration of kernel '${decl.name}' (src/gpu/kernel.ts) ----`];
  for (const [name, v] of Object.entries(decl.overrides ?? {})) {
    lines.push(typeof v === 'boolean' ? `override ${name}: bool = ${v};` : `override ${name}: u32 = ${v}u;`);
  }
  // The workgroup size is a constant, or an override when the declaration lists WG_X/WG_Y/WG_Z there.
  decl.workgroupSize.forEach((v, i) => {
    const name = ['WG_X', 'WG_Y', 'WG_Z'][i];
    if (!Object.hasOwn(decl.overrides ?? {}, name)) lines.push(`const ${name}: u32 = ${v}u;`);
  });
  const names = Object.keys(decl.uniforms);
  const fields = names.map((n) => `  ${n}: ${decl.uniforms[n]},`);
  for (let i = names.length; i < Math.max(4, Math.ceil(names.length / 4) * 4); i++) fields.push(`  _pad${i - names.length}: u32,`);
  lines.push('struct Params {', ...fields, '}');
  lines.push('@group(0) @binding(0) var<uniform> p: Params;');
  Object.entries(decl.bindings).forEach(([name, b], i) => {
    lines.push(`@group(0) @binding(${i + 1}) var<storage, ${b.access}> ${name}: array<${b.type ?? 'f32'}>;`);
  });
  // The linear invocation index of a 1-D launch split over x and y (Kernel.grid1d).
  lines.push('fn linearIndex(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {', '  return gid.x + gid.y * nwg.x * WG_X;', '}');
  lines.push('// ---- end of the generated header ----');
  return lines.join('\n');
}
