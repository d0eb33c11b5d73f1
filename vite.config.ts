import type { Plugin } from 'vite';
import { defineConfig } from 'vitest/config';

/** WGSL and .txt files are imported as their text: `import src from '../../shaders/conv.wgsl'`. */
function wgslText(): Plugin {
  return {
    name: 'wgsl-text',
    transform(code, id) {
      if (id.endsWith('.wgsl') || id.endsWith('.txt')) return { code: `export default ${JSON.stringify(code)};`, map: null };
      return undefined;
    },
  };
}

export default defineConfig({
  plugins: [wgslText()],
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/scratch/**', 'node_modules/**'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    // Dawn (SwiftShader) uses every core for one dispatch; running files in parallel only adds contention.
    fileParallelism: false,
    pool: 'forks',
  },
});
