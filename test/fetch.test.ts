/**
 * Downloading models (weights/fetch.ts, `gradcam fetch`, `--model URL`), against a local HTTP
 * server on 127.0.0.1 (test/helpers/model-server.ts) that serves a generated GoogLeNet
 * (googlenet-zoo-seeded, 28 MB) and misbehaves on purpose. Nothing is downloaded from the network.
 *
 * - the right file: downloaded, SHA-256 verified, renamed into place (no .part, no lock left),
 *   progress reported; found in the cache the next time (no request); a damaged cached file is
 *   replaced; the progress display (terminal bar, plain periodic lines otherwise)
 * - a wrong checksum: the error names both hashes; neither the file nor the .part is left
 * - the wrong size (announced, or more bytes sent than expected): an error, nothing left
 * - a connection dropped halfway: retried with `Range: bytes=N-`, byte-identical result
 * - a stalled transfer (no data for timeoutMs), 503s (retried), a redirect (followed)
 * - too many failures in a row: a clear error, the .part kept for the next run
 * - a .part left by an earlier run: continued with Range (in process, and a CLI run killed with
 *   SIGKILL then run again); a .part that is already whole (416); a longer .part (start over)
 * - a server that ignores Range (200): starts over, right result
 * - 404: a clear error, exit 1 from the CLI, no file left; GRADCAM_MODEL_BASE_URL is used
 * - connection refused: the offline message, at once (no retries), in process and from the CLI
 * - `gradcam info --model URL`: downloaded once, the cached file reused (the server sees one request)
 * - the lock: a stale one (dead pid) is taken over, a live one is waited for
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { downloadReporter } from '../src/models/progress.ts';
import { type DownloadError, type DownloadProgress, type DownloadTarget, fetchModel, type FetchOptions, targetForUrl } from '../weights/fetch.ts';
import { generateModelBytes } from '../weights/generate/index.ts';
import { gradcam as runCli, type Run } from './helpers/cli.ts';
import { closedPort, type ModelServer, sendBytes, startServer } from './helpers/model-server.ts';


let bytes: Uint8Array;
let sha256: string;
let base: string;
let server: ModelServer | undefined;
let counter = 0;

beforeAll(async () => {
  bytes = generateModelBytes('googlenet-zoo-seeded');
  sha256 = createHash('sha256').update(bytes).digest('hex');
  base = await mkdtemp(join(tmpdir(), 'gradcam-fetch-test-'));
});

afterEach(async () => {
  await server?.close();
  server = undefined;
});

afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

/** A fresh, empty cache folder. */
async function cache(): Promise<string> {
  const dir = join(base, `cache-${counter++}`);
  await mkdir(dir);
  return dir;
}

async function serve(handler: Parameters<typeof startServer>[0]): Promise<ModelServer> {
  server = await startServer(handler);
  return server;
}

/** A manifest-like entry for the served model. */
function target(s: ModelServer, over: Partial<DownloadTarget> = {}): DownloadTarget {
  return { name: 'test-model', url: `${s.url}/test-model.onnx`, file: 'test-model.onnx', bytes: bytes.length, sha256, ...over };
}

/** Fast retries, and the log and progress events collected. */
function options(dir: string, extra: FetchOptions = {}) {
  const lines: string[] = [];
  const events: DownloadProgress[] = [];
  const opts: FetchOptions = {
    cacheDir: dir, retryDelayMs: 20, maxRetryDelayMs: 200, retryBudgetMs: 20_000, timeoutMs: 5000,
    log: (l) => lines.push(l), onProgress: (p) => events.push({ ...p }), ...extra,
  };
  return { opts, lines, events };
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** The file is the served model, and nothing else is left in the cache folder. */
async function expectOnly(dir: string, file: string): Promise<void> {
  const got = await readFile(join(dir, file));
  expect(got.length).toBe(bytes.length);
  expect(sha(got)).toBe(sha256);
  expect(await readdir(dir)).toEqual([file]);
}

async function expectError(p: Promise<unknown>): Promise<DownloadError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err, 'expected the download to fail').toBeInstanceOf(Error);
  return err as DownloadError;
}

/** Runs the bundled CLI asynchronously (the test server lives in this process), with no model mirror set. */
function gradcam(args: string[], env: Record<string, string>, opts: { onSpawn?: (kill: () => void) => void } = {}): Promise<Run> {
  return runCli(args, 60_000, { ...process.env, GRADCAM_MODEL_BASE_URL: '', ...env }, opts.onSpawn);
}

async function until(what: string, cond: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('fetchModel', () => {
  test('the right file: downloaded, verified, renamed into place, progress reported; then found in the cache', async () => {
    const s = await serve((req, res) => sendBytes(req, res, bytes));
    const dir = await cache();
    const { opts, lines, events } = options(dir);
    const result = await fetchModel(target(s), opts);
    expect(result).toMatchObject({ path: join(dir, 'test-model.onnx'), bytes: bytes.length, sha256, status: 'downloaded', verified: true, resumedFrom: 0, requests: 1 });
    await expectOnly(dir, 'test-model.onnx'); // no .part, no .lock
    expect(s.seen).toEqual([{ path: '/test-model.onnx', range: undefined, ifRange: undefined }]);
    expect(lines[0]).toBe(`downloading test-model (26.7 MiB) from ${s.url}/test-model.onnx`);
    expect(lines.at(-1)).toMatch(/^test-model: 26\.7 MiB in \d+\.\d s, SHA-256 verified: .*test-model\.onnx$/);
    // Progress: from 0, never backwards, the total known, ending with one 'done' event at the full size.
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(events[0]).toMatchObject({ received: 0, total: bytes.length, done: false });
    for (let i = 1; i < events.length; i++) expect(events[i].received).toBeGreaterThanOrEqual(events[i - 1].received);
    expect(events.filter((e) => e.done)).toEqual([{ name: 'test-model', received: bytes.length, total: bytes.length, resumedFrom: 0, done: true }]);

    // The next time: verified (hashed) and kept, no request.
    const again = await fetchModel(target(s), options(dir).opts);
    expect(again).toMatchObject({ status: 'cached', verified: true, sha256, requests: 0 });
    expect(s.seen.length).toBe(1);

    // A damaged cached file (same size, other bytes): said, and downloaded again.
    const damaged = Uint8Array.from(bytes);
    damaged[1000] ^= 1;
    await writeFile(join(dir, 'test-model.onnx'), damaged);
    const quick = await fetchModel(target(s), options(dir, { verifyExisting: 'size' }).opts);
    expect(quick.status).toBe('cached'); // the cheap check, for every command's use, only looks at the size
    const repair = options(dir);
    expect((await fetchModel(target(s), repair.opts)).status).toBe('downloaded');
    expect(repair.lines[0]).toMatch(/test-model\.onnx is damaged \(SHA-256 [0-9a-f]{64}, expected [0-9a-f]{64}\): downloading it again$/);
    await expectOnly(dir, 'test-model.onnx');
  });

  test('a wrong checksum: the error names both hashes; no file and no .part are left', async () => {
    const s = await serve((req, res) => sendBytes(req, res, bytes));
    const dir = await cache();
    const wrong = 'ab'.repeat(32);
    const err = await expectError(fetchModel(target(s, { sha256: wrong }), options(dir).opts));
    expect(err.kind).toBe('checksum');
    expect(err.message).toBe(`test-model: SHA-256 mismatch: expected ${wrong}, got ${sha256}; the download is deleted`);
    expect(await readdir(dir)).toEqual([]);
  });

  test('the wrong size: announced (Content-Length) or sent (chunked, longer than the manifest says)', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/short.onnx') return void res.writeHead(200, { 'content-length': 1000 }).end(Buffer.from(bytes.subarray(0, 1000)));
      res.writeHead(200, { 'content-type': 'application/octet-stream' }); // no length: chunked
      res.write(Buffer.from(bytes));
      res.end(Buffer.from('and more'));
    });
    const dir = await cache();
    const announced = await expectError(fetchModel(target(s, { url: `${s.url}/short.onnx` }), options(dir).opts));
    expect(announced.kind).toBe('size');
    expect(announced.message).toBe(`test-model: the server has 1000 bytes, but ${bytes.length} are expected`);
    const sent = await expectError(fetchModel(target(s), options(dir).opts));
    expect(sent.kind).toBe('size');
    expect(sent.message).toBe(`test-model: the server sent more than the ${bytes.length} bytes expected; the download is deleted`);
    expect(await readdir(dir)).toEqual([]);
    expect(s.seen.length).toBe(2); // no retries
  });

  test('a connection dropped halfway: retried with Range: bytes=N-, the result byte-identical', async () => {
    const n = 12_345_677;
    const s = await serve((req, res, i) => sendBytes(req, res, bytes, i === 0 ? { dropAfter: n } : {}));
    const dir = await cache();
    const { opts, lines } = options(dir);
    const result = await fetchModel(target(s), opts);
    expect(s.seen.map((r) => r.range)).toEqual([undefined, `bytes=${n}-`]);
    expect(result).toMatchObject({ status: 'downloaded', verified: true, requests: 2 });
    await expectOnly(dir, 'test-model.onnx');
    expect(lines.some((l) => /^test-model: the connection was (reset|dropped) at 11\.8 MiB of 26\.7 MiB; retrying in [\d.]+ s \(retry 1 of 5\)$/.test(l)), lines.join('\n')).toBe(true);
  });

  test('a stalled transfer, 503s and a redirect: a timeout and retries, the redirect followed', async () => {
    const n = 5_000_000;
    const s = await serve((req, res, i) => {
      if (req.url === '/moved.onnx') return void res.writeHead(302, { location: '/test-model.onnx' }).end();
      if (i === 1) return void sendBytes(req, res, bytes, { stallAfter: n });
      if (i === 3 || i === 5) return void res.writeHead(503, { 'retry-after': '0' }).end('busy');
      sendBytes(req, res, bytes);
    });
    const dir = await cache();
    const { opts, lines } = options(dir, { timeoutMs: 1000 });
    const result = await fetchModel(target(s, { url: `${s.url}/moved.onnx` }), opts);
    expect(s.seen.map((r) => `${r.path} ${r.range ?? ''}`.trim())).toEqual([
      '/moved.onnx', '/test-model.onnx', // stalls after n bytes
      `/moved.onnx bytes=${n}-`, '/test-model.onnx bytes=5000000-', // 503
      `/moved.onnx bytes=${n}-`, `/test-model.onnx bytes=${n}-`, // 503
      `/moved.onnx bytes=${n}-`, `/test-model.onnx bytes=${n}-`, // the rest
    ]);
    expect(result.requests).toBe(4);
    await expectOnly(dir, 'test-model.onnx');
    expect(lines.filter((l) => l.includes('retrying')).map((l) => l.replace(/retrying in [\d.]+ s/, 'retrying'))).toEqual([
      'test-model: no data for 1 s at 4.8 MiB of 26.7 MiB; retrying (retry 1 of 5)',
      'test-model: HTTP 503 Service Unavailable at 4.8 MiB of 26.7 MiB; retrying (retry 2 of 5)',
      'test-model: HTTP 503 Service Unavailable at 4.8 MiB of 26.7 MiB; retrying (retry 3 of 5)',
    ]);
  });

  test('failures in a row without progress: gives up with a clear error; the .part is kept for the next run', async () => {
    const n = 1_000_000;
    const s = await serve((req, res, i) => (i === 0 ? sendBytes(req, res, bytes, { dropAfter: n }) : res.writeHead(502).end()));
    const dir = await cache();
    const err = await expectError(fetchModel(target(s), options(dir, { retries: 3 }).opts));
    expect(err.kind).toBe('gave-up');
    expect(err.message).toBe('test-model: download failed after 4 requests: HTTP 502 Bad Gateway at 1.0 MiB of 26.7 MiB');
    expect(err.hint).toBe(`1.0 MiB are kept in ${join(dir, 'test-model.onnx.part')}: run the command again to continue from there.`);
    expect(s.seen.length).toBe(4); // the drop (new data), then 3 retries, all 502
    expect(await readdir(dir)).toEqual(['test-model.onnx.part']);
    expect((await stat(join(dir, 'test-model.onnx.part'))).size).toBe(n);
  });

  test('a .part left by an earlier run is continued with Range', async () => {
    const k = 7_654_321;
    const s = await serve((req, res) => sendBytes(req, res, bytes));
    const dir = await cache();
    await writeFile(join(dir, 'test-model.onnx.part'), bytes.subarray(0, k));
    const { opts, lines, events } = options(dir);
    const result = await fetchModel(target(s), opts);
    expect(s.seen.map((r) => r.range)).toEqual([`bytes=${k}-`]);
    expect(result).toMatchObject({ status: 'downloaded', verified: true, resumedFrom: k, requests: 1 });
    expect(lines[0]).toBe(`continuing the download of test-model (26.7 MiB) at 7.3 MiB, from ${s.url}/test-model.onnx`);
    expect(events[0]).toMatchObject({ received: k, resumedFrom: k });
    await expectOnly(dir, 'test-model.onnx');
  });

  test('a .part that is whole already (416: nothing after it) and a .part longer than the file', async () => {
    const s = await serve((req, res) => sendBytes(req, res, bytes));
    // Size unknown (as for a URL), SHA-256 known: the server's 416 says the .part is whole.
    const dir = await cache();
    await writeFile(join(dir, 'test-model.onnx.part'), bytes);
    const whole = await fetchModel(target(s, { bytes: undefined }), options(dir).opts);
    expect(s.seen.map((r) => r.range)).toEqual([`bytes=${bytes.length}-`]);
    expect(whole).toMatchObject({ status: 'downloaded', verified: true });
    await expectOnly(dir, 'test-model.onnx');

    // Longer than the file: 416 without a match, so the download starts over (no Range).
    await rm(join(dir, 'test-model.onnx'));
    s.seen.length = 0;
    await writeFile(join(dir, 'test-model.onnx.part'), Buffer.concat([bytes, Buffer.from('junk')]));
    const longer = options(dir);
    await fetchModel(target(s, { bytes: undefined }), longer.opts);
    expect(s.seen.map((r) => r.range)).toEqual([`bytes=${bytes.length + 4}-`, undefined]);
    expect(longer.lines[1]).toMatch(/HTTP 416.*starting over/);
    await expectOnly(dir, 'test-model.onnx');

    // With the size known, a longer .part is discarded without asking the server.
    await rm(join(dir, 'test-model.onnx'));
    s.seen.length = 0;
    await writeFile(join(dir, 'test-model.onnx.part'), Buffer.concat([bytes, Buffer.from('junk')]));
    await fetchModel(target(s), options(dir).opts);
    expect(s.seen.map((r) => r.range)).toEqual([undefined]);
    await expectOnly(dir, 'test-model.onnx');
  });

  test('a server that ignores Range (always 200): the download starts over and is right', async () => {
    const n = 10_000_000;
    const s = await serve((req, res, i) => sendBytes(req, res, bytes, { ignoreRange: true, ...(i === 0 ? { dropAfter: n } : {}) }));
    const dir = await cache();
    const { opts, lines } = options(dir);
    const result = await fetchModel(target(s), opts);
    expect(s.seen.map((r) => r.range)).toEqual([undefined, `bytes=${n}-`]);
    expect(result).toMatchObject({ status: 'downloaded', verified: true, requests: 2 });
    expect(lines).toContain('the server ignored the range request (HTTP 200, not 206): downloading test-model from the start');
    await expectOnly(dir, 'test-model.onnx');
  });

  test('404: a clear error, no retry, no file left', async () => {
    const s = await serve((_req, res) => res.writeHead(404).end('Not Found'));
    const dir = await cache();
    const err = await expectError(fetchModel(target(s, { url: `${s.url}/missing.onnx` }), options(dir).opts));
    expect(err.kind).toBe('http');
    expect(err.message).toBe(`test-model: HTTP 404 Not Found from ${s.url}/missing.onnx`);
    expect(s.seen.length).toBe(1);
    expect(await readdir(dir)).toEqual([]);
  });

  test('connection refused: the offline message at once, no retries', async () => {
    const port = await closedPort();
    const dir = await cache();
    const t0 = Date.now();
    const err = await expectError(fetchModel(
      { name: 'test-model', url: `http://127.0.0.1:${port}/test-model.onnx`, file: 'test-model.onnx', bytes: bytes.length, sha256 },
      options(dir, { retryDelayMs: 1000, retryBudgetMs: 3000 }).opts,
    ));
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(err.kind).toBe('unreachable');
    expect(err.message).toBe(`cannot reach 127.0.0.1:${port}: connection refused (ECONNREFUSED); check the network, or download the file yourself and pass --model FILE`);
    expect(err.hint).toContain(`saved as ${join(dir, 'test-model.onnx')}, it is used from there`);
    expect(await readdir(dir)).toEqual([]);
  });

  test('the lock: a stale one (dead process) is taken over; a live one is waited for', async () => {
    const s = await serve((req, res) => sendBytes(req, res, bytes));
    const dir = await cache();
    // A pid that is not running: spawn a process and wait until it has ended.
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => dead.on('close', r));
    await writeFile(join(dir, 'test-model.onnx.lock'), `${dead.pid}\n`);
    expect((await fetchModel(target(s), options(dir).opts)).status).toBe('downloaded');
    expect(existsSync(join(dir, 'test-model.onnx.lock'))).toBe(false);

    await writeFile(join(dir, 'live.onnx.lock'), `${process.ppid}\n`);
    const { opts, lines } = options(dir, { lockWaitMs: 300 });
    const err = await expectError(fetchModel(target(s, { file: 'live.onnx' }), opts));
    expect(err.kind).toBe('locked');
    expect(lines).toEqual([`waiting for process ${process.ppid}, which is downloading test-model already`]);
  });
});

describe('the progress display', () => {
  const p = (received: number, done = false): DownloadProgress => ({ name: 'googlenet-12', received, total: 28_021_836, resumedFrom: 0, done });

  test('on a terminal: one line redrawn in place with bytes, rate and time left; cleared for messages', () => {
    let t = 0;
    let out = '';
    const info: string[] = [];
    const r = downloadReporter((l) => info.push(l), { isTTY: true, columns: 100, write: (s) => (out += s) }, { now: () => t });
    for (let i = 0; i <= 10; i++) {
      t = i * 500;
      r.progress(p(i * 1_048_576));
    }
    const last = out.split('\r\x1b[K').at(-1)!;
    expect(last).toBe('googlenet-12 [###########-------------------]  37%  10.0/26.7 MiB  2.0 MiB/s  0:08 left');
    expect(last.length).toBeLessThan(100);
    r.log('gradcam: a message');
    expect(out.endsWith('\r\x1b[K')).toBe(true); // the bar is cleared before the message
    expect(info).toEqual(['gradcam: a message']);
    r.progress(p(28_021_836, true));
  });

  test('not a terminal: a plain line every interval, not one per event', () => {
    let t = 0;
    const info: string[] = [];
    const r = downloadReporter((l) => info.push(l), { isTTY: false, write: () => { throw new Error('no drawing on a pipe'); } }, { now: () => t, intervalMs: 10_000 });
    for (let i = 0; i <= 250; i++) {
      t = i * 100; // 25 s of events every 100 ms
      r.progress(p(i * 100_000));
    }
    r.progress(p(28_021_836, true));
    expect(info).toEqual([
      'gradcam: googlenet-12: 9.5/26.7 MiB (35%), 977 KiB/s, about 0:18 left',
      'gradcam: googlenet-12: 19.1/26.7 MiB (71%), 977 KiB/s, about 0:08 left',
    ]);
  });
});

describe('the CLI', () => {
  test('fetch: 404 is exit 1 with a clear message and no file; GRADCAM_MODEL_BASE_URL is where it looks', async () => {
    const s = await serve((_req, res) => res.writeHead(404).end());
    const dir = await cache();
    const run = await gradcam(['fetch', 'googlenet-12', '--url', `${s.url}/missing.onnx`], { GRADCAM_CACHE: dir });
    expect(run.code, run.stderr).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(`gradcam: googlenet-12: HTTP 404 Not Found from ${s.url}/missing.onnx\nhint: `);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(await readdir(dir)).toEqual([]);

    const mirror = await gradcam(['fetch', 'googlenet-9'], { GRADCAM_CACHE: dir, GRADCAM_MODEL_BASE_URL: `${s.url}/mirror/` });
    expect(mirror.code, mirror.stderr).toBe(1);
    expect(s.seen.map((r) => r.path)).toEqual(['/missing.onnx', '/mirror/googlenet-9.onnx']);
    expect(mirror.stderr).toContain(`gradcam: downloading googlenet-9 (26.7 MiB) from ${s.url}/mirror/googlenet-9.onnx\n`);
  });

  test('fetch: connection refused is the offline message, exit 1, quickly', async () => {
    const port = await closedPort();
    const t0 = Date.now();
    const run = await gradcam(['fetch', '--url', `http://127.0.0.1:${port}/googlenet-12.onnx`], { GRADCAM_CACHE: await cache() });
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toContain(`gradcam: cannot reach 127.0.0.1:${port}: connection refused (ECONNREFUSED); check the network, or download the file yourself and pass --model FILE\n`);
    expect(run.stderr).not.toContain('retrying');
  });

  test('info --model URL: downloaded once into the cache, the cached file reused the next time', async () => {
    const s = await serve((req, res) => sendBytes(req, res, bytes));
    const dir = await cache();
    const url = `${s.url}/models/x.onnx`;
    const file = targetForUrl(url).file;
    expect(file).toMatch(/^url-[0-9a-f]{12}-x\.onnx$/);
    const first = await gradcam(['info', '--model', url], { GRADCAM_CACHE: dir });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`model      ${url} (${join(dir, file)})`);
    expect(first.stdout).toMatch(/ONNX ops +143 nodes: Conv 57/);
    expect(first.stderr).toContain(`gradcam: no checksum is known for ${url}: the file is used as downloaded (its SHA-256 is ${sha256})`);
    await expectOnly(dir, file);

    const second = await gradcam(['info', '--model', url], { GRADCAM_CACHE: dir });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toBe(`gradcam: using ${join(dir, file)}, downloaded earlier from ${url}\n`);
    expect(second.stdout).toBe(first.stdout);
    expect(s.seen.length).toBe(1);
  });

  test('a run killed mid-download leaves only a .part; the next run continues it with Range', async () => {
    const n = 9_000_000;
    const s = await serve((req, res, i) => sendBytes(req, res, bytes, i === 0 ? { stallAfter: n } : {}));
    const dir = await cache();
    const url = `${s.url}/y.onnx`;
    const part = join(dir, `${targetForUrl(url).file}.part`);
    const killed = await gradcam(['info', url], { GRADCAM_CACHE: dir }, {
      onSpawn: (kill) => void until('the .part to grow', async () => existsSync(part) && (await stat(part)).size >= n).then(kill),
    });
    expect(killed.signal).toBe('SIGKILL');
    expect((await readdir(dir)).sort()).toEqual([`${targetForUrl(url).file}.lock`, `${targetForUrl(url).file}.part`]); // a stale lock, no final file
    expect((await stat(part)).size).toBe(n);

    const next = await gradcam(['info', url], { GRADCAM_CACHE: dir });
    expect(next.code, next.stderr).toBe(0);
    expect(s.seen.map((r) => r.range)).toEqual([undefined, `bytes=${n}-`]);
    expect(next.stderr).toContain(`gradcam: continuing the download of ${url} at 8.6 MiB\n`);
    await expectOnly(dir, targetForUrl(url).file);
  });
});
