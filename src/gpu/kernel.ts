/**
 * A kernel's interface, declared once, in TS: its uniforms (names and types, in order), its storage
 * bindings (names, element types and access), its entry points (the bindings each one uses, and its
 * workgroup size when it differs from the kernel's), its override constants (a pipeline may set them)
 * and its plain constants (tile sizes that the body and the TS grid math share).
 *
 * The declaration
 *   - generates the WGSL header that the hand-written body (shaders/*.wgsl) is appended to: the
 *     `override` lines, `const` lines for the constants and the workgroup size (WG_X, WG_Y, WG_Z; an
 *     entry with a size of its own gets <ENTRY>_WG_X, ... e.g. SPLITK_SUM_WG_X), the `Params` struct,
 *     `var<uniform> p: Params` at binding 0, one `var<storage, …>` line per binding from binding 1
 *     on, in declaration order, `linearIndex` (the index of a 1-D launch split over x and y), and the
 *     code of the WGSL libraries it lists (`libraries`: functions that several bodies share, written
 *     once in src/gpu/wgsl-library.ts);
 *   - packs the uniforms by name (a missing or an undeclared name throws);
 *   - binds buffers by name, per entry point (WebGPU's 'auto' layout holds exactly the bindings an
 *     entry point uses: a missing or an extra one throws);
 *   - computes dispatch grids from the declared workgroup size;
 *   - names the dispatch in profiles `<kernel>.<entry>`, or `<kernel>.<use>.<entry>` with the use
 *     a caller gives (conv.winograd.gemm: the conv kernel's gemm entry, serving Winograd).
 * A body never declares these itself. `checkKernel` (test/kernel-declarations.test.ts runs it on every
 * kernel) checks a declaration against its body: every name declared is used, every `p.x`, binding
 * and storage array the body uses is declared, each entry point uses exactly the bindings it lists and
 * writes every read_write one, and its @workgroup_size is the declared one.
 */
import { InternalError } from '../errors.ts';
import type { Dispatch, KernelEnv } from './dispatch.ts';

export type UniformType = 'u32' | 'i32' | 'f32' | 'vec4<f32>';
export type ElementType = 'f32' | 'u32' | 'i32' | 'vec2<f32>' | 'vec4<f32>';

export interface BindingDecl {
  access: 'read' | 'read_write';
  /** The array's element type. */
  type: ElementType;
}

/** A storage binding the kernel only reads. */
export const read = (type: ElementType = 'f32'): BindingDecl => ({ access: 'read', type });
/** A storage binding the kernel writes (read_write). */
export const readWrite = (type: ElementType = 'f32'): BindingDecl => ({ access: 'read_write', type });

export type WorkgroupSize = readonly [number, number, number];

/** An entry point: the bindings it uses, and its workgroup size when it differs from the kernel's. */
export interface EntryDecl<B extends string> {
  bindings: readonly B[];
  workgroupSize?: WorkgroupSize;
}

type Value = number | boolean;

/**
 * WGSL functions that several kernels share (an index layout, a bilinear sample, a softmax over a row),
 * written once and generated into the header of each kernel that lists it. A library reads no uniform:
 * what it needs comes as arguments. One made for a binding (`rowProbability('scores')`) reads that
 * binding, which the kernel declares; the override constants it reads (`overrides`) the kernel declares
 * too (with its other overrides, so that a dispatch sets them by name).
 */
export interface WgslLibrary {
  /** What it is, for the header's comment. */
  name: string;
  code: string;
  /** The override constants its code reads. */
  overrides?: readonly string[];
  /** Libraries whose functions its code calls (the kernel lists them too). */
  needs?: readonly WgslLibrary[];
}

export interface KernelDecl<U extends string, B extends string, E extends string, O extends string, C extends string> {
  /** The kernel's name: profiles name its dispatches `<name>.<entry>`. */
  name: string;
  /** The hand-written WGSL body: helpers and entry points, no header. */
  body: string;
  /** The uniform struct's fields, in order. */
  uniforms: Record<U, UniformType>;
  bindings: Record<B, BindingDecl>;
  /**
   * The workgroup size (x, y, z) of every entry point without its own; the body writes
   * @workgroup_size(WG_X, WG_Y, WG_Z). WG_X, WG_Y and WG_Z listed among `overrides` are overrides
   * (a pipeline sets them; their defaults must be these), else constants.
   */
  workgroupSize: WorkgroupSize;
  entries: Record<E, readonly NoInfer<B>[] | EntryDecl<NoInfer<B>>>;
  /** Override constants and their defaults (u32 or bool); a pipeline may set them. */
  overrides?: Record<O, Value>;
  /** Constants (u32 or bool) that the body and the TS side share: tile sizes, a kernel's mode. */
  constants?: Record<C, Value>;
  /** Shared WGSL functions the body calls (src/gpu/wgsl-library.ts), generated into the header. */
  libraries?: readonly WgslLibrary[];
}

/** A uniform's value: a number, or 4 numbers for a vec4<f32>. */
export type UniformValue = number | readonly number[];

/** What a dispatch is, for profiles and messages. */
export interface DispatchInfo {
  /** The graph op (or stage) it belongs to. */
  label: string;
  opType: string;
  shapes: string;
  flops: number;
  /** What this use of the kernel is, between the kernel's name and the entry's in profiles. */
  use?: string;
}

export interface DispatchCall<U extends string, B extends string, O extends string> extends DispatchInfo {
  overrides?: Partial<Record<O, Value>>;
  /** By name: every uniform the entry point uses (more declared ones may be given). */
  uniforms: Partial<Record<U, UniformValue>>;
  /** By name: exactly the bindings the entry point uses. */
  buffers: Partial<Record<B, GPUBuffer>>;
  workgroups: [number, number, number];
}

const SIZE: Record<UniformType, number> = { u32: 4, i32: 4, f32: 4, 'vec4<f32>': 16 };
const WG = ['WG_X', 'WG_Y', 'WG_Z'] as const;

/** The constant names of an entry point's workgroup size: WG_X… or <ENTRY>_WG_X… for an entry with its own. */
export function workgroupNames(entry: string, own: boolean): [string, string, string] {
  if (!own) return [...WG];
  const prefix = entry.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
  return [`${prefix}_WG_X`, `${prefix}_WG_Y`, `${prefix}_WG_Z`];
}

export class Kernel<U extends string, B extends string, E extends string, O extends string, C extends string> {
  /** The whole shader: generated header + body. */
  readonly code: string;
  readonly header: string;
  readonly name: string;
  /** The declared constants, for the TS side's grid math. */
  readonly constants: Readonly<Record<C, number>>;
  /** Byte offset of each uniform in the struct, and the struct's size (a multiple of 16). */
  private readonly offsets: Map<U, number>;
  private readonly uniformBytes: number;
  /** Per entry point, the uniforms its code reads (from the body: what a dispatch must give). */
  private readonly uses: Map<E, Set<string>>;

  constructor(readonly decl: KernelDecl<U, B, E, O, C>) {
    this.name = decl.name;
    const overrides: Record<string, Value> = decl.overrides ?? {};
    decl.workgroupSize.forEach((v, i) => {
      if (Object.hasOwn(overrides, WG[i]) && overrides[WG[i]] !== v) {
        throw new InternalError(`kernel '${decl.name}': override ${WG[i]} defaults to ${overrides[WG[i]]}, the workgroup size says ${v}`);
      }
    });
    this.constants = Object.fromEntries(Object.entries<Value>(decl.constants ?? {}).map(([k, v]) => [k, Number(v)])) as Record<C, number>;
    let offset = 0;
    this.offsets = new Map();
    for (const [n, t] of Object.entries(decl.uniforms) as [U, UniformType][]) {
      offset = Math.ceil(offset / SIZE[t]) * SIZE[t];
      this.offsets.set(n, offset);
      offset += SIZE[t];
    }
    this.uniformBytes = Math.max(16, Math.ceil(offset / 16) * 16);
    for (const lib of decl.libraries ?? []) {
      if (/(?<![.\w])p\s*\./.test(stripComments(lib.code))) throw new InternalError(`kernel '${decl.name}': library '${lib.name}' reads a uniform (a library takes its values as arguments)`);
      const missing = (lib.overrides ?? []).filter((o) => !Object.hasOwn(overrides, o));
      if (missing.length) throw new InternalError(`kernel '${decl.name}': library '${lib.name}' reads overrides ${missing.join(', ')}, which the kernel does not declare`);
      const absent = (lib.needs ?? []).filter((n) => !decl.libraries!.includes(n));
      if (absent.length) throw new InternalError(`kernel '${decl.name}': library '${lib.name}' calls ${absent.map((n) => `'${n.name}'`).join(', ')}, which the kernel does not list`);
    }
    this.header = generateHeader(decl);
    this.code = `${this.header}\n${decl.body}`;
    const scan = scanWgsl(withLibraries(decl));
    this.uses = new Map(this.entryNames.map((e) => [e, new Set(scan.reachable(e).flatMap((f) => [...f.uniforms]))]));
  }

  get entryNames(): E[] {
    return Object.keys(this.decl.entries) as E[];
  }

  /** The bindings an entry point uses (its bind group holds exactly these). */
  bindingsOf(entry: E): readonly B[] {
    const e = this.decl.entries[entry] as readonly B[] | EntryDecl<B>;
    return Array.isArray(e) ? e : (e as EntryDecl<B>).bindings;
  }

  workgroupSize(entry: E): WorkgroupSize {
    const e = this.decl.entries[entry] as readonly B[] | EntryDecl<B>;
    return (!Array.isArray(e) && (e as EntryDecl<B>).workgroupSize) || this.decl.workgroupSize;
  }

  /** The uniforms `entry` reads (a dispatch must give each of them), in declaration order. */
  uniformsOf(entry: E): U[] {
    const used = this.uses.get(entry)!;
    return [...this.offsets.keys()].filter((u) => used.has(u));
  }

  /**
   * The uniform struct's bytes, packed by name. Throws for a name that is not declared, and for a
   * missing one: with `entry`, one that the entry point reads; without, any declared one.
   */
  pack(values: Partial<Record<U, UniformValue>>, entry?: E): ArrayBuffer {
    const where = entry ? `${this.name}.${entry}` : this.name;
    const extra = Object.keys(values).filter((k) => !this.offsets.has(k as U));
    const needed: string[] = entry ? this.uniformsOf(entry) : [...this.offsets.keys()];
    const missing = needed.filter((k) => !Object.hasOwn(values, k));
    if (extra.length || missing.length) {
      throw new InternalError(`kernel '${where}': uniforms ${[missing.length ? `missing ${missing.join(', ')}` : '', extra.length ? `not declared ${extra.join(', ')}` : ''].filter(Boolean).join('; ')}`);
    }
    const buf = new ArrayBuffer(this.uniformBytes);
    const dv = new DataView(buf);
    for (const [n, v] of Object.entries(values) as [U, UniformValue][]) {
      const t = this.decl.uniforms[n];
      const at = this.offsets.get(n)!;
      const bad = (what: string) => new InternalError(`kernel '${where}': uniform ${n} = ${String(v)} is not ${what}`);
      if (t === 'vec4<f32>') {
        if (!Array.isArray(v) || v.length !== 4 || v.some((x) => typeof x !== 'number')) throw bad('4 numbers');
        v.forEach((x: number, i: number) => dv.setFloat32(at + 4 * i, x, true));
      } else if (typeof v !== 'number') {
        throw bad(`a ${t}`);
      } else if (t === 'u32') {
        if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw bad('a u32');
        dv.setUint32(at, v, true);
      } else if (t === 'i32') {
        if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw bad('an i32');
        dv.setInt32(at, v, true);
      } else {
        dv.setFloat32(at, v, true);
      }
    }
    return buf;
  }

  /** The compute pipeline of `entry`, specialised by override constants (cached by the environment). */
  pipeline(env: KernelEnv, entry: E, overrides: Partial<Record<O, Value>> = {}): Promise<GPUComputePipeline> {
    if (!Object.hasOwn(this.decl.entries, entry)) throw new InternalError(`kernel '${this.name}': no entry point ${entry}`);
    const declared: Record<string, Value> = this.decl.overrides ?? {};
    const unknown = Object.keys(overrides).filter((k) => !Object.hasOwn(declared, k));
    if (unknown.length) throw new InternalError(`kernel '${this.name}': overrides not declared ${unknown.join(', ')}`);
    return env.pipeline(this.code, entry, overrides as Record<string, Value>);
  }

  /**
   * Records a dispatch of `entry`: the pipeline for its overrides, its uniforms packed by name, its
   * buffers bound by name (exactly the bindings the entry point lists), checked against the device's
   * limits by KernelEnv.dispatch. Profiles name it `<kernel>[.<use>].<entry>`.
   */
  async dispatch(env: KernelEnv, entry: E, call: DispatchCall<U, B, O>): Promise<Dispatch> {
    const pipeline = await this.pipeline(env, entry, call.overrides);
    const used = this.bindingsOf(entry);
    const given = Object.keys(call.buffers) as B[];
    const missing = used.filter((b) => !call.buffers[b]);
    const extra = given.filter((b) => !used.includes(b));
    if (missing.length || extra.length) {
      throw new InternalError(`kernel '${this.name}.${entry}': bindings ${[missing.length ? `missing ${missing.join(', ')}` : '', extra.length ? `not used by the entry point ${extra.join(', ')}` : ''].filter(Boolean).join('; ')}`);
    }
    const names = Object.keys(this.decl.bindings) as B[];
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: env.uniformBytes(this.pack(call.uniforms, entry)) } }];
    for (const b of used) entries.push({ binding: names.indexOf(b) + 1, resource: { buffer: call.buffers[b]! } });
    const kernel = [this.name, call.use, entry].filter(Boolean).join('.');
    return env.dispatch(pipeline, entries, call.workgroups, { kernel, label: call.label, opType: call.opType, shapes: call.shapes, flops: call.flops });
  }

  /** Workgroups covering `threads` invocations per dimension with the entry's workgroup size. */
  groups(entry: E, threads: readonly [number, number, number]): [number, number, number] {
    const wg = this.workgroupSize(entry);
    return [0, 1, 2].map((i) => Math.max(1, Math.ceil(threads[i] / wg[i]))) as [number, number, number];
  }

  /**
   * Workgroups for `threads` invocations laid out 1-D along x, split over x and y when x would pass
   * the per-dimension limit (the body rebuilds the index with `linearIndex`; a y beyond the limit
   * is refused by KernelEnv.dispatch, naming it).
   */
  grid1d(entry: E, threads: number, limit: number): [number, number, number] {
    const [x, y, z] = this.workgroupSize(entry);
    if (y !== 1 || z !== 1) throw new InternalError(`kernel '${this.name}.${entry}': grid1d needs a 1-D workgroup`);
    const groups = Math.max(1, Math.ceil(threads / x));
    if (groups <= limit) return [groups, 1, 1];
    return [limit, Math.ceil(groups / limit), 1];
  }
}

/** The uniforms `<name>Offset` and `<name>Stride` of a view (item i at i · stride + offset). */
export function view<N extends string>(name: N, v: { offset: number; stride: number }): Record<`${N}Offset` | `${N}Stride`, number> {
  return { [`${name}Offset`]: v.offset, [`${name}Stride`]: v.stride } as Record<`${N}Offset` | `${N}Stride`, number>;
}

/** Declares a kernel; the header is generated once here. */
export function declareKernel<U extends string, B extends string, E extends string, O extends string = never, C extends string = never>(
  decl: KernelDecl<U, B, E, O, C>,
): Kernel<U, B, E, O, C> {
  return new Kernel(decl);
}

/** Any declared kernel (for registries and checks). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyKernel = Kernel<any, any, any, any, any>;

const wgsl = (v: Value): string => (typeof v === 'boolean' ? `bool = ${v}` : `u32 = ${v}u`);

function generateHeader(decl: KernelDecl<string, string, string, string, string>): string {
  const lines = [`// ---- generated from the declaration of kernel '${decl.name}' (src/gpu/kernel.ts) ----`];
  const overrides: Record<string, Value> = decl.overrides ?? {};
  for (const [name, v] of Object.entries(overrides)) {
    if (typeof v === 'number' && !(Number.isInteger(v) && v >= 0)) throw new InternalError(`kernel '${decl.name}': override ${name} = ${v} is not a u32`);
    lines.push(`override ${name}: ${wgsl(v)};`);
  }
  for (const [name, v] of Object.entries<Value>(decl.constants ?? {})) {
    if (typeof v === 'number' && !(Number.isInteger(v) && v >= 0)) throw new InternalError(`kernel '${decl.name}': constant ${name} = ${v} is not a u32`);
    lines.push(`const ${name}: ${wgsl(v)};`);
  }
  decl.workgroupSize.forEach((v, i) => {
    if (!Object.hasOwn(overrides, WG[i])) lines.push(`const ${WG[i]}: u32 = ${v}u;`);
  });
  for (const [entry, e] of Object.entries<readonly string[] | EntryDecl<string>>(decl.entries)) {
    if (Array.isArray(e) || !(e as EntryDecl<string>).workgroupSize) continue;
    const names = workgroupNames(entry, true);
    (e as EntryDecl<string>).workgroupSize!.forEach((v, i) => lines.push(`const ${names[i]}: u32 = ${v}u;`));
  }
  lines.push('struct Params {', ...Object.entries(decl.uniforms).map(([n, t]) => `  ${n}: ${t},`), '}');
  lines.push('@group(0) @binding(0) var<uniform> p: Params;');
  Object.entries(decl.bindings).forEach(([name, b], i) => {
    lines.push(`@group(0) @binding(${i + 1}) var<storage, ${b.access}> ${name}: array<${b.type}>;`);
  });
  for (const lib of decl.libraries ?? []) lines.push(`// library: ${lib.name} (src/gpu/wgsl-library.ts)`, lib.code.trim());
  lines.push('// The invocation index of a 1-D launch split over x and y (Kernel.grid1d).');
  lines.push('fn linearIndex(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {', '  return gid.x + gid.y * nwg.x * WG_X;', '}');
  lines.push('// ---- end of the generated header ----');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Reading a body: its module-scope declarations and functions, what each function uses.

export interface WgslFunction {
  name: string;
  /** The attributes before `fn` (@compute, @workgroup_size(...)), whitespace removed. */
  attributes: string;
  params: Set<string>;
  /** Names declared inside (let, var, const). */
  locals: Set<string>;
  /** Every identifier in the function (not after a '.'). */
  idents: Set<string>;
  /** Uniform fields read: `p.<name>`. */
  uniforms: Set<string>;
  /** Identifiers indexed with `[` (storage or local arrays), and those assigned through an index. */
  indexed: Set<string>;
  written: Set<string>;
  /** Functions of the body it calls. */
  calls: Set<string>;
}

export interface WgslScan {
  functions: Map<string, WgslFunction>;
  /** Module-scope declarations outside functions: kind ('const', 'override', 'var<workgroup>', 'struct', ...) and name. */
  declarations: { kind: string; name: string }[];
  /** Identifiers at module scope outside functions (array sizes, const_assert). */
  moduleIdents: Set<string>;
  /** The functions `entry` reaches through calls, itself included. */
  reachable(entry: string): WgslFunction[];
}

/** The body with the code of its libraries in front (what its entry points reach). */
const withLibraries = (decl: KernelDecl<string, string, string, string, string>) => [...(decl.libraries ?? []).map((l) => l.code), decl.body].join('\n');

const stripComments = (s: string) => s.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, '');

/** The index of the bracket that closes the one at `open`. */
function closing(s: string, open: number): number {
  const [o, c] = s[open] === '{' ? ['{', '}'] : s[open] === '(' ? ['(', ')'] : ['[', ']'];
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === o) depth++;
    else if (s[i] === c && --depth === 0) return i;
  }
  return s.length;
}

const IDENT = /(?<![.\w])([A-Za-z_]\w*)/g;

export function scanWgsl(body: string): WgslScan {
  const src = stripComments(body);
  const functions = new Map<string, WgslFunction>();
  let outside = '';
  let last = 0;
  const fnRe = /((?:@\w+(?:\s*\([^)]*\))?\s*)*)\bfn\s+(\w+)\s*\(/g;
  for (let m = fnRe.exec(src); m; m = fnRe.exec(src)) {
    if (m.index < last) continue;
    const paramsOpen = m.index + m[0].length - 1;
    const paramsClose = closing(src, paramsOpen);
    const open = src.indexOf('{', paramsClose);
    const close = closing(src, open);
    outside += src.slice(last, m.index);
    last = close + 1;
    fnRe.lastIndex = last;
    const text = src.slice(open + 1, close);
    const params = new Set([...src.slice(paramsOpen + 1, paramsClose).matchAll(/(\w+)\s*:/g)].map((x) => x[1]));
    const locals = new Set([...text.matchAll(/\b(?:let|var|const)(?:<[^>]*>)?\s+(\w+)/g)].map((x) => x[1]));
    const idents = new Set([...text.matchAll(IDENT)].map((x) => x[1]));
    const uniforms = new Set([...text.matchAll(/(?<![.\w])p\s*\.\s*(\w+)/g)].map((x) => x[1]));
    const indexed = new Set<string>();
    const written = new Set<string>();
    for (const x of text.matchAll(/(?<![.\w])([A-Za-z_]\w*)\s*\[/g)) {
      indexed.add(x[1]);
      const end = closing(text, x.index + x[0].length - 1);
      // An assignment through the index: `name[...] =` (not `==`), `+=`, `-=`, ... (also `name[i][j] =`).
      let rest = text.slice(end + 1);
      while (/^\s*\[/.test(rest)) {
        const at = rest.indexOf('[');
        rest = rest.slice(closing(rest, at) + 1);
      }
      if (/^\s*([-+*/%&|^]|<<|>>)?=(?!=)/.test(rest)) written.add(x[1]);
    }
    functions.set(m[2], {
      name: m[2], attributes: m[1].replace(/\s+/g, ''), params, locals, idents, uniforms, indexed, written, calls: new Set(),
    });
  }
  outside += src.slice(last);
  for (const f of functions.values()) for (const i of f.idents) if (functions.has(i) && i !== f.name) f.calls.add(i);
  const declarations = [...outside.matchAll(/\b(const|override|var(?:\s*<[^>]*>)?|alias|struct|let)\s+(\w+)/g)]
    .map((x) => ({ kind: x[1].replace(/\s+/g, ''), name: x[2] }));
  const moduleIdents = new Set([...outside.matchAll(IDENT)].map((x) => x[1]));
  return {
    functions, declarations, moduleIdents,
    reachable(entry: string): WgslFunction[] {
      const seen = new Set<string>();
      const walk = (n: string) => {
        if (seen.has(n) || !functions.has(n)) return;
        seen.add(n);
        for (const c of functions.get(n)!.calls) walk(c);
      };
      walk(entry);
      return [...seen].map((n) => functions.get(n)!);
    },
  };
}

/**
 * Where a kernel's declaration and its body disagree (empty when they agree). `otherEntries`: entry
 * points of the same body that another declaration lists (one body, several kernels).
 */
export function checkKernel(kernel: AnyKernel, otherEntries: ReadonlySet<string> = new Set()): string[] {
  const decl = kernel.decl as KernelDecl<string, string, string, string, string>;
  const problems: string[] = [];
  const say = (s: string) => problems.push(`kernel '${decl.name}': ${s}`);
  const scan = scanWgsl(decl.body);
  // The body with its libraries' functions: what entry points reach, which bindings and overrides they use.
  const all = scanWgsl(withLibraries(decl));
  const library = scanWgsl((decl.libraries ?? []).map((l) => l.code).join('\n'));
  const raw = stripComments(decl.body);
  if (/\bstruct\s+Params\b/.test(raw)) say('the body declares struct Params (the declaration generates it)');
  if (/@binding|@group/.test(raw)) say('the body declares a binding (@group/@binding: the declaration generates them)');
  if (/var\s*<\s*(uniform|storage)/.test(raw)) say('the body declares a uniform or storage variable');
  for (const d of scan.declarations.filter((x) => x.kind === 'override')) say(`the body declares override ${d.name} (declare it in TS)`);

  const uniforms = Object.keys(decl.uniforms);
  const bindings = Object.keys(decl.bindings);
  const overrides = Object.keys(decl.overrides ?? {});
  const constants = Object.keys(decl.constants ?? {});
  const entries = Object.keys(decl.entries);
  const wgNames = entries.flatMap((e) => {
    const d = decl.entries[e] as readonly string[] | EntryDecl<string>;
    return !Array.isArray(d) && (d as EntryDecl<string>).workgroupSize ? workgroupNames(e, true) : [];
  });
  const libraryNames = [...library.functions.keys(), ...library.declarations.map((d) => d.name)];
  const generated = ['p', 'Params', 'linearIndex', ...WG, ...wgNames, ...bindings, ...overrides, ...constants, ...libraryNames];
  const fns = [...scan.functions.values()];
  // Nothing the header declares is declared again in the body.
  const counts = new Map<string, number>();
  for (const n of [...scan.declarations.map((d) => d.name), ...fns.map((f) => f.name)]) counts.set(n, (counts.get(n) ?? 0) + 1);
  for (const [n, c] of counts) {
    if (generated.includes(n)) say(`the body declares ${n}, which the declaration generates`);
    else if (c > 1) say(`the body declares ${n} ${c} times`);
  }
  for (const f of fns) {
    for (const n of [...f.params, ...f.locals]) if (generated.includes(n)) say(`${f.name}: the local ${n} shadows the declared ${n}`);
  }

  // Uniforms: every p.<name> is declared, every declared one is read.
  const read = new Set(fns.flatMap((f) => [...f.uniforms]));
  for (const u of read) if (!uniforms.includes(u)) say(`the body reads p.${u}, which is not a declared uniform`);
  for (const u of uniforms) if (!read.has(u)) say(`uniform ${u} is declared but the body never reads p.${u}`);

  // Libraries: each is called (by the body or another library). Overrides and constants: each is used (by the body or a library).
  const libs = decl.libraries ?? [];
  for (const l of libs) {
    const own = scanWgsl(l.code).functions;
    const callers = [...fns, ...libs.filter((o) => o !== l).flatMap((o) => [...scanWgsl(o.code).functions.values()])];
    if (![...own.keys()].some((n) => callers.some((f) => f.idents.has(n)))) say(`library '${l.name}' is listed but neither the body nor another library calls its functions`);
  }
  const used = new Set([...all.moduleIdents, ...[...all.functions.values()].flatMap((f) => [...f.idents])]);
  const attrs = fns.map((f) => f.attributes).join(' ');
  for (const o of overrides) if (!used.has(o) && !attrs.includes(o)) say(`override ${o} is declared but the body never uses it`);
  for (const c of constants) if (!used.has(c) && !attrs.includes(c)) say(`constant ${c} is declared but the body never uses it`);

  // Storage: every indexed name is a binding, a local, a parameter or a module-scope variable of the body.
  const moduleNames = new Set(all.declarations.map((d) => d.name));
  for (const f of all.functions.values()) {
    for (const n of f.indexed) {
      if (!bindings.includes(n) && !f.locals.has(n) && !f.params.has(n) && !moduleNames.has(n)) say(`${f.name} indexes ${n}, which is not a declared binding`);
    }
  }

  // Entry points: each exists with @compute and the declared workgroup size, and uses exactly its bindings.
  const bound = new Set<string>();
  for (const e of entries) {
    const d = decl.entries[e] as readonly string[] | EntryDecl<string>;
    const list = Array.isArray(d) ? d : (d as EntryDecl<string>).bindings;
    const own = !Array.isArray(d) && !!(d as EntryDecl<string>).workgroupSize;
    const f = scan.functions.get(e);
    if (!f) {
      say(`entry point ${e} is declared but the body has no fn ${e}(`);
      continue;
    }
    const size = `@workgroup_size(${workgroupNames(e, own).join(',')})`;
    if (!f.attributes.includes('@compute')) say(`fn ${e} is not @compute`);
    if (!f.attributes.includes(size)) say(`entry point ${e} must have ${size}, has ${f.attributes || 'none'}`);
    const reach = all.reachable(e);
    const uses = new Set(reach.flatMap((g) => [...g.idents].filter((i) => bindings.includes(i) && !g.locals.has(i) && !g.params.has(i))));
    const writes = new Set(reach.flatMap((g) => [...g.written]));
    for (const b of list) {
      bound.add(b);
      if (!bindings.includes(b)) say(`entry point ${e} lists ${b}, which is not a declared binding`);
      else if (!uses.has(b)) say(`entry point ${e} lists binding ${b} but does not use it`);
      else if (decl.bindings[b].access === 'read_write' && !writes.has(b)) say(`entry point ${e} never writes ${b}, declared read_write (declare it read, or another binding for the writer)`);
    }
    for (const b of uses) if (!list.includes(b)) say(`entry point ${e} uses binding ${b} but does not list it`);
    for (const b of writes) if (bindings.includes(b) && decl.bindings[b].access === 'read') say(`entry point ${e} writes ${b}, declared read`);
  }
  for (const b of bindings) if (!bound.has(b)) say(`binding ${b} is declared but no entry point lists it`);
  for (const f of fns) {
    if (f.attributes.includes('@compute') && !entries.includes(f.name) && !otherEntries.has(f.name)) say(`fn ${f.name} is an entry point (@compute) that the declaration does not list`);
  }
  return problems;
}
