/**
 * Every kernel's interface is declared once, in TS (src/gpu/kernel.ts: uniforms, bindings, entry
 * points, workgroup size, overrides, constants); its WGSL body (shaders/*.wgsl) must agree with it.
 * `checkKernel` reads the body and reports each disagreement: a name used but not declared, declared
 * but not used, an entry point's bindings, its @workgroup_size, a read_write binding it never writes.
 * Here: every declared kernel passes; the checker itself catches broken declarations of a small fake
 * kernel; uniforms pack by name with WGSL's layout and refuse a missing or an extra name; and every
 * entry point of every kernel compiles on the device (zero compilation errors, a pipeline).
 */
import { describe, expect, test } from 'vitest';
import { checkKernel, declareKernel, read, readWrite, scanWgsl, type AnyKernel, type WgslLibrary } from '../src/gpu/kernel.ts';
import { KernelEnv } from '../src/gpu/dispatch.ts';
import { ALL_KERNELS } from '../src/kernels/index.ts';
import { testGpu } from './helpers/gpu.ts';

/** Entry points of each body, over every kernel declared on it (one body may serve several kernels). */
function entriesByBody(kernels: readonly AnyKernel[]): Map<string, Set<string>> {
  const m = new Map<string, Set<string>>();
  for (const k of kernels) {
    const s = m.get(k.decl.body) ?? new Set<string>();
    for (const e of k.entryNames) s.add(e);
    m.set(k.decl.body, s);
  }
  return m;
}

describe('every declared kernel agrees with its WGSL body', () => {
  const byBody = entriesByBody(ALL_KERNELS);
  test('the registry holds every kernel once, by a unique name', () => {
    const names = ALL_KERNELS.map((k) => k.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names.sort()).toEqual(['activation', 'attribution', 'augsmooth', 'avgpool', 'binary', 'conv', 'conv_gather', 'conv_tiled', 'depthwise', 'elementwise', 'gradcam', 'im2col', 'layernorm', 'layout', 'lrn', 'maxpool', 'multipass', 'overlay', 'preprocess', 'reduce', 'softmax', 'winograd']);
  });
  for (const kernel of ALL_KERNELS) {
    test(kernel.name, () => {
      expect(checkKernel(kernel, byBody.get(kernel.decl.body))).toEqual([]);
      // The body opens with its formula (a comment), and keeps no interface of its own.
      expect(kernel.decl.body.trimStart().startsWith('//')).toBe(true);
      expect(kernel.decl.body).not.toMatch(/struct\s+Params|@binding|var<(uniform|storage)/);
      // The generated header declares the uniforms and bindings, in order.
      const uniforms = Object.keys(kernel.decl.uniforms);
      expect(kernel.header).toContain(`struct Params {\n${uniforms.map((u) => `  ${u}: ${kernel.decl.uniforms[u]},`).join('\n')}\n}`);
      Object.keys(kernel.decl.bindings).forEach((b, i) => expect(kernel.header).toMatch(new RegExp(`@binding\\(${i + 1}\\) var<storage, (read|read_write)> ${b}: `)));
    });
  }
});

describe('the checker catches a declaration and a body that disagree', () => {
  const body = `// y = a · s (a fake kernel)
@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= p.count) {
    return;
  }
  var v = a[i] * p.s;
  if (TWICE) {
    v *= f32(K);
  }
  y[i] = v;
}`;
  const good = {
    name: 'fake', body,
    uniforms: { count: 'u32', s: 'f32' },
    bindings: { a: read(), y: readWrite() },
    entries: { scale: ['a', 'y'] },
    workgroupSize: [64, 1, 1],
    overrides: { TWICE: false },
    constants: { K: 2 },
  } as const;
  const problems = (decl: object) => checkKernel(declareKernel(decl as Parameters<typeof declareKernel>[0]));

  test('a declaration that agrees has no problems', () => {
    expect(problems(good)).toEqual([]);
  });

  test('a uniform the body reads but the declaration lacks (missing name)', () => {
    expect(problems({ ...good, uniforms: { count: 'u32' } })).toEqual(["kernel 'fake': the body reads p.s, which is not a declared uniform"]);
  });

  test('a declared uniform the body never reads (extra name)', () => {
    expect(problems({ ...good, uniforms: { ...good.uniforms, offset: 'u32' } })).toEqual(["kernel 'fake': uniform offset is declared but the body never reads p.offset"]);
  });

  test('a binding the body uses but the declaration lacks, and one declared but unused', () => {
    expect(problems({ ...good, bindings: { y: readWrite() }, entries: { scale: ['y'] } })).toEqual(["kernel 'fake': scale indexes a, which is not a declared binding"]);
    expect(problems({ ...good, bindings: { ...good.bindings, b: read() } })).toEqual(["kernel 'fake': binding b is declared but no entry point lists it"]);
    expect(problems({ ...good, bindings: { ...good.bindings, b: read() }, entries: { scale: ['a', 'b', 'y'] } }))
      .toEqual(["kernel 'fake': entry point scale lists binding b but does not use it"]);
  });

  test("an entry point's binding list must be exactly what it uses", () => {
    expect(problems({ ...good, entries: { scale: ['y'] } })).toEqual([
      "kernel 'fake': entry point scale uses binding a but does not list it",
      "kernel 'fake': binding a is declared but no entry point lists it",
    ]);
  });

  test('access: read_write only for what the entry point writes; a read binding is never written', () => {
    expect(problems({ ...good, bindings: { a: readWrite(), y: readWrite() } }))
      .toEqual(["kernel 'fake': entry point scale never writes a, declared read_write (declare it read, or another binding for the writer)"]);
    expect(problems({ ...good, bindings: { a: read(), y: read() } })).toEqual(["kernel 'fake': entry point scale writes y, declared read"]);
  });

  test('overrides and constants: each declared one is used, none declared in the body', () => {
    expect(problems({ ...good, overrides: { TWICE: false, UNUSED: 1 } })).toEqual(["kernel 'fake': override UNUSED is declared but the body never uses it"]);
    expect(problems({ ...good, constants: { K: 2, L: 3 } })).toEqual(["kernel 'fake': constant L is declared but the body never uses it"]);
    expect(problems({ ...good, body: `override TWICE: bool = false;\n${body}` })).toEqual([
      "kernel 'fake': the body declares override TWICE (declare it in TS)",
      "kernel 'fake': the body declares TWICE, which the declaration generates",
    ]);
    expect(problems({ ...good, body: `const K: u32 = 2u;\n${body}` })).toEqual(["kernel 'fake': the body declares K, which the declaration generates"]);
  });

  test('the body declares no interface of its own', () => {
    const header = 'struct Params { count: u32, s: f32 }\n@group(0) @binding(0) var<uniform> p: Params;\n';
    expect(problems({ ...good, body: header + body })).toEqual([
      "kernel 'fake': the body declares struct Params (the declaration generates it)",
      "kernel 'fake': the body declares a binding (@group/@binding: the declaration generates them)",
      "kernel 'fake': the body declares a uniform or storage variable",
      "kernel 'fake': the body declares Params, which the declaration generates",
      "kernel 'fake': the body declares p, which the declaration generates",
    ]);
  });

  test('entry points: each declared one exists, with the declared workgroup size; no undeclared one', () => {
    expect(problems({ ...good, entries: { ...good.entries, other: ['a'] } })).toEqual(["kernel 'fake': entry point other is declared but the body has no fn other("]);
    expect(problems({ ...good, body: body.replace('@workgroup_size(WG_X, WG_Y, WG_Z)', '@workgroup_size(64)') }))
      .toEqual(["kernel 'fake': entry point scale must have @workgroup_size(WG_X,WG_Y,WG_Z), has @compute@workgroup_size(64)"]);
    expect(problems({ ...good, entries: { scale: { bindings: ['a', 'y'], workgroupSize: [32, 1, 1] } } }))
      .toEqual(["kernel 'fake': entry point scale must have @workgroup_size(SCALE_WG_X,SCALE_WG_Y,SCALE_WG_Z), has @compute@workgroup_size(WG_X,WG_Y,WG_Z)"]);
    expect(problems({ ...good, body: `${body}\n@compute @workgroup_size(WG_X, WG_Y, WG_Z)\nfn extra() {\n  y[0] = 1.0;\n}` }))
      .toEqual(["kernel 'fake': fn extra is an entry point (@compute) that the declaration does not list"]);
  });

  test('the scan follows calls: a binding used in a helper belongs to the entry points that call it', () => {
    const withHelper = body.replace('var v = a[i] * p.s;', 'var v = load(i) * p.s;') + '\nfn load(i: u32) -> f32 {\n  return a[i];\n}';
    expect(problems({ ...good, body: withHelper })).toEqual([]);
    expect(scanWgsl(withHelper).reachable('scale').map((f) => f.name).sort()).toEqual(['load', 'scale']);
    expect(problems({ ...good, body: withHelper, entries: { scale: ['y'] } })[0]).toBe("kernel 'fake': entry point scale uses binding a but does not list it");
  });

  test('libraries: each listed one is called, by the body or by another library; one that calls another needs it listed', () => {
    const twice: WgslLibrary = { name: 'twice', code: 'fn twice(v: f32) -> f32 {\n  return 2.0 * v;\n}' };
    const load: WgslLibrary = { name: 'load', code: 'fn load(i: u32) -> f32 {\n  return twice(a[i]);\n}', needs: [twice] };
    const viaLibrary = body.replace('var v = a[i] * p.s;', 'var v = load(i) * p.s;');
    expect(problems({ ...good, body: viaLibrary, libraries: [twice, load] })).toEqual([]);
    expect(problems({ ...good, libraries: [twice] })).toEqual(["kernel 'fake': library 'twice' is listed but neither the body nor another library calls its functions"]);
    expect(() => problems({ ...good, body: viaLibrary, libraries: [load] })).toThrow("kernel 'fake': library 'load' calls 'twice', which the kernel does not list");
  });
});

describe('uniforms are packed by name', () => {
  const k = declareKernel({
    name: 'pack', body: '',
    uniforms: { n: 'u32', pad: 'i32', alpha: 'f32', mean: 'vec4<f32>', last: 'u32' },
    bindings: { a: read() }, entries: { main: ['a'] }, workgroupSize: [1, 1, 1],
  });

  test("in WGSL's uniform layout (a vec4 aligned to 16 bytes), the struct padded to 16 bytes", () => {
    const bytes = k.pack({ n: 7, pad: -2, alpha: 0.5, mean: [1, 2, 3, 4], last: 9 });
    expect(bytes.byteLength).toBe(48);
    const dv = new DataView(bytes);
    expect([dv.getUint32(0, true), dv.getInt32(4, true), dv.getFloat32(8, true)]).toEqual([7, -2, 0.5]);
    expect([16, 20, 24, 28].map((o) => dv.getFloat32(o, true))).toEqual([1, 2, 3, 4]);
    expect(dv.getUint32(32, true)).toBe(9);
    expect(k.header).toContain('struct Params {\n  n: u32,\n  pad: i32,\n  alpha: f32,\n  mean: vec4<f32>,\n  last: u32,\n}');
  });

  test('a missing or an extra name is refused, and so is a value of the wrong type', () => {
    expect(() => k.pack({ n: 7, pad: -2, alpha: 0.5, mean: [1, 2, 3, 4] })).toThrow(/^internal: kernel 'pack': uniforms missing last$/);
    expect(() => k.pack({ n: 7, pad: -2, alpha: 0.5, mean: [1, 2, 3, 4], last: 9, extra: 1 } as never)).toThrow(/^internal: kernel 'pack': uniforms not declared extra$/);
    expect(() => k.pack({ n: -1, pad: -2, alpha: 0.5, mean: [1, 2, 3, 4], last: 9 })).toThrow(/uniform n = -1 is not a u32/);
    expect(() => k.pack({ n: 1, pad: 0.5, alpha: 0.5, mean: [1, 2, 3, 4], last: 9 })).toThrow(/uniform pad = 0.5 is not an i32/);
    expect(() => k.pack({ n: 1, pad: 0, alpha: 0.5, mean: [1, 2, 3], last: 9 })).toThrow(/uniform mean = 1,2,3 is not 4 numbers/);
  });

  test('for a dispatch, exactly what its entry point reads is required (per-entry uniforms)', () => {
    // lrn's forward reads no dy/dx view; its backward does.
    const lrn = ALL_KERNELS.find((x) => x.name === 'lrn')!;
    expect(lrn.uniformsOf('forward').sort()).toEqual(['alpha', 'beta', 'bias', 'channels', 'hw', 'items', 'xOffset', 'xStride', 'yOffset', 'yStride']);
    expect(lrn.uniformsOf('backward')).toContain('dxStride');
    const forward = { channels: 1, hw: 1, items: 1, alpha: 1, beta: 1, bias: 1, xOffset: 0, xStride: 1, yOffset: 0, yStride: 1 };
    expect(lrn.pack(forward, 'forward').byteLength).toBe(64);
    expect(() => lrn.pack(forward, 'backward')).toThrow(/^internal: kernel 'lrn.backward': uniforms missing dyOffset, dyStride, dxOffset, dxStride, maskDiv$/);
  });
});

describe('on the device', () => {
  test('every entry point of every kernel compiles (no errors) and makes a pipeline', async () => {
    const { device } = await testGpu();
    const env = new KernelEnv(device);
    for (const kernel of ALL_KERNELS) {
      const info = await device.createShaderModule({ code: kernel.code }).getCompilationInfo();
      const errors = info.messages.filter((m) => m.type === 'error').map((m) => `${kernel.name}:${m.lineNum}: ${m.message}`);
      expect(errors).toEqual([]);
      for (const entry of kernel.entryNames) {
        device.pushErrorScope('validation');
        const pipeline = await kernel.pipeline(env, entry);
        expect(await device.popErrorScope(), `${kernel.name}.${entry}`).toBeNull();
        // 'auto' layout: group 0 holds the uniforms and exactly the entry point's bindings.
        device.pushErrorScope('validation');
        const layout = pipeline.getBindGroupLayout(0);
        const buffers = kernel.bindingsOf(entry).map(() => device.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE }));
        const names = Object.keys(kernel.decl.bindings);
        device.createBindGroup({
          layout,
          entries: [
            { binding: 0, resource: { buffer: device.createBuffer({ size: 256, usage: GPUBufferUsage.UNIFORM }) } },
            ...kernel.bindingsOf(entry).map((b: string, i: number) => ({ binding: names.indexOf(b) + 1, resource: { buffer: buffers[i] } })),
          ],
        });
        expect(await device.popErrorScope(), `${kernel.name}.${entry} bind group`).toBeNull();
        for (const b of buffers) b.destroy();
      }
    }
    env.destroy();
  });
});
