/**
 * onnxruntime-web as the rival: a session on the same model bytes with the logits added as a graph
 * output (so it computes and returns what our forward returns: logits and, when the model has a
 * Softmax output, the probabilities), timed run by run from input tensor to output on the CPU.
 *
 * Platform-neutral: the caller imports the ORT module (Node: bench/main.ts; browser: bench/page.ts)
 * and says which execution provider to use.
 */
import onnxProto from 'onnx-proto';
import type * as OrtTypes from 'onnxruntime-web';

export type OrtModule = typeof OrtTypes;

export interface OrtProvider {
  /** Measurement prefix: 'ort-webgpu', 'ort-wasm' or 'ort-node' (the stable names), or another for experiments. */
  name: string;
  module: OrtModule;
  executionProvider: 'webgpu' | 'wasm' | 'cpu';
  /** Which ORT build and how it was loaded, e.g. 'onnxruntime-web/webgpu (ort.webgpu.bundle.min.mjs)'. */
  build: string;
  /** env.wasm.numThreads that the module was initialised with. */
  threads: number;
  /** Anything the caller had to do to make it run (the writeBuffer copy in Node), for the JSON. */
  notes?: string[];
}

export interface OrtOutputs {
  logits: string;
  logitsShape: number[];
  probabilities?: string;
  probabilitiesShape?: number[];
}

/** The model bytes with `outputs` made graph outputs (float32, static shapes), when they are not already. */
export function withOutputs(bytes: Uint8Array, outputs: { name: string; shape: number[] }[]): Uint8Array {
  const { onnx } = onnxProto;
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph!;
  const have = new Set((graph.output ?? []).map((o) => o.name));
  const missing = outputs.filter((o) => !have.has(o.name));
  if (missing.length === 0) return bytes;
  graph.output = [
    ...(graph.output ?? []),
    ...missing.map((o) => onnx.ValueInfoProto.create({
      name: o.name,
      type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: o.shape.map((d) => ({ dimValue: d })) } } },
    })),
  ];
  return onnx.ModelProto.encode(model).finish();
}

export interface OrtRun {
  /** Session creation (includes weight upload and, for WebGPU, nothing else: kernels compile on first run). */
  sessionMs: number;
  /** The first run alone (shader compilation for WebGPU). */
  firstRunMs: number;
  samples: number[];
  logits: Float32Array;
  probabilities?: Float32Array;
}

/** Creates a session, runs it once (timed apart), `warmup` more times, then `runs` timed runs. */
export async function benchOrt(p: OrtProvider, modelBytes: Uint8Array, inputName: string, input: Float32Array, shape: number[],
  outs: OrtOutputs, runs: number, warmup: number, log: (line: string) => void): Promise<OrtRun> {
  const ort = p.module;
  const bytes = withOutputs(modelBytes, [
    { name: outs.logits, shape: outs.logitsShape },
    ...(outs.probabilities ? [{ name: outs.probabilities, shape: outs.probabilitiesShape! }] : []),
  ]);
  let t = performance.now();
  const session = await ort.InferenceSession.create(bytes, { executionProviders: [p.executionProvider], graphOptimizationLevel: 'all' });
  const sessionMs = performance.now() - t;
  log(`${p.name}: session created in ${(sessionMs / 1000).toFixed(1)} s (${p.build}, ${p.threads} thread${p.threads === 1 ? '' : 's'})`);
  const fetches = [outs.logits, ...(outs.probabilities ? [outs.probabilities] : [])];
  let last: Record<string, OrtTypes.Tensor> = {};
  const run = async () => {
    const feeds = { [inputName]: new ort.Tensor('float32', input, shape) };
    last = await session.run(feeds, fetches);
    // Outputs are on the CPU (the default location): reading .data is free; getData() would copy.
    for (const name of fetches) void last[name].data;
  };
  t = performance.now();
  await run();
  const firstRunMs = performance.now() - t;
  log(`${p.name}: first run ${(firstRunMs / 1000).toFixed(1)} s`);
  const samples: number[] = [];
  for (let i = 0; i < warmup; i++) await run();
  for (let i = 0; i < runs; i++) {
    t = performance.now();
    await run();
    samples.push(performance.now() - t);
  }
  const logits = Float32Array.from(last[outs.logits].data as Float32Array);
  const probabilities = outs.probabilities ? Float32Array.from(last[outs.probabilities].data as Float32Array) : undefined;
  await session.release();
  return { sessionMs, firstRunMs, samples, logits, probabilities };
}

export interface Agreement {
  against: string;
  /** max |ours − theirs| over the logits, and that divided by max |ours|. */
  maxAbsDiff: number;
  relDiff: number;
  top1Agrees: boolean;
  /** How many of our top-5 classes are in theirs. */
  top5Overlap: number;
  ok: boolean;
}

function topK(x: Float32Array, k: number): number[] {
  return [...x.keys()].sort((a, b) => x[b] - x[a] || a - b).slice(0, k);
}

/**
 * Our logits against a rival's. `ok` when the relative difference is under 1e-3: both compute in
 * float32 with different summation orders (ORT's WebGPU conv and ours tile K differently), so the
 * logits of a 57-conv network agree to a few float32 ulps times the depth, far below 1e-3.
 */
export function agreement(against: string, ours: Float32Array, theirs: Float32Array): Agreement {
  let maxAbsDiff = 0, maxAbs = 0;
  for (let i = 0; i < ours.length; i++) {
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(ours[i] - theirs[i]));
    maxAbs = Math.max(maxAbs, Math.abs(ours[i]));
  }
  const relDiff = maxAbsDiff / (maxAbs || 1);
  const a = topK(ours, 5), b = new Set(topK(theirs, 5));
  const top1Agrees = a[0] === topK(theirs, 1)[0];
  return { against, maxAbsDiff, relDiff, top1Agrees, top5Overlap: a.filter((c) => b.has(c)).length, ok: relDiff < 1e-3 && ours.length === theirs.length };
}
