import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Plugin } from 'vite';
import { defineConfig } from 'vitest/config';
import { modelFiles } from './scripts/model-files.ts';

/**
 * WGSL and .txt files are imported as their text: `import src from '../../shaders/conv.wgsl'`.
 * The file is read in `load`, before Vite's asset plugin (which would otherwise turn a .txt import
 * into the URL of an emitted asset in `vite build`).
 */
function wgslText(): Plugin {
  return {
    name: 'wgsl-text',
    enforce: 'pre',
    async load(id) {
      if (!/\.(wgsl|txt)$/.test(id)) return undefined;
      // moduleType 'js': Rolldown would otherwise wrap a .txt file's code as text once more.
      return { code: `export default ${JSON.stringify(await readFile(id, 'utf8'))};`, map: null, moduleType: 'js' };
    },
  };
}

/**
 * The benchmark page (/bench/, bench/index.html): cross-origin isolation headers, so that
 * onnxruntime-web's wasm provider may use threads (SharedArrayBuffer); also on ORT's own files,
 * which its worker threads load.
 */
function benchIsolation(): Plugin {
  return {
    name: 'bench-isolation',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        if (req.url?.startsWith('/bench') || req.url?.startsWith('/node_modules/onnxruntime-web/')) {
          res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
          res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
        }
        next();
      });
    },
  };
}

/**
 * The test files that take the shared test device: they import test/helpers/gpu.ts, or a helper that
 * does (googlenets.ts, kernel-check.ts). They run in one process (vitest `isolate: false`, the
 * project 'device' below), so they share one Dawn device and its pipeline cache
 * (src/gpu/dispatch.ts PipelineCache.of(device)): each kernel is compiled by SwiftShader once per
 * run instead of once per file, and Dawn, the modules of src/ and the fork start once. Measured
 * under load (~20 on 2 cores), ten small GPU files (concurrency, multipass, nhwc-input,
 * inspect-residual, elementwise-kernels, kernels-broken-layout, road-eval, api-misuse,
 * gradcam-requests, aug-smooth): 108 CPU-s isolated, 57 CPU-s in one process.
 * What a shared process keeps from file to file, and why these files may share it: the modules'
 * state (testGpu's device; googlenetNetwork's networks, freed by each file's afterAll; compiled
 * pipelines, which no test counts; the mutant kernels of kernels-broken-* live in their own
 * caches), process.env (own-model.test.ts restores what it sets; the others set none), globals and
 * mocks (vitest restores mocks after each file). The files that set process.env for good
 * (test/e2e: GRADCAM_CACHE) or watch the process's memory (memory-soak) stay isolated.
 * GRADCAM_TEST_ISOLATE=1 runs every file in its own process again (to compare, or to tell whether a
 * failure depends on an earlier file).
 */
function sharedDeviceFiles(): string[] {
  const uses = (text: string) => /from '\.\/helpers\/(gpu|googlenets|kernel-check)\.ts'/.test(text);
  const dir = `${import.meta.dirname}/test`;
  return readdirSync(dir).filter((f) => f.endsWith('.test.ts') && f !== 'memory-soak.test.ts' && uses(readFileSync(`${dir}/${f}`, 'utf8'))).map((f) => `test/${f}`);
}

const ISOLATE_ALL = process.env.GRADCAM_TEST_ISOLATE === '1';
const SHARED = ISOLATE_ALL ? [] : sharedDeviceFiles();
/** Runs alone, after every other file (see the project 'soak' below). */
const SOAK = 'test/memory-soak.test.ts';

export default defineConfig({
  // modelFiles: the CLI's model cache as `models/<name>.onnx` next to the page (dev and preview
  // servers), and verified cached models copied into dist/web/models/ by `vite build`.
  plugins: [wgslText(), benchIsolation(), modelFiles()],
  // The package's own name resolves to its sources (tests, the README example).
  resolve: { alias: [{ find: /^gradcam-webgpu\/node$/, replacement: `${import.meta.dirname}/src/node.ts` }, { find: /^gradcam-webgpu$/, replacement: `${import.meta.dirname}/src/index.ts` }] },
  // The page (index.html, src/web/): `npm run dev` serves it, `npm run build:web` writes dist/web/.
  build: { outDir: 'dist/web', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 1024 },
  // onnx-proto is CommonJS (protobufjs): pre-bundle it for the dev server.
  // onnxruntime-web (the benchmark page) is not pre-bundled: it loads its .wasm and .mjs from next to
  // its own module file, which must stay in node_modules/onnxruntime-web/dist/.
  optimizeDeps: { include: ['onnx-proto'], exclude: ['onnxruntime-web'] },
  test: {
    // Which files run: the projects below (a project's include and exclude would add to ones here).
    testTimeout: 600_000,
    hookTimeout: 600_000,
    // One test file at a time; GRADCAM_TEST_WORKERS=2 runs two. Dawn (SwiftShader) spreads a dispatch
    // over every core, so a second file may only add contention (on a loaded machine test/cli-methods
    // used 69 CPU-s, more than 2 cores give in its 28 s quiet run: waiting threads burn CPU); but much
    // of a file's CPU time is on one thread (float64 references, shader compiles, CLI and browser
    // start-ups: test/inspect-googlenet.test.ts spent 31.1 of 52.4 CPU-s on its main thread, 11.5 in
    // SwiftShader's two workers). Which is faster is for a timed run on a quiet machine:
    // `npm test` against `GRADCAM_TEST_WORKERS=2 npm test` (the 'device' files then share one process
    // per worker; the soak still runs alone, last).
    maxWorkers: Number(process.env.GRADCAM_TEST_WORKERS ?? 1),
    // Builds the CLI once for the files that run it (not in each file: a file rebuilding it while another starts it).
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    projects: [
      // The files on the shared test device: one process (one per worker), see sharedDeviceFiles.
      ...(SHARED.length ? [{ extends: true as const, test: { name: 'device', include: SHARED, isolate: false } }] : []),
      // Every other file in a process of its own (vitest's default). test/scratch/ only with VITEST_SCRATCH=1.
      { extends: true, test: { name: 'files', include: ['test/**/*.test.ts'], exclude: [...SHARED, SOAK, ...(process.env.VITEST_SCRATCH ? [] : ['test/scratch/**']), 'node_modules/**'] } },
      // The memory soak alone, after every other file (groupOrder 1; the others are 0), with one
      // malloc arena. Its RSS witness allows a fitted 4 MB of growth over the second half of its
      // explains beyond a peer's, and failed under contention (4.47 MB beside a second test file;
      // 4.57 MB alone at load 40): another process cannot touch this one's pages (no swap), but it
      // makes SwiftShader's threads find glibc's arena locked more often, and glibc then opens
      // another arena (up to 8 per core) whose pages stay in RSS: growth of the allocator, not of
      // what it holds. With MALLOC_ARENA_MAX=1 (read at process start: the fork's env) every
      // thread allocates in one arena; leaked bytes count as before. Measured at load 30-40:
      // 4.57, 2.85, 2.32 MB with glibc's default, 1.38, 1.19 MB with one arena.
      { extends: true, test: { name: 'soak', include: [SOAK], maxWorkers: 1, sequence: { groupOrder: 1 }, env: { MALLOC_ARENA_MAX: '1' } } },
    ],
  },
});
