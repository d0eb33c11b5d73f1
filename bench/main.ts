/**
 * `npm run bench`: the benchmark in Node on Dawn (the `webgpu` package; SwiftShader when there is no
 * GPU), with onnxruntime-web's WebGPU and wasm providers as rivals in the same process.
 * Prints the table (and the profile with --profile) and writes the JSON under bench/results/.
 * `--help` lists the options; bench/README.md explains the measurements.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { GpuContext } from '../src/gpu/device.ts';
import { nodeGpu } from '../src/gpu/node.ts';
import { CONV_VARIANT_NAMES, isConvVariant } from '../src/kernels/variants.ts';
import { FilePlanStore } from '../src/node/plan-files.ts';
import { modelCacheDir, repositoryRoot } from '../src/node/paths.ts';
import { DEFAULT_BATCH_SIZES } from './batch.ts';
import { DEFAULT_OPTIONS, runBench, syntheticInput, type BenchOptions, type BenchResult, type MachineSample } from './harness.ts';
import type { OrtModule, OrtProvider } from './ort.ts';
import { hasCharts } from './charts.ts';
import { renderReport } from './html-report.ts';
import { formatReport } from './report.ts';
import { copySharedWrites } from './shared-memory.ts';
import { benchMultipass, formatEstimate, formatMultipass, type Warmup } from './multipass.ts';
import { formatSoak, runSoak } from './soak.ts';
import { benchIntegratedGradients, formatIntegratedGradients } from './integrated-gradients.ts';
import { decodeOnnx } from '../src/onnx/decode.ts';
import type { OnnxModel } from '../src/onnx/model.ts';

const HELP = `npm run bench -- [options]

  --runs N            timed runs per measurement (default ${DEFAULT_OPTIONS.runs})
  --warmup N          untimed runs first (default ${DEFAULT_OPTIONS.warmup})
  --load-runs N       fresh-device load runs (default ${DEFAULT_OPTIONS.loadRuns})
  --ort-runs N        timed runs for the ORT measurements (default: --runs)
  --ort-warmup N      warm-up runs for ORT, after its first run (default: --warmup)
  --threads N         threads of ORT's wasm provider (default 2)
  --only a,b          measurements to run, by name or prefix: forward, gradcam,
                      gradcam.auto.k1 (the default layer), gradcam.inception_4e,
                      gradcam.inception_4e.all-methods.k1, gradcam.inception_5b.k5,
                      guided.k1, load, ort, ort-webgpu, ort-wasm
  --profile           per-kernel profile (timestamp queries) of the forward and a Grad-CAM
                      (--no-profile turns it off again, e.g. after the GPU kit's default)
  --profile-runs N    profiled runs, per-dispatch median (default ${DEFAULT_OPTIONS.profileRuns})
  --model FILE        an ONNX model (default: googlenet-12 when cached, else the generated
                      googlenet-zoo-seeded); the input shape comes from the model;
                      generated:NAME: a generated model (googlenet-zoo-seeded, resnet50-seeded,
                      mobilenetv2-seeded, ...), written once to weights/generated/ (git-ignored)
  --out DIR           where the JSON goes (default bench/results/); latest.json is written too
  --name TEMPLATE     file name, {date} and {adapter} replaced (default {date}-{adapter}.json)
  --no-ort            skip onnxruntime-web
  --ort-jsep          also measure ORT's JSEP WebGPU build (the default 'onnxruntime-web'
                      import in browsers) as ort-webgpu-jsep.forward
  --batch-sizes LIST  also measure images/s by batch size, e.g. 1,2,4,8,16 (batch.forward.bB,
                      batch.gradcam.inception_4e.bB); --only batch measures only those
  --kernels           the kernel lab: the device's bandwidth and FMA peaks, every conv variant
                      on every distinct layer shape of the model alone, a GEMM sweep (GFLOP/s,
                      GB/s, fraction of the peaks); --only kernels runs only the lab;
                      --no-kernels turns it off again (e.g. after the GPU kit's default)
  --kernel-runs N     timed runs per kernel in the lab, after 1 warm-up (default 5)
  --gemm-sizes LIST   the lab's GEMM sweep: M, N and K each over LIST (default 64,256,1024 on a
                      software adapter, 256,1024,4096 on a GPU; 'none': only the model's shapes)
  --peak-sizes tiny   the lab's peak probe at tiny sizes (a smoke run: its rates understate)
  --variant NAME      our conv kernel variant wherever it applies (gemm-blocked, gemm-tiled, winograd,
                      im2col, direct, gather), or cpu / gpu: that family's fixed rules (default: by adapter)
  --tune              also forward.fixed-rules and forward.tuned, in alternation: the plan tuned on this
                      adapter (every conv variant timed per layer shape; kept in the cache's plans/,
                      so later runs do no timing) against the fixed rules
  --soak N            the memory soak instead of the bench: N explains on one network, then
                      N/20 load/destroy cycles (at least 10), RSS and live GPU buffers as a curve
  --multipass         the multi-pass methods' speed instead of the bench (bench/multipass.ts):
                      scorecam and ablationcam against batched forwards of the same count, ratios;
                      --multipass-layer L (default: the auto layer), --multipass-batch B, --runs N,
                      --no-classify (no leg of net.classify calls), --multipass-batches N (time
                      each leg's first N batches: the methods cancelled after them)
  --ig M              integrated gradients with M steps against M forward + backward passes in
                      batches (bench/integrated-gradients.ts; issue 20 item 4) instead of the bench;
                      with --multipass, both in one command (the multi-pass methods first)
  --size N            --multipass, --ig: the model's input declared [1, C, N, N] (a model whose head
                      takes any size, as googlenet-torchvision-seeded's GlobalAveragePool)
  --warmup-batch      --multipass, --ig: warm each leg up with its first batch (a method cancelled
                      after it), then time one batch, instead of one whole run per leg
  --estimate          --multipass, --ig: only the warm-ups, and how long the timed rounds would take
  --quiet             no progress lines (the table still goes to stdout)`;

interface Cli {
  options: BenchOptions;
  model?: string;
  out?: string;
  name: string;
  ort: boolean;
  jsep: boolean;
  threads: number;
  quiet: boolean;
  /** --soak N: the memory soak instead of the bench. */
  soak?: number;
  /** --ig M: integrated gradients' passes against plain batched passes instead of the bench. */
  ig?: number;
  /** --multipass: the multi-pass methods' speed instead of the bench. */
  multipass?: { layer?: string; batch?: number; classify?: boolean; batches?: number };
  /** --multipass and --ig: --size N, --warmup-batch, --estimate. */
  passes: { size?: number; warmup: Warmup; estimateOnly: boolean };
}

function parseArgs(argv: string[]): Cli {
  const cli: Cli = { options: { ...DEFAULT_OPTIONS }, name: '{date}-{adapter}.json', ort: true, jsep: false, threads: 2, quiet: false, passes: { warmup: 'run', estimateOnly: false } };
  const int = (flag: string, v: string | undefined, min: number) => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min) throw new Error(`${flag} needs an integer ≥ ${min}, got '${v ?? ''}'`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    switch (a) {
      case '--runs': cli.options.runs = int(a, next(), 1); break;
      case '--warmup': cli.options.warmup = int(a, next(), 0); break;
      case '--load-runs': cli.options.loadRuns = int(a, next(), 1); break;
      case '--ort-runs': cli.options.ortRuns = int(a, next(), 1); break;
      case '--ort-warmup': cli.options.ortWarmup = int(a, next(), 0); break;
      case '--threads': cli.threads = int(a, next(), 1); break;
      case '--only': cli.options.only = (next() ?? '').split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--profile': cli.options.profile = true; break;
      case '--no-profile': cli.options.profile = false; break;
      case '--profile-runs': cli.options.profileRuns = int(a, next(), 1); break;
      case '--model': cli.model = next(); break;
      case '--out': cli.out = next(); break;
      case '--name': cli.name = next() ?? cli.name; break;
      case '--no-ort': cli.ort = false; break;
      case '--ort-jsep': cli.jsep = true; break;
      case '--quiet': cli.quiet = true; break;
      case '--batch-sizes': cli.options.batchSizes = (next() ?? '').split(',').map((v) => int(a, v.trim(), 1)); break;
      case '--kernels': cli.options.kernels = true; break;
      case '--variant': {
        const v = next();
        if (!v || !(v === 'cpu' || v === 'gpu' || isConvVariant(v))) throw new Error(`--variant takes ${CONV_VARIANT_NAMES.join(', ')}, cpu or gpu, got '${v ?? ''}'`);
        cli.options.variant = v;
        break;
      }
      case '--tune': cli.options.tune = true; break;
      case '--no-kernels': cli.options.kernels = false; break;
      case '--kernel-runs': cli.options.kernelRuns = int(a, next(), 1); break;
      case '--peak-sizes': {
        const v = next();
        if (v !== 'tiny') throw new Error(`--peak-sizes takes 'tiny' (the default sizes suit the adapter), got '${v ?? ''}'`);
        cli.options.peakSizes = v;
        break;
      }
      case '--gemm-sizes': {
        const v = next();
        cli.options.gemmSizes = v === 'none' ? [] : (v ?? '').split(',').map((x) => int(a, x.trim(), 1));
        break;
      }
      case '--soak': cli.soak = int(a, next(), 2); break;
      case '--ig': cli.ig = int(a, next(), 1); break;
      case '--multipass': cli.multipass ??= {}; break;
      case '--multipass-layer': (cli.multipass ??= {}).layer = next(); break;
      case '--multipass-batch': (cli.multipass ??= {}).batch = int(a, next(), 1); break;
      case '--no-classify': (cli.multipass ??= {}).classify = false; break;
      case '--multipass-batches': (cli.multipass ??= {}).batches = int(a, next(), 1); break;
      case '--size': cli.passes.size = int(a, next(), 1); break;
      case '--warmup-batch': cli.passes.warmup = 'batch'; break;
      case '--estimate': cli.passes.estimateOnly = true; break;
      case '--help': case '-h': console.log(HELP); process.exit(0); break;
      default: throw new Error(`unknown option '${a}' (--help lists them)`);
    }
  }
  if ((cli.passes.size !== undefined || cli.passes.warmup !== 'run' || cli.passes.estimateOnly) && !cli.multipass && cli.ig === undefined) {
    throw new Error('--size, --warmup-batch and --estimate apply to --multipass and --ig');
  }
  return cli;
}

/** The decoded model, its input declared [1, C, N, N] with --size N (the lowering refuses a graph that cannot take it). */
function passesModel(bytes: Uint8Array, size: number | undefined): OnnxModel {
  const model = decodeOnnx(bytes);
  if (size === undefined) return model;
  const input = model.inputs[0];
  if (input.shape.length !== 4) throw new Error(`--size: the model's input '${input.name}' has ${input.shape.length} dimensions, not 4 (N, C, H, W)`);
  const c = input.shape[1];
  input.shape = [1, typeof c === 'number' ? c : 3, size, size];
  return model;
}

function repoRoot(): string | undefined {
  try {
    return repositoryRoot();
  } catch {
    return undefined; // the GPU kit: no repository around the bundle
  }
}

async function modelBytes(cli: Cli, log: (l: string) => void): Promise<{ name: string; bytes: Uint8Array }> {
  if (cli.model?.startsWith('generated:')) {
    // Generated on first use into weights/generated/ (git-ignored; the model cache outside a
    // checkout) and read from there afterwards: ResNet-50's 25.6 M seeded weights take a while.
    const name = cli.model.slice('generated:'.length);
    const { ensureGeneratedModel } = await import('../weights/generate/index.ts');
    const path = await ensureGeneratedModel(name, { log });
    return { name: `${name}.onnx`, bytes: new Uint8Array(readFileSync(path)) };
  }
  if (cli.model) return { name: basename(cli.model), bytes: new Uint8Array(readFileSync(cli.model)) };
  const real = join(modelCacheDir(), 'googlenet-12.onnx');
  if (existsSync(real)) return { name: 'googlenet-12.onnx', bytes: new Uint8Array(readFileSync(real)) };
  const { ensureGeneratedModel } = await import('../weights/generate/index.ts');
  const path = await ensureGeneratedModel('googlenet-zoo-seeded', { log });
  return { name: 'googlenet-zoo-seeded.onnx', bytes: new Uint8Array(readFileSync(path)) };
}

function machine(): MachineSample {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim(), cores: os.availableParallelism?.() ?? cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10, loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

/** The checkout's commit, '+dirty' when the engine's sources (src/, shaders/) have uncommitted changes. */
function gitVersion(root: string | undefined): Record<string, string> {
  // The GPU kit has no checkout: pack.sh records the commit and run.sh passes it on.
  if (process.env.GRADCAM_BENCH_GIT) return { git: process.env.GRADCAM_BENCH_GIT };
  if (!root) return {};
  try {
    const git = (...args: string[]) => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return { git: `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--', 'src', 'shaders') ? '+dirty' : ''}` };
  } catch {
    return {};
  }
}

/** The version field of an installed package's package.json, or 'unknown'. */
function packageVersion(name: string): string {
  try {
    const req = createRequire(import.meta.url);
    return (JSON.parse(readFileSync(req.resolve(`${name}/package.json`), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * onnxruntime-web in Node, two module instances: 'onnxruntime-web/webgpu' (the WebGPU EP, given our
 * Dawn GPU object as navigator.gpu; one thread: the web build cannot start its worker threads in
 * Node, it fetches a file: URL) and 'onnxruntime-web' (its Node build, wasm EP, `threads` threads).
 */
async function loadOrt(gpu: GpuContext, cli: Cli, log: (l: string) => void): Promise<OrtProvider[]> {
  const req = createRequire(import.meta.url);
  const dist = dirname(req.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));
  Object.defineProperty(globalThis, 'navigator', {
    value: { ...(globalThis as { navigator?: object }).navigator, gpu: gpu.owner }, configurable: true, writable: true,
  });
  const stats = copySharedWrites((globalThis as unknown as { GPUQueue: { prototype: GPUQueue } }).GPUQueue);
  const copyNote = () => `GPUQueue.writeBuffer wrapped: ${stats.views} views on / ${stats.raw} whole SharedArrayBuffers copied (${(stats.bytes / 1e6).toFixed(1)} MB) so far`;
  const providers: OrtProvider[] = [];

  const wasm = (await import('onnxruntime-web')) as OrtModule;
  wasm.env.wasm.numThreads = cli.threads;
  wasm.env.wasm.wasmPaths = `${pathToFileURL(dist).href}/`;
  providers.push({ name: 'ort-wasm', module: wasm, executionProvider: 'wasm', threads: cli.threads, build: 'onnxruntime-web (Node build ort.node.min.mjs, ort-wasm-simd-threaded.wasm)' });

  const webgpu = (await import('onnxruntime-web/webgpu')) as OrtModule;
  webgpu.env.wasm.numThreads = 1;
  webgpu.env.wasm.wasmBinary = readFileSync(join(dist, 'ort-wasm-simd-threaded.asyncify.wasm'));
  providers.push({
    name: 'ort-webgpu', module: webgpu, executionProvider: 'webgpu', threads: 1,
    build: 'onnxruntime-web/webgpu (ort.webgpu.bundle.min.mjs, native WebGPU EP, ort-wasm-simd-threaded.asyncify.wasm)',
    get notes() { return [copyNote()]; },
  });

  if (cli.jsep) {
    const jsep = (await import(pathToFileURL(join(dist, 'ort.bundle.min.mjs')).href)) as OrtModule;
    jsep.env.wasm.numThreads = 1;
    jsep.env.wasm.wasmBinary = readFileSync(join(dist, 'ort-wasm-simd-threaded.jsep.wasm'));
    providers.push({
      name: 'ort-webgpu-jsep', module: jsep, executionProvider: 'webgpu', threads: 1,
      build: 'onnxruntime-web default build (ort.bundle.min.mjs, JSEP WebGPU EP, ort-wasm-simd-threaded.jsep.wasm)',
      get notes() { return [copyNote()]; },
    });
  }
  // onnxruntime-node (native, CPU) when installed (a dev dependency; the GPU kit does without it).
  try {
    const native = (await import('onnxruntime-node')) as unknown as OrtModule;
    providers.push({ name: 'ort-node', module: native, executionProvider: 'cpu', threads: 0, build: `onnxruntime-node ${packageVersion('onnxruntime-node')} (native CPU EP, default threads)` });
  } catch {
    log('onnxruntime-node is not installed: ort-node not measured');
  }
  log(`onnxruntime-web ${webgpu.env.versions?.web ?? '?'} from ${dist}`);
  return providers;
}

async function main(): Promise<void> {
  const started = performance.now();
  const cli = parseArgs(process.argv.slice(2));
  const log = cli.quiet ? () => undefined : (l: string) => process.stderr.write(`${l}\n`);
  const gpu = await nodeGpu(log);
  const model = await modelBytes(cli, log);
  const root = repoRoot();
  const out = resolve(cli.out ?? (root ? join(root, 'bench', 'results') : '.'));
  if (cli.multipass || cli.ig !== undefined) {
    // The multi-pass methods, integrated gradients, or both (one JSON each), on one device.
    const model_ = passesModel(model.bytes, cli.passes.size);
    const tag = `${model.name.replace(/\.onnx$/, '').replace(/[^\w.-]+/g, '_')}${cli.passes.size !== undefined ? `-${cli.passes.size}` : ''}`;
    // One network for both (a model load less: GoogLeNet's pipelines compile for a while on SwiftShader).
    const { Network } = await import('../src/gradcam/network.ts');
    const net = await Network.load(gpu, model_);
    const common = { runs: cli.options.runs, warmup: cli.passes.warmup, log, net };
    const write = (what: string, r: object) => {
      mkdirSync(out, { recursive: true });
      const file = join(out, `${new Date().toISOString().slice(0, 10)}-${what}-${tag}.json`);
      writeFileSync(file, `${JSON.stringify({ ...r, load: os.loadavg() }, null, 1)}\n`);
      log(`wrote ${file}`);
    };
    let predicted = 0, predictedCpu = 0;
    if (cli.multipass) {
      if (cli.passes.estimateOnly) {
        const e = await benchMultipass(gpu, model_, model.name, { ...cli.multipass, ...common, estimateOnly: true });
        console.log(formatEstimate('multipass', e));
        predicted += e.roundsMs;
        predictedCpu += e.roundsCpuMs;
      } else {
        const r = await benchMultipass(gpu, model_, model.name, { ...cli.multipass, ...common });
        console.log(formatMultipass(r));
        write('multipass', r);
      }
    }
    if (cli.ig !== undefined) {
      if (cli.passes.estimateOnly) {
        const e = await benchIntegratedGradients(gpu, model_, model.name, { steps: cli.ig, ...common, estimateOnly: true });
        console.log(formatEstimate(`integrated gradients, m = ${cli.ig}`, e));
        predicted += e.roundsMs;
        predictedCpu += e.roundsCpuMs;
      } else {
        const r = await benchIntegratedGradients(gpu, model_, model.name, { steps: cli.ig, ...common });
        console.log(formatIntegratedGradients(r));
        write(`integrated-gradients-${cli.ig}`, r);
      }
    }
    const cpu = process.cpuUsage();
    if (cli.passes.estimateOnly) {
      console.log(`in all, the timed rounds: about ${(predicted / 60_000).toFixed(1)} min (CPU ${(predictedCpu / 60_000).toFixed(1)} min), after the warm-ups: ${((performance.now() - started) / 60_000).toFixed(1)} min in this run (CPU ${((cpu.user + cpu.system) / 6e7).toFixed(1)} min), model load included; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
    }
    process.exit(0);
  }
  if (cli.soak !== undefined) {
    const soak = await runSoak(gpu, model, cli.soak, syntheticInput, log);
    console.log(formatSoak(soak));
    mkdirSync(out, { recursive: true });
    const file = join(out, `${soak.date.slice(0, 10)}-soak-${cli.soak}.json`);
    writeFileSync(file, `${JSON.stringify(soak, null, 1)}\n`);
    log(`wrote ${file}`);
    process.exit(0);
  }
  if (cli.options.only?.includes('batch') && !cli.options.batchSizes) cli.options.batchSizes = [...DEFAULT_BATCH_SIZES];
  if (cli.options.only?.includes('kernels')) cli.options.kernels = true;
  const ort = cli.ort ? await loadOrt(gpu, cli, log) : [];
  const result: BenchResult = await runBench({
    platform: 'node', gpu, model, ort, log, options: cli.options, machine, planStore: new FilePlanStore(),
    versions: { ...gitVersion(root), node: process.version, 'webgpu (Dawn)': packageVersion('webgpu') },
    notes: cli.ort ? [] : ['--no-ort: onnxruntime-web not measured'],
  });
  console.log(formatReport(result, cli.options.profile));

  mkdirSync(out, { recursive: true });
  const file = join(out, cli.name.replace('{date}', result.date.slice(0, 10)).replace('{adapter}', result.adapterSlug));
  const json = `${JSON.stringify(result, null, 1)}\n`;
  writeFileSync(file, json);
  writeFileSync(join(out, 'latest.json'), json);
  log(`wrote ${file} and ${join(out, 'latest.json')}`);
  // The HTML report (bench/html-report.ts) next to the JSON, when the run has something to draw.
  if (hasCharts(result)) {
    const html = renderReport([{ result, source: basename(file) }]);
    const page = file.replace(/\.json$/, '') + '.html';
    writeFileSync(page, html);
    writeFileSync(join(out, 'latest.html'), html);
    log(`wrote ${page} and ${join(out, 'latest.html')}`);
  }
  // Dawn and ORT's worker threads keep the event loop alive; the results are written.
  process.exit(0);
}

main().catch((e: unknown) => {
  const err = e as Error & { hint?: string };
  process.stderr.write(`bench: ${err.stack ?? err.message ?? String(e)}\n${err.hint ? `${err.hint}\n` : ''}`);
  process.exit(1);
});
