/**
 * Downloads against servers that misbehave without end (weights/fetch.ts, `gradcam fetch`,
 * `--model URL`), on a local HTTP server on 127.0.0.1 (test/helpers/model-server.ts); the limits are
 * set small through the options so that every case ends in a second or two:
 *
 * - a body that never ends: stopped at the size limit (--max-bytes), the .part deleted;
 * - a Content-Length of 1 TB: refused before a byte is written; one larger than the free disk
 *   space (with the limit raised): refused too; a manifest size over the limit: no request at all;
 * - a transfer that trickles (a few bytes a second, never idle long enough for the idle timeout):
 *   stopped by the overall deadline (--max-time), the .part kept for the next run;
 * - Retry-After: 999999 is not waited for (at most 60 s): the error says how long the server asked;
 * - credentials in a URL (http://user:password@host/...) reach the server but no message;
 * - GRADCAM_CACHE under /proc: a clear error at once (Node's recursive mkdir loops there forever).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { formatBytes } from '../src/node/files.ts';
import { type DownloadError, type DownloadTarget, fetchModel, type FetchOptions, targetForUrl } from '../weights/fetch.ts';
import { generateModelBytes } from '../weights/generate/index.ts';
import { gradcam as runCli, ROOT, type Run } from './helpers/cli.ts';
import { type Handler, type ModelServer, sendBytes, sendEndless, startServer } from './helpers/model-server.ts';

let base: string;
let counter = 0;
let server: ModelServer | undefined;
let model: Uint8Array;
const PASSWORD = 'hunter2-s3cr3t';

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'gradcam-robust-dl-'));
  model = generateModelBytes('googlenet-zoo-seeded');
});

afterEach(async () => {
  await server?.close();
  server = undefined;
});

afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

async function cache(): Promise<string> {
  const dir = join(base, `cache-${counter++}`);
  await mkdir(dir);
  return dir;
}

async function serve(handler: Handler): Promise<ModelServer> {
  server = await startServer(handler);
  return server;
}

/** Fast retries; lines collected. */
function options(dir: string, extra: FetchOptions = {}): { opts: FetchOptions; lines: string[] } {
  const lines: string[] = [];
  return { opts: { cacheDir: dir, retryDelayMs: 20, maxRetryDelayMs: 100, timeoutMs: 5000, log: (l) => lines.push(l), ...extra }, lines };
}

async function failure(p: Promise<unknown>): Promise<DownloadError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err, 'expected the download to fail').toBeInstanceOf(Error);
  return err as DownloadError;
}

/** A URL download (no size, no checksum known), as `--model URL` makes it. */
const urlTarget = (s: ModelServer, path = '/m.onnx'): DownloadTarget => targetForUrl(`${s.url}${path}`);

function gradcam(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<Run> {
  return runCli(args, timeoutMs, { ...process.env, GRADCAM_MODEL_BASE_URL: '', ...env });
}

describe('the size limit', () => {
  test('a body that never ends: stopped at maxBytes, the .part deleted', async () => {
    const s = await serve((_req, res) => sendEndless(res, new Uint8Array(64 * 1024)));
    const dir = await cache();
    const t0 = Date.now();
    const err = await failure(fetchModel(urlTarget(s), options(dir, { maxBytes: 2 ** 20 }).opts));
    expect(err.kind).toBe('too-large');
    expect(err.message).toBe(`${s.url}/m.onnx: the server sent more than the download limit of 1.0 MiB (--max-bytes); the download is deleted`);
    expect(err.hint).toBe(`If the file is right, raise the limit: --max-bytes ${2 ** 21}.`);
    expect(await readdir(dir)).toEqual([]);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  test('a Content-Length of 1 TB: refused before a byte is written (default limit: 2 GiB)', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': String(1e12) });
      res.write(Buffer.alloc(1024));
    });
    const dir = await cache();
    const err = await failure(fetchModel(urlTarget(s), options(dir).opts));
    expect(err.kind).toBe('too-large');
    expect(err.message).toBe(`${s.url}/m.onnx: the server announces 931.3 GiB (1000000000000 bytes), more than the download limit of 2.0 GiB (--max-bytes); nothing was kept`);
    expect(err.hint).toBe('If the file is right, raise the limit: --max-bytes 1000000000000.');
    expect(await readdir(dir)).toEqual([]);
  });

  test('a Content-Length over the free disk space (the limit raised): refused before a byte is written', async () => {
    const announced = 2 ** 50; // 1 PiB: more than any test machine has free
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': String(announced) });
      res.write(Buffer.alloc(1024));
    });
    const dir = await cache();
    const err = await failure(fetchModel(urlTarget(s), options(dir, { maxBytes: 2 ** 51 }).opts));
    expect(err.kind).toBe('space');
    expect(err.message).toMatch(new RegExp(`^${s.url}/m\\.onnx: 1\\.0 PiB more are needed in ${dir}, but only [\\d.]+ [KMGT]iB are free$`));
    expect(await readdir(dir)).toEqual([]);
  });

  test('a manifest model larger than the limit: refused without a request', async () => {
    const s = await serve((req, res) => sendBytes(req, res, model));
    const dir = await cache();
    const target: DownloadTarget = { name: 'big-model', url: `${s.url}/big.onnx`, file: 'big.onnx', bytes: model.length, sha256: '0'.repeat(64) };
    const err = await failure(fetchModel(target, options(dir, { maxBytes: 1_000_000 }).opts));
    expect(err.kind).toBe('too-large');
    expect(err.message).toBe(`big-model: ${formatBytes(model.length)}, more than the download limit of 976.6 KiB (--max-bytes)`);
    expect(s.seen).toEqual([]);
  });

  test('the CLI: fetch, info --model and classify --model with --max-bytes: exit 1 naming the limit, nothing kept', async () => {
    const s = await serve((_req, res) => sendEndless(res, new Uint8Array(16 * 1024)));
    for (const args of [['fetch'], ['info', '--model'], ['classify', join(ROOT, 'weights', 'samples', 'chelsea.png'), '--model']]) {
      const dir = await cache();
      const run = await gradcam([...args, `${s.url}/m.onnx`, '--max-bytes', '100KB'], { GRADCAM_CACHE: dir });
      expect(run.code, run.stderr).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toContain(`gradcam: ${s.url}/m.onnx: the server sent more than the download limit of 97.7 KiB (--max-bytes); the download is deleted\nhint: If the file is right, raise the limit: --max-bytes 200000.\n`);
      expect(run.stderr).not.toContain('SwiftShader');
      expect(await readdir(dir)).toEqual([]);
    }
    const bad = await gradcam(['fetch', `${s.url}/m.onnx`, '--max-bytes', 'lots'], {});
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("gradcam: --max-bytes takes a size in bytes ≥ 1 (e.g. 500000000, 500MB, 2GiB), got 'lots'");
  });
});

describe('the time limits', () => {
  test('a transfer that trickles (never idle for the idle timeout): stopped by the deadline, the .part kept', async () => {
    const s = await serve((_req, res) => sendEndless(res, new Uint8Array([42]), 50, 1000));
    const dir = await cache();
    const t0 = Date.now();
    const err = await failure(fetchModel(urlTarget(s), options(dir, { deadlineMs: 700, timeoutMs: 5000 }).opts));
    const took = Date.now() - t0;
    expect(err.kind).toBe('deadline');
    expect(err.message).toMatch(new RegExp(`^${s.url}/m\\.onnx: stopped after (0\\.[7-9]|1(\\.\\d)?) s: a download may take 0\\.7 s \\(--max-time\\) at 0\\.0 MiB$`));
    expect(err.hint).toMatch(/^0\.0 MiB are kept in .*\.part: run the command again to continue, or allow more time: --max-time 2 \(seconds\)\.$/);
    expect(took).toBeGreaterThanOrEqual(650);
    expect(took).toBeLessThan(3000);
    const part = (await readdir(dir)).find((f) => f.endsWith('.part'))!;
    expect((await stat(join(dir, part))).size).toBeGreaterThan(0);
  });

  test('a retry wait that would pass the deadline is not started', async () => {
    const s = await serve((_req, res) => void res.writeHead(503, { 'retry-after': '5' }).end());
    const dir = await cache();
    const t0 = Date.now();
    const err = await failure(fetchModel(urlTarget(s), options(dir, { deadlineMs: 2000 }).opts));
    expect(err.kind).toBe('deadline');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(s.seen.length).toBe(1);
  });

  test('Retry-After: 999999 fails at once, saying how long the server asked to wait; a short one is waited for', async () => {
    const s = await serve((_req, res) => void res.writeHead(503, { 'retry-after': '999999' }).end());
    const dir = await cache();
    const t0 = Date.now();
    const err = await failure(fetchModel(urlTarget(s), options(dir).opts));
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(err.kind).toBe('retry-after');
    expect(err.message).toBe(`${s.url}/m.onnx: HTTP 503 Service Unavailable: the server asks to wait 999999 s before trying again (Retry-After), more than the 1 min gradcam waits`);
    expect(err.hint).toBe('run the command again later.');
    expect(s.seen.length).toBe(1);

    // Within the bound (here lowered to 2 s), the wait is honoured even when longer than the backoff.
    s.handle((req, res, n) => (n === 1 ? void res.writeHead(429, { 'retry-after': '1' }).end() : sendBytes(req, res, model)));
    const t1 = Date.now();
    const ok = await fetchModel(urlTarget(s, '/ok.onnx'), options(dir, { maxRetryAfterMs: 2000 }).opts);
    expect(ok.status).toBe('downloaded');
    expect(Date.now() - t1).toBeGreaterThanOrEqual(950); // Retry-After: 1, not the 20 ms backoff (timer and clock granularity aside)
    // Beyond it (lowered to 0.5 s), Retry-After: 1 is refused.
    s.handle((_req, res) => void res.writeHead(503, { 'retry-after': '1' }).end());
    const refused = await failure(fetchModel(urlTarget(s, '/again.onnx'), options(dir, { maxRetryAfterMs: 500 }).opts));
    expect(refused.kind).toBe('retry-after');
    expect(refused.message).toContain('asks to wait 1 s before trying again (Retry-After), more than the 0.5 s gradcam waits');
  });

  test('the CLI: --max-time stops a trickling download with exit 1, naming the option', async () => {
    const s = await serve((_req, res) => sendEndless(res, new Uint8Array([1, 2, 3]), 100, 1000));
    const dir = await cache();
    const t0 = Date.now();
    const run = await gradcam(['fetch', `${s.url}/slow.onnx`, '--max-time', '1'], { GRADCAM_CACHE: dir });
    expect(run.code, run.stderr).toBe(1);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(run.stderr).toMatch(/gradcam: .*slow\.onnx: stopped after 1(\.\d)? s: a download may take 1 s \(--max-time\) at 0\.0 MiB\nhint: 0\.0 MiB are kept in .*: run the command again to continue, or allow more time: --max-time 2 \(seconds\)\.\n/);
    const bad = await gradcam(['fetch', `${s.url}/slow.onnx`, '--max-time', '0'], {});
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("gradcam: --max-time takes a number of seconds > 0, got '0'");
  });
});

describe('credentials in URLs', () => {
  test('sent to the server, never shown: the target name, errors, and the log', async () => {
    const s = await serve((req, res) => (req.url === '/missing.onnx' ? void res.writeHead(404).end() : sendBytes(req, res, model)));
    const port = new URL(s.url).port;
    const url = (path: string) => `http://user:${PASSWORD}@127.0.0.1:${port}${path}`;
    expect(targetForUrl(url('/x.onnx')).name).toBe(`http://***@127.0.0.1:${port}/x.onnx`);
    const dir = await cache();
    const err = await failure(fetchModel(targetForUrl(url('/missing.onnx')), options(dir).opts));
    expect(err.message).toBe(`http://***@127.0.0.1:${port}/missing.onnx: HTTP 404 Not Found from http://***@127.0.0.1:${port}/missing.onnx`);
    const { opts, lines } = options(dir);
    await fetchModel(targetForUrl(url('/x.onnx')), opts);
    expect(lines.join('\n')).not.toContain(PASSWORD);
    expect(lines.join('\n')).toContain(`http://***@127.0.0.1:${port}/x.onnx`);
    expect(s.seen.map((r) => r.authorization)).toEqual(Array(2).fill(`Basic ${Buffer.from(`user:${PASSWORD}`).toString('base64')}`));
  });

  test('the CLI: info --model URL and fetch print http://***@host/...', async () => {
    const s = await serve((req, res) => (req.url === '/missing.onnx' ? void res.writeHead(404).end() : sendBytes(req, res, model)));
    const port = new URL(s.url).port;
    const dir = await cache();
    const first = await gradcam(['info', '--model', `http://me:${PASSWORD}@127.0.0.1:${port}/x.onnx`], { GRADCAM_CACHE: dir });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`model      http://***@127.0.0.1:${port}/x.onnx (`);
    const again = await gradcam(['info', '--model', `http://me:${PASSWORD}@127.0.0.1:${port}/x.onnx`, '--json', '-'], { GRADCAM_CACHE: dir });
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).model).toBe(`http://***@127.0.0.1:${port}/x.onnx`);
    const missing = await gradcam(['fetch', `http://me:${PASSWORD}@127.0.0.1:${port}/missing.onnx`], { GRADCAM_CACHE: dir });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`gradcam: http://***@127.0.0.1:${port}/missing.onnx: HTTP 404 Not Found from http://***@127.0.0.1:${port}/missing.onnx\n`);
    const badUrl = await gradcam(['fetch', 'googlenet-12', '--url', `ftp://me:${PASSWORD}@example.com/x`], { GRADCAM_CACHE: dir });
    expect(badUrl.code).toBe(2);
    for (const run of [first, again, missing, badUrl]) expect(run.stdout + run.stderr).not.toContain(PASSWORD);
  });
});

describe('the cache folder', () => {
  test('GRADCAM_CACHE under /proc: a clear error at once, not a hang', async () => {
    for (const cacheDir of ['/proc/nonexistent', '/proc/nonexistent/a/b']) {
      const t0 = Date.now();
      const run = await gradcam(['fetch', 'http://127.0.0.1:1/x.onnx'], { GRADCAM_CACHE: cacheDir }, 15_000);
      expect(run.signal, 'killed: the run did not end by itself').toBeNull();
      expect(run.code, run.stderr).toBe(1);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(run.stderr).toBe(`gradcam: ${cacheDir}: cannot create the cache folder (/proc does not allow new folders)\nhint: Set GRADCAM_CACHE to a folder you can write to.\n`);
    }
    expect(existsSync('/proc/nonexistent')).toBe(false);
  });
});
