#!/usr/bin/env node
// Bundles the Node entry points with esbuild (WGSL and .txt files inlined as text):
//   dist/gradcam.mjs  the CLI        (node scripts/build.mjs cli)
//   dist/bench.mjs    the benchmark  (node scripts/build.mjs bench)
//   dist/bench-report.mjs  the bench's HTML report from result JSONs (npm run bench:report)
//   dist/index.mjs    the library (platform-neutral), dist/node.mjs its Node entry
// With no target, builds all. Packages stay external (node_modules is next to dist/).
import { build } from 'esbuild';

const targets = {
  cli: { entry: 'src/cli/main.ts', out: 'dist/gradcam.mjs', banner: '#!/usr/bin/env node' },
  bench: { entry: 'bench/main.ts', out: 'dist/bench.mjs', banner: '' },
  'gemm-blocks': { entry: 'bench/gemm-blocks.ts', out: 'dist/gemm-blocks.mjs', banner: '' },
  'grouped-conv': { entry: 'bench/grouped-conv.ts', out: 'dist/grouped-conv.mjs', banner: '' },
  'bench-report': { entry: 'bench/report-cli.ts', out: 'dist/bench-report.mjs', banner: '' },
  index: { entry: 'src/index.ts', out: 'dist/index.mjs', banner: '' },
  node: { entry: 'src/node.ts', out: 'dist/node.mjs', banner: '' },
};
const args = process.argv.slice(2);
const quiet = args.includes('--quiet');
const names = args.filter((a) => !a.startsWith('--'));
import { existsSync } from 'node:fs';

for (const name of names.length ? names : Object.keys(targets)) {
  const t = targets[name];
  if (!names.length && !existsSync(t.entry)) continue; // e.g. the benchmark before it exists
  if (!t) {
    console.error(`build: unknown target '${name}' (known: ${Object.keys(targets).join(', ')})`);
    process.exit(2);
  }
  await build({
    entryPoints: [t.entry], outfile: t.out, bundle: true, platform: 'node', format: 'esm', target: 'node20',
    packages: 'external', loader: { '.wgsl': 'text', '.txt': 'text' }, sourcemap: true, logLevel: quiet ? 'error' : 'info',
    banner: t.banner ? { js: t.banner } : undefined,
  });
}
