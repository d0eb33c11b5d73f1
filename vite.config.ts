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
    include: ['test/**/*.test.ts'],
    exclude: process.env.VITEST_SCRATCH ? ['node_modules/**'] : ['test/scratch/**', 'node_modules/**'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    // One test file at a time; GRADCAM_TEST_WORKERS=2 runs two. Dawn (SwiftShader) spreads a dispatch
    // over every core, so a second file may only add contention (on a loaded machine test/cli-methods
    // used 69 CPU-s, more than 2 cores give in its 28 s quiet run: waiting threads burn CPU); but much
    // of a file's CPU time is on one thread (float64 references, shader compiles, CLI and browser
    // start-ups: test/inspect-googlenet.test.ts spent 31.1 of 52.4 CPU-s on its main thread, 11.5 in
    // SwiftShader's two workers). Which is faster is for a timed run on a quiet machine.
    maxWorkers: Number(process.env.GRADCAM_TEST_WORKERS ?? 1),
    // Builds the CLI once for the files that run it (not in each file: a file rebuilding it while another starts it).
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
  },
});
