/** The README's API example is test/examples/readme-api.ts verbatim, and it runs. */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { expect, test, vi } from 'vitest';

test('the README shows the example file, and the example runs', async () => {
  const example = readFileSync('test/examples/readme-api.ts', 'utf8').trim();
  expect(readFileSync('README.md', 'utf8')).toContain(example);
  rmSync('cat-gradcam.png', { force: true });
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(' ')));
  try {
    await import('./examples/readme-api.ts');
  } finally {
    spy.mockRestore();
  }
  // 2 layers × top-3 classes, then the timings.
  expect(lines.filter((l) => /^inception_(4e|5b)\/output_1 class \d+ \(\w+\): (14×14|7×7) map, max \d/.test(l)).length).toBe(6);
  expect(existsSync('cat-gradcam.png')).toBe(true);
  rmSync('cat-gradcam.png');
});
