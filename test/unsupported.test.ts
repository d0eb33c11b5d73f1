/**
 * A model with op types the engine does not implement is refused once, before lowering, naming
 * every missing type with its first node (src/graph/support.ts); the CLI exits 2 for it; and
 * `gradcam info --ops` lists what the engine reads. Lowering and the CLI only: no GPU.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnsupportedModelError } from '../src/errors.ts';
import { lower } from '../src/graph/lower.ts';
import { supportedOps } from '../src/graph/support.ts';
import type { OnnxModel, OnnxNode } from '../src/onnx/model.ts';
import { encodeOnnx } from '../src/onnx/write.ts';
import { LOWERINGS } from '../src/ops/index.ts';
import { expectExit, gradcam } from './helpers/cli.ts';

const node = (opType: string, name: string, inputs: string[], output: string, domain = ''): OnnxNode =>
  ({ name, opType, domain, inputs, outputs: [output], attributes: {} });

/** x → Relu → DeformConv → RoiAlign → DeformConv → com.microsoft FusedConv → GlobalAveragePool: three missing types, one twice. */
function unsupported(): OnnxModel {
  return {
    irVersion: 8, opset: 13, producerName: 'unsupported-test', graphName: 'g',
    inputs: [{ name: 'x', elemType: 'float32', shape: [1, 3, 8, 8] }], outputs: [{ name: 'y', elemType: 'float32', shape: [1, 3, 1, 1] }],
    initializers: new Map(),
    nodes: [
      node('Relu', 'relu', ['x'], 'a'),
      node('DeformConv', 'deform1', ['a'], 'b'),
      node('RoiAlign', 'roi', ['b'], 'c'),
      node('DeformConv', 'deform2', ['c'], 'd'),
      node('FusedConv', 'fused', ['d'], 'e', 'com.microsoft'),
      node('GlobalAveragePool', 'gap', ['e'], 'y'),
    ],
  };
}

describe('an unsupported model is refused once, naming every missing op type', () => {
  it('lowering: one UnsupportedModelError with each type, its first node and its count', () => {
    let err: unknown;
    try {
      lower(unsupported());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnsupportedModelError);
    const e = err as UnsupportedModelError;
    expect(e.missing).toEqual([
      { opType: 'DeformConv', firstNode: 'deform1', nodes: 2 },
      { opType: 'RoiAlign', firstNode: 'roi', nodes: 1 },
      { opType: 'com.microsoft:FusedConv', firstNode: 'fused', nodes: 1 },
    ]);
    expect(e.message).toMatch(/^the model uses 3 op types the engine does not support: DeformConv \(node 'deform1' and 1 more node\), RoiAlign \(node 'roi'\), com\.microsoft:FusedConv \(node 'fused'\); supported ops: .*\bConv\b/);
    expect(e.hint).toMatch(/gradcam info --ops/);
  });

  it('every op type of the lowering table and the folds is supported; the list is sorted and has no duplicates', () => {
    const types = supportedOps().map((o) => o.opType);
    expect(types).toEqual([...new Set(types)].sort());
    for (const t of LOWERINGS.keys()) expect(types).toContain(t);
    for (const t of ['Shape', 'Gather', 'Unsqueeze', 'Concat', 'ConstantOfShape', 'Cast', 'Range', 'Div', 'Mul', 'Slice']) {
      expect(supportedOps().find((o) => o.opType === t)?.folded, t).toBe(true);
    }
  });
});

describe('CLI', () => {
  let dir: string;
  const file = (name: string) => join(dir, name);
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gradcam-unsupported-'));
    await writeFile(file('unsupported.onnx'), encodeOnnx(unsupported()));
  }, 120_000);
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('info on an unsupported model: exit 2, one message naming the three types, and the hint', async () => {
    const run = await gradcam(['info', file('unsupported.onnx')]);
    expectExit(run, 2);
    const lines = run.stderr.split('\n').filter(Boolean);
    expect(lines[0]).toMatch(/^gradcam: .*unsupported\.onnx: the model uses 3 op types the engine does not support: DeformConv \(node 'deform1' and 1 more node\), RoiAlign \(node 'roi'\), com\.microsoft:FusedConv \(node 'fused'\); supported ops: /);
    expect(lines[1]).toMatch(/^hint: .*gradcam info --ops/);
    expect(run.stderr).not.toMatch(/^usage:/m);
  });

  it('info --ops lists the supported op types, as text and as JSON; with a model it is a usage error', async () => {
    const text = await gradcam(['info', '--ops']);
    expectExit(text, 0);
    const ops = supportedOps();
    expect(text.stdout.split('\n')[0]).toBe(`${ops.length} supported ONNX op types (default domain), and the engine's op kind each lowers to:`);
    expect(text.stdout).toMatch(/^ {2}Conv +conv$/m);
    expect(text.stdout).toMatch(/^ {2}Shape +folded at load time \(constants and shapes only\)$/m);
    expect(text.stdout).toMatch(/^ {2}Reshape +.*view \(no GPU work\).*; folded at load time when its inputs are constants$/m);
    const json = await gradcam(['info', '--ops', '--json', '-']);
    expectExit(json, 0);
    expect(JSON.parse(json.stdout).supportedOps).toEqual(ops);
    const both = await gradcam(['info', '--ops', file('unsupported.onnx')]);
    expectExit(both, 2);
    expect(both.stderr).toMatch(/^gradcam: --ops lists what the engine reads; give no model with it$/m);
  });
});
