#!/usr/bin/env node
// Bundles bench/main.ts for the GPU kit: one .mjs with everything in it (our code, onnx-proto and
// protobufjs, both onnxruntime-web builds and onnxruntime-common) except the `webgpu` package, whose
// index.js loads dawn.node from next to itself (and onnxruntime-node: native, not in the kit; the
// bench then skips it). ORT's .wasm files (and the .mjs its wasm provider's
// worker threads start from) stay files: main.ts finds them as node_modules/onnxruntime-web/dist/.
//   node bench/gpu-kit/bundle.mjs OUT.mjs
import { build } from 'esbuild';

const out = process.argv[2];
if (!out) {
  console.error('usage: node bench/gpu-kit/bundle.mjs OUT.mjs');
  process.exit(2);
}
await build({
  entryPoints: ['bench/main.ts'], outfile: out, bundle: true, platform: 'node', format: 'esm', target: 'node20',
  external: ['webgpu', 'onnxruntime-node'], loader: { '.wgsl': 'text', '.txt': 'text' }, minify: true, legalComments: 'none', logLevel: 'warning',
  // CommonJS code bundled into ESM (protobufjs, ORT's Node glue) calls require(): give it one.
  banner: { js: "import { createRequire as __benchCreateRequire } from 'node:module'; const require = __benchCreateRequire(import.meta.url);" },
});
