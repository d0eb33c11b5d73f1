/**
 * Downloading models into the cache (Node only): the manifest's 'onnx-zoo' entries, checked against
 * their size and SHA-256, and models given by URL.
 *
 * - The data goes to `<file>.part` and is renamed to `<file>` only when it is complete and verified:
 *   a file under the final name is always whole. A bad checksum deletes the `.part` and says so.
 * - An interrupted download (a dropped connection in this run, or a `.part` left by an earlier,
 *   killed run) continues with `Range: bytes=N-`; a server that answers 200 instead of 206 is read
 *   from the start; 416 means the `.part` is already whole (or longer than the file: start over).
 * - Transient failures (connection reset or dropped, 5xx, 408, 429, no data for `timeoutMs`) are
 *   retried with exponential backoff: at most `retries` failures in a row without new data, and no
 *   retry after `retryBudgetMs`. A host that cannot be reached at all (DNS failure, connection
 *   refused, network unreachable, no answer to the connect) fails at once, with one message that
 *   says how to do without the network.
 * - Redirects are followed (GitHub serves LFS files from media.githubusercontent.com); each retry
 *   starts again from the original URL (redirect targets can be short-lived signed URLs).
 * - Limits: a download of unknown size (a URL) has at most `maxBytes` (default 2 GiB, what an ONNX
 *   file can hold); a manifest model no more than its declared size. A Content-Length over the
 *   limit, or over the free space of the cache's file system, is refused before a byte is written.
 *   The whole download (tries, waits) stops after `deadlineMs` (default 30 min; the .part is kept),
 *   and a Retry-After longer than `maxRetryAfterMs` (default 60 s) is not waited for. Each message
 *   says which limit was hit and how to raise it.
 * - A URL's user name and password never appear in a message (`http://***@host/...`).
 * - `<file>.lock` (holding the pid) keeps two processes from appending to the same `.part`; a lock
 *   whose process is gone is taken over; a live one is waited for.
 *
 * node:http/https rather than the global fetch: the transfer is a byte stream appended to a file, and
 * what matters is exact control of it: the Range/Content-Range/416 exchange, an idle timeout on the
 * socket (and knowing whether it was still connecting), the error codes of the socket (ECONNREFUSED,
 * ENOTFOUND, ECONNRESET) without undici's 'fetch failed' wrapping, and no pooled keep-alive socket
 * holding the process open afterwards. Neither honours HTTP(S)_PROXY in Node 20.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, createReadStream, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { readFile, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GradcamError } from '../src/errors.ts';
import { fileErrorReason, formatBytes, makeFolders, MAX_INPUT_BYTES } from '../src/node/files.ts';
import { modelCacheDir } from '../src/node/paths.ts';
import type { ManifestModel } from './manifest.ts';

/** What to download, and what it must be. */
export interface DownloadTarget {
  /** What the user calls it (a manifest name, or the URL): used in messages. */
  name: string;
  url: string;
  /** The file name in the cache folder. */
  file: string;
  /** The expected size in bytes, when known. */
  bytes?: number;
  /** The expected SHA-256 (lowercase hex), when known. */
  sha256?: string;
}

export interface DownloadProgress {
  name: string;
  /** Bytes in the `.part` file (or the final file when done), resumed bytes included. */
  received: number;
  /** The whole file's size, when known (the manifest, Content-Length or Content-Range). */
  total?: number;
  /** The bytes that were there when this request started (resumed, not downloaded now). */
  resumedFrom: number;
  /** The last event of a download: the file is complete and verified. */
  done: boolean;
}

export interface FetchOptions {
  /** The cache folder (default: modelCacheDir()). */
  cacheDir?: string;
  /** Download again even when a verified file is there (a `.part` is discarded too). */
  force?: boolean;
  /**
   * How a file that is already there is checked: 'hash' (size and SHA-256; default) or 'size'
   * (cheap, for a model used on every command; only verified files are ever renamed into place).
   */
  verifyExisting?: 'hash' | 'size';
  /** Retries after a failed try, counted from the last try that brought new data (default 5). */
  retries?: number;
  /** The first backoff delay; it doubles up to maxRetryDelayMs (default 1 s, 30 s). */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** No retry starts after this long since the download began (default 10 min). */
  retryBudgetMs?: number;
  /** A connection idle for this long (connecting included) is dropped (default 30 s). */
  timeoutMs?: number;
  /**
   * The most bytes a download of unknown size may have (default 2 GiB − 1 byte, the most an ONNX
   * file can hold); a target whose known size is larger is refused.
   */
  maxBytes?: number;
  /** The whole download (every try and wait) stops after this long; the .part is kept (default 30 min). */
  deadlineMs?: number;
  /** A Retry-After longer than this is not waited for: the download fails at once (default 60 s). */
  maxRetryAfterMs?: number;
  /** Progress events at most this often (default 100 ms), plus a final one. */
  progressIntervalMs?: number;
  /** How long to wait for another process's lock before giving up (default 15 min). */
  lockWaitMs?: number;
  /** Lines for the user, without a prefix. */
  log?: (line: string) => void;
  onProgress?: (p: DownloadProgress) => void;
}

export interface FetchResult {
  path: string;
  bytes: number;
  /** Known when the file was downloaded now or hashed ('hash' check). */
  sha256?: string;
  /** 'downloaded' now, or 'cached': there already and it passed the check. */
  status: 'downloaded' | 'cached';
  /** Whether the SHA-256 was compared with a known value. */
  verified: boolean;
  /** Bytes reused from an earlier `.part` (0 for a fresh download). */
  resumedFrom: number;
  /** HTTP requests made (0 when cached). */
  requests: number;
}

export type DownloadErrorKind =
  'unreachable' | 'http' | 'size' | 'too-large' | 'space' | 'deadline' | 'retry-after' | 'checksum' | 'gave-up' | 'locked' | 'file' | 'url';

/** The default of FetchOptions.maxBytes: 2 GiB − 1 byte (Node reads no more at once; protobuf holds no more). */
export const DEFAULT_MAX_DOWNLOAD_BYTES = MAX_INPUT_BYTES;
/** The default of FetchOptions.deadlineMs: 30 minutes. */
export const DEFAULT_DOWNLOAD_DEADLINE_MS = 30 * 60_000;
/** The default of FetchOptions.maxRetryAfterMs: 60 s. */
export const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;

/** A URL as shown in messages: its user name and password replaced by `***`. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1***@');
}

/** A duration in words: 90000 → "1.5 min", 2500 → "2.5 s". */
function fmtDuration(ms: number): string {
  return ms >= 60_000 ? `${+(ms / 60_000).toFixed(1)} min` : `${+(ms / 1000).toFixed(1)} s`;
}

/** A download that failed; `kind` says how (the message says it in words). */
export class DownloadError extends GradcamError {
  constructor(readonly kind: DownloadErrorKind, message: string, hint?: string) {
    super(message, hint);
    this.name = 'DownloadError';
  }
}

/** The download of a manifest entry; `url` (a mirror, or a test server) replaces the manifest's. */
export function targetForEntry(entry: ManifestModel, opts: { url?: string; baseUrl?: string } = {}): DownloadTarget {
  if (entry.kind !== 'onnx-zoo' || !entry.url) {
    throw new GradcamError(`'${entry.name}' is generated by the project, not downloaded`, `Run \`gradcam generate ${entry.name}\`.`);
  }
  let url = opts.url ?? entry.url;
  if (!opts.url && opts.baseUrl) url = `${opts.baseUrl.replace(/\/+$/, '')}/${basename(new URL(entry.url).pathname)}`;
  // (The name is the manifest's: a mirror's credentials never reach a message through it.)
  return { name: entry.name, url, file: `${entry.name}.onnx`, bytes: entry.bytes, sha256: entry.sha256?.toLowerCase() };
}

export function isHttpUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/**
 * The download of a model given by URL: no size or checksum known. The cache file is named
 * `url-<12 hex of the URL's SHA-256>-<the URL's base name>`, so the same URL finds the same file.
 * Its name in messages is the URL without credentials.
 */
export function targetForUrl(url: string): DownloadTarget {
  let base: string;
  try {
    base = decodeURIComponent(basename(new URL(url).pathname));
  } catch {
    throw new DownloadError('url', `not a valid URL: ${redactUrl(url)}`);
  }
  base = base.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(-80) || 'model.onnx';
  const key = createHash('sha256').update(url).digest('hex').slice(0, 12);
  return { name: redactUrl(url), url, file: `url-${key}-${base}` };
}

/** The path a target has in a cache folder. */
export function targetPath(target: DownloadTarget, cacheDir = modelCacheDir()): string {
  return join(cacheDir, target.file);
}

export const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/**
 * Makes sure `target` is in the cache, complete and verified, and returns where it is: a file
 * that is there already is checked (opts.verifyExisting) and kept; otherwise it is downloaded.
 */
export async function fetchModel(target: DownloadTarget, opts: FetchOptions = {}): Promise<FetchResult> {
  const dir = opts.cacheDir ?? modelCacheDir();
  const path = join(dir, target.file);
  const log = opts.log ?? (() => {});
  if (!URL.canParse(target.url) || !isHttpUrl(target.url)) throw new DownloadError('url', `${target.name}: not an http(s) URL: ${redactUrl(target.url)}`);
  if (!opts.force) {
    const found = await existing(path, target, opts.verifyExisting ?? 'hash');
    if (found?.ok) return found.result;
  }
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_DOWNLOAD_BYTES;
  if (target.bytes !== undefined && target.bytes > maxBytes) {
    throw new DownloadError('too-large', `${target.name}: ${formatBytes(target.bytes)}, more than the download limit of ${formatBytes(maxBytes)} (--max-bytes)`,
      `Raise the limit: --max-bytes ${target.bytes}.`);
  }
  try {
    await makeFolders(dir);
  } catch (err) {
    throw new DownloadError('file', `${dir}: cannot create the cache folder (${fileErrorReason(err)})`, 'Set GRADCAM_CACHE to a folder you can write to.');
  }
  const release = await lock(`${path}.lock`, target, opts.lockWaitMs ?? 15 * 60_000, log);
  try {
    // Under the lock: another process may have finished it meanwhile, or the file is damaged.
    if (opts.force) {
      await rm(path, { force: true });
      await rm(`${path}.part`, { force: true });
    } else {
      const found = await existing(path, target, opts.verifyExisting ?? 'hash');
      if (found?.ok) return found.result;
      if (found) {
        log(`${path} is damaged (${found.why}): downloading it again`);
        await rm(path, { force: true });
      }
    }
    return await download(target, path, opts, log);
  } finally {
    await release();
  }
}

type Existing = { ok: true; result: FetchResult } | { ok: false; why: string } | undefined;

/** The check of a file already in the cache: undefined when there is none. */
async function existing(path: string, target: DownloadTarget, mode: 'hash' | 'size'): Promise<Existing> {
  let size: number;
  try {
    const s = await stat(path);
    if (!s.isFile()) return { ok: false, why: 'not a file' };
    size = s.size;
  } catch {
    return undefined;
  }
  if (target.bytes !== undefined && size !== target.bytes) return { ok: false, why: `${size} bytes, expected ${target.bytes}` };
  let sha256: string | undefined;
  if (mode === 'hash' && target.sha256) {
    sha256 = (await hashFile(path)).hash.digest('hex');
    if (sha256 !== target.sha256) return { ok: false, why: `SHA-256 ${sha256}, expected ${target.sha256}` };
  }
  return { ok: true, result: { path, bytes: size, sha256, status: 'cached', verified: sha256 !== undefined, resumedFrom: 0, requests: 0 } };
}

async function hashFile(path: string): Promise<{ hash: Hash; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of createReadStream(path)) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new DownloadError('file', `${path}: cannot read (${fileErrorReason(err)})`);
  }
  return { hash, bytes };
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** Takes `<file>.lock` (pid inside); takes over a lock whose process is gone; waits for a live one. */
async function lock(lockPath: string, target: DownloadTarget, waitMs: number, log: (line: string) => void): Promise<() => Promise<void>> {
  const until = Date.now() + waitMs;
  let said = false;
  for (;;) {
    try {
      await writeFile(lockPath, `${process.pid}\n`, { flag: 'wx' });
      return () => rm(lockPath, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new DownloadError('file', `${lockPath}: cannot write (${fileErrorReason(err)})`, 'Set GRADCAM_CACHE to a folder you can write to.');
      }
    }
    const pid = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
    if (!alive(pid)) {
      await rm(lockPath, { force: true });
      continue;
    }
    if (Date.now() > until) {
      throw new DownloadError('locked', `${target.name}: another process (pid ${pid}) has been downloading it for too long`, `If it is gone, delete ${lockPath}.`);
    }
    if (!said) log(`waiting for process ${pid}, which is downloading ${target.name} already`);
    said = true;
    await sleep(250);
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Socket error codes that mean the host cannot be reached at all. */
const UNREACHABLE: Record<string, string> = {
  ENOTFOUND: 'DNS lookup failed, no such host',
  EAI_AGAIN: 'DNS lookup failed, temporarily',
  ECONNREFUSED: 'connection refused',
  ENETUNREACH: 'network unreachable',
  EHOSTUNREACH: 'host unreachable',
  ENETDOWN: 'network down',
  EHOSTDOWN: 'host down',
};

/** Why one try failed, and whether trying again may help. */
class TryFailure extends Error {
  constructor(message: string, readonly transient: boolean, readonly unreachable = false, readonly retryAfterMs?: number) {
    super(message);
  }
}

interface Attempt {
  host: string;
  timedOut: boolean;
  connectTimedOut: boolean;
  /** The request in flight: destroyed when the download's deadline passes. */
  req?: http.ClientRequest;
}

/** One GET; resolves with the response (any status), rejects with the socket's error. */
function get(url: URL, headers: Record<string, string>, timeoutMs: number, at: Attempt): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === 'https:' ? https : http;
    const req = client.get(url, { headers, agent: false, timeout: timeoutMs }, resolve);
    at.req = req;
    req.on('timeout', () => {
      at.timedOut = true;
      at.connectTimedOut = req.socket?.connecting ?? true;
      req.destroy();
    });
    req.on('error', reject);
  });
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** GET with redirects followed (at most 10); `at.host` is the host being talked to. */
async function openUrl(start: string, headers: Record<string, string>, timeoutMs: number, at: Attempt): Promise<{ res: http.IncomingMessage; url: URL }> {
  let url = new URL(start);
  for (let hop = 0; ; hop++) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new DownloadError('url', `cannot download ${redactUrl(url.href)}: only http and https URLs`);
    at.host = url.host;
    const res = await get(url, headers, timeoutMs, at);
    const location = res.headers.location;
    if (!REDIRECTS.has(res.statusCode ?? 0) || !location) return { res, url };
    res.resume();
    if (hop >= 10) throw new TryFailure(`too many redirects (last: ${redactUrl(url.href)})`, false);
    url = new URL(location, url);
  }
}

/** A socket or stream error, in words, classified. */
function failure(err: unknown, at: Attempt, timeoutMs: number): TryFailure {
  if (err instanceof TryFailure) return err;
  if (at.timedOut) {
    return at.connectTimedOut
      ? new TryFailure(`no answer within ${timeoutMs / 1000} s`, true, true)
      : new TryFailure(`no data for ${timeoutMs / 1000} s`, true);
  }
  const e = err as NodeJS.ErrnoException;
  const code = e?.code ?? '';
  if (UNREACHABLE[code]) return new TryFailure(`${UNREACHABLE[code]} (${code})`, true, true);
  if (code === 'ECONNRESET' || e?.message === 'aborted') return new TryFailure('the connection was reset', true);
  if (code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'EPIPE' || code === 'ECONNABORTED') return new TryFailure('the connection was dropped', true);
  if (code === 'ETIMEDOUT') return new TryFailure('the connection timed out', true);
  if (/^(ERR_SSL|CERT_|UNABLE_TO|DEPTH_ZERO|SELF_SIGNED)/.test(code)) return new TryFailure(`TLS error: ${e.message}`, false);
  return new TryFailure(e?.message ?? String(err), true);
}

function retryAfter(res: http.IncomingMessage): number | undefined {
  const h = res.headers['retry-after'];
  if (!h) return undefined;
  if (/^\d+$/.test(h)) return Number(h) * 1000;
  const t = Date.parse(h);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

/**
 * Reads a response body, handing each chunk to `take` as it arrives. Synchronous work in `take`
 * (the .part is written with writeSync) means every byte that arrived is on disk when the
 * connection fails: a stream's async iterator would drop what it had buffered. Rejects with the
 * socket's error, a TryFailure for a body that ended early, or what `take` throws.
 */
function receive(res: http.IncomingMessage, take: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    res.on('data', (chunk: Buffer) => {
      try {
        take(chunk);
      } catch (err) {
        reject(err);
        res.destroy();
      }
    });
    res.on('end', () => resolve());
    res.on('error', reject);
    res.on('close', () => {
      if (!res.complete) reject(new TryFailure('the connection was dropped', true));
    });
  });
}

function writeAllSync(fd: number, chunk: Buffer): void {
  for (let off = 0; off < chunk.length;) off += writeSync(fd, chunk, off, chunk.length - off);
}

async function download(target: DownloadTarget, path: string, opts: FetchOptions, log: (line: string) => void): Promise<FetchResult> {
  const part = `${path}.part`;
  const dir = dirname(path);
  const maxFailures = opts.retries ?? 5;
  const firstDelay = opts.retryDelayMs ?? 1000;
  const maxDelay = opts.maxRetryDelayMs ?? 30_000;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const interval = opts.progressIntervalMs ?? 100;
  const started = Date.now();
  const deadline = started + (opts.retryBudgetMs ?? 10 * 60_000);
  const at: Attempt = { host: new URL(target.url).host, timedOut: false, connectTimedOut: false };
  const shown = redactUrl(target.url);
  // The most bytes accepted: the known size, else the limit for downloads of unknown size.
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_DOWNLOAD_BYTES;
  const cap = target.bytes ?? maxBytes;
  const maxRetryAfter = opts.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
  // The overall deadline: the request in flight is destroyed when it passes; waits never outlast it.
  const deadlineMs = opts.deadlineMs ?? DEFAULT_DOWNLOAD_DEADLINE_MS;
  const stopAt = started + deadlineMs;
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    at.req?.destroy();
  }, deadlineMs);
  try {
    return await downloadUntil();
  } finally {
    clearTimeout(timer);
  }

  async function downloadUntil(): Promise<FetchResult> {
    // The hash always covers exactly the first `hashed` bytes of the .part (written, then hashed).
    let hash = createHash('sha256');
    let hashed = 0;
    let total = target.bytes;
    let requests = 0;
    let failures = 0;
    let delay = firstDelay;
    let reached = false;
    let noRange = false;
    let etag: string | undefined;
    const resumedFrom = await sizeOf(part);
    const size = total === undefined ? '' : ` (${mib(total)})`;
    const source = target.name === shown ? '' : `, from ${shown}`;
    log(resumedFrom > 0
      ? `continuing the download of ${target.name}${size} at ${mib(resumedFrom)}${source}`
      : `downloading ${target.name}${size}${source.replace(',', '')}`);

    const restart = async () => {
      await rm(part, { force: true });
      hash = createHash('sha256');
      hashed = 0;
    };
    const fail = (kind: DownloadErrorKind, message: string, hint?: string) => new DownloadError(kind, `${target.name}: ${message}`, hint);
    const where = () => (total !== undefined ? ` at ${mib(hashed)} of ${mib(total)}` : hashed > 0 ? ` at ${mib(hashed)}` : '');
    const kept = (advice: string) => (hashed > 0 ? `${mib(hashed)} are kept in ${part}: ${advice}` : advice);
    const timeUp = () => fail('deadline', `stopped after ${fmtDuration(Date.now() - started)}: a download may take ${fmtDuration(deadlineMs)} (--max-time)${where()}`,
      kept(`run the command again to continue, or allow more time: --max-time ${Math.ceil((2 * deadlineMs) / 1000)} (seconds).`));

    for (;;) {
      let onDisk = await sizeOf(part);
      if (target.bytes !== undefined && onDisk > target.bytes) {
        log(`${part} is longer than ${target.name} (${onDisk} bytes > ${target.bytes}): starting over`);
        await restart();
        onDisk = 0;
      }
      if (onDisk !== hashed) ({ hash, bytes: hashed } = await hashFile(part));
      if (target.bytes !== undefined && hashed === target.bytes) break; // a whole .part from an earlier run

      const headers: Record<string, string> = { 'user-agent': 'gradcam-webgpu', 'accept-encoding': 'identity' };
      if (hashed > 0 && !noRange) {
        headers.range = `bytes=${hashed}-`;
        if (etag) headers['if-range'] = etag;
      }
      at.timedOut = false;
      requests++;
      const before = hashed;
      let res: http.IncomingMessage | undefined;
      let fd: number | undefined;
      let complete = false;
      try {
        ({ res } = await openUrl(target.url, headers, timeoutMs, at));
        reached = true;
        const status = res.statusCode ?? 0;
        if (status === 416) {
          res.resume();
          const whole = /^bytes \*\/(\d+)$/.exec(res.headers['content-range'] ?? '');
          if (whole && Number(whole[1]) === hashed && (target.bytes === undefined || target.bytes === hashed)) {
            complete = true; // the .part was whole already
          } else {
            if (hashed === 0 || noRange) throw fail('http', `HTTP 416 from ${shown} for a request without Range`);
            log(`the server has no bytes after ${mib(hashed)} of ${target.name} (HTTP 416): starting over`);
            await restart();
            noRange = true;
            continue;
          }
        } else if (status === 200 || status === 206) {
          let from = 0;
          const length = res.headers['content-length'] ? Number(res.headers['content-length']) : undefined;
          if (status === 206) {
            const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers['content-range'] ?? '');
            if (!m || Number(m[1]) !== hashed) {
              res.destroy();
              if (hashed === 0 || noRange) throw fail('http', `HTTP 206 from ${shown} with Content-Range '${res.headers['content-range'] ?? ''}' for a request from byte 0`);
              log(`the server answered the request for bytes ${hashed}- with ${res.headers['content-range'] ?? 'no Content-Range'}: starting over`);
              await restart();
              noRange = true;
              continue;
            }
            from = hashed;
            if (m[3] !== '*') total = Number(m[3]);
          } else {
            if (hashed > 0) log(`the server ignored the range request (HTTP 200, not 206): downloading ${target.name} from the start`);
            await restart();
            if (length !== undefined) total = length;
          }
          if (target.bytes !== undefined && total !== undefined && total !== target.bytes) {
            res.destroy();
            await restart();
            throw fail('size', `the server has ${total} bytes, but ${target.bytes} are expected`, `The URL may be wrong or the file changed: ${shown}`);
          }
          // What the server announces, checked before a byte is written: the limit, then the free space.
          const announced = total ?? (length !== undefined ? from + length : undefined);
          if (announced !== undefined && announced > cap) {
            res.destroy();
            await restart();
            throw fail('too-large', `the server announces ${formatBytes(announced)} (${announced} bytes), more than the download limit of ${formatBytes(cap)} (--max-bytes); nothing was kept`,
              `If the file is right, raise the limit: --max-bytes ${announced}.`);
          }
          if (announced !== undefined) {
            const free = await freeBytes(dir);
            if (free !== undefined && announced - from > free) {
              res.destroy();
              throw fail('space', `${formatBytes(announced - from)} more are needed in ${dir}, but only ${formatBytes(free)} are free`,
                kept('Free some space, or set GRADCAM_CACHE to a folder on a file system with room.'));
            }
          }
          const tag = res.headers.etag;
          etag = tag && !tag.startsWith('W/') ? tag : undefined;
          try {
            fd = openSync(part, 'a');
          } catch (err) {
            throw fail('file', `${part}: cannot write (${fileErrorReason(err)})`);
          }
          const file = fd;
          let lastEmit = 0;
          const emit = (done: boolean) => opts.onProgress?.({ name: target.name, received: hashed, total, resumedFrom: from, done });
          emit(false);
          let tooLong = false;
          try {
            await receive(res, (chunk) => {
              if (total !== undefined && hashed + chunk.length > total) {
                tooLong = true;
                throw fail('size', `the server sent more than the ${total} bytes expected; the download is deleted`);
              }
              if (hashed + chunk.length > cap) {
                tooLong = true;
                throw fail('too-large', `the server sent more than the download limit of ${formatBytes(cap)} (--max-bytes); the download is deleted`,
                  `If the file is right, raise the limit: --max-bytes ${2 * cap}.`);
              }
              try {
                writeAllSync(file, chunk);
              } catch (err) {
                throw fail('file', `${part}: cannot write (${fileErrorReason(err)})`);
              }
              hash.update(chunk);
              hashed += chunk.length;
              const now = Date.now();
              if (now - lastEmit >= interval) {
                lastEmit = now;
                emit(false);
              }
            });
          } finally {
            if (tooLong) {
              closeSync(file);
              fd = undefined;
              await restart();
            }
          }
          if (total !== undefined && hashed < total) throw new TryFailure(`the connection closed after ${mib(hashed)} of ${mib(total)}`, true);
          fdatasyncSync(file);
          complete = true;
        } else {
          res.resume();
          const what = `HTTP ${status} ${res.statusMessage ?? ''}`.trim();
          if (status >= 500 || status === 408 || status === 429) throw new TryFailure(what, true, false, retryAfter(res));
          throw fail('http', `${what} from ${shown}`,
            status === 404 ? 'The file is not there: check the URL (--url), or download the file yourself and pass --model FILE.' : undefined);
        }
      } catch (err) {
        res?.destroy();
        if (expired) throw timeUp();
        if (err instanceof DownloadError) throw err;
        const f = failure(err, at, timeoutMs);
        if (!f.transient) throw fail('url', f.message);
        if (f.unreachable && !reached) {
          throw new DownloadError('unreachable', `cannot reach ${at.host}: ${f.message}; check the network, or download the file yourself and pass --model FILE`,
            `The file: ${shown}${target.sha256 ? ` (${target.bytes} bytes, SHA-256 ${target.sha256})` : ''}; saved as ${path}, it is used from there.`);
        }
        failures = hashed > before ? 1 : failures + 1;
        if (hashed > before) delay = firstDelay;
        const at_ = where();
        if (f.retryAfterMs !== undefined && f.retryAfterMs > maxRetryAfter) {
          throw fail('retry-after', `${f.message}${at_}: the server asks to wait ${Math.ceil(f.retryAfterMs / 1000)} s before trying again (Retry-After), more than the ${fmtDuration(maxRetryAfter)} gradcam waits`,
            kept('run the command again later.'));
        }
        const wait = Math.max(Math.min(maxDelay, delay) * (0.8 + 0.4 * Math.random()), f.retryAfterMs ?? 0);
        if (Date.now() + wait > stopAt) throw timeUp();
        if (failures > maxFailures || Date.now() + wait > deadline) {
          throw fail('gave-up', `download failed after ${requests} requests: ${f.message}${at_}`,
            hashed > 0 ? `${mib(hashed)} are kept in ${part}: run the command again to continue from there.` : 'Check the network and run the command again.');
        }
        log(`${target.name}: ${f.message}${at_}; retrying in ${(wait / 1000).toFixed(1)} s (retry ${failures} of ${maxFailures})`);
        await sleep(wait);
        delay = Math.min(maxDelay, delay * 2);
        continue;
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
      if (complete) break;
    }

    // Complete: check the size and the hash, then rename into place.
    if (target.bytes !== undefined && hashed !== target.bytes) {
      await restart();
      throw fail('size', `downloaded ${hashed} bytes, but ${target.bytes} are expected; the download is deleted`);
    }
    const sha256 = hash.digest('hex');
    if (target.sha256 && sha256 !== target.sha256) {
      await rm(part, { force: true });
      throw fail('checksum', `SHA-256 mismatch: expected ${target.sha256}, got ${sha256}; the download is deleted`,
        `Run the command again; if it fails the same way, the file at ${shown} is not the expected one (or something between altered it).`);
    }
    try {
      await rename(part, path);
    } catch (err) {
      throw fail('file', `${path}: cannot write (${fileErrorReason(err)})`);
    }
    opts.onProgress?.({ name: target.name, received: hashed, total: hashed, resumedFrom, done: true });
    const secs = (Date.now() - started) / 1000;
    log(`${target.name}: ${mib(hashed)} in ${secs.toFixed(1)} s${target.sha256 ? ', SHA-256 verified' : ''}: ${path}`);
    if (!target.sha256) log(`no checksum is known for ${shown}: the file is used as downloaded (its SHA-256 is ${sha256})`);
    return { path, bytes: hashed, sha256, status: 'downloaded', verified: target.sha256 !== undefined, resumedFrom, requests };
  }
}

/** The bytes an unprivileged process may still write on the file system of `dir` (undefined: unknown). */
async function freeBytes(dir: string): Promise<number | undefined> {
  try {
    const s = await statfs(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}
