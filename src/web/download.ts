/**
 * Model files for the page, from the first of these that has the manifest's file:
 *
 *   1. the browser's Cache Storage (a file fetched on an earlier visit);
 *   2. `models/<name>.onnx` next to the page, same-origin: the dev and preview servers serve the
 *      CLI's model cache there, and `npm run build:web` copies verified cached models there
 *      (scripts/model-files.ts); a 404, an HTML page or a network error means "not here";
 *   3. the manifest's `url`, then its `mirrors`, in order (cross-origin, usually: they work only
 *      where the server sends CORS headers).
 *
 * Each file is streamed with progress, checked against the manifest's size and SHA-256
 * (crypto.subtle) and kept in Cache Storage, so that a second visit reads it from there. A cached
 * file is checked again before each use; a file that fails is dropped. When nothing works the
 * error is one sentence that says why and what to do instead.
 */
import type { ManifestModel } from './manifest.ts';

export const MODEL_CACHE = 'gradcam-models';
/** The folder next to the page that may hold model files (scripts/model-files.ts serves it). */
export const MODELS_FOLDER = 'models';
/** No answer (response headers) for this long, or no data for this long during a transfer, fails a source. */
export const STALL_MS = 30_000;

export interface DownloadProgress {
  /** The URL being read. */
  url: string;
  /** Whether it is the page's own `models/` copy. */
  sameOrigin: boolean;
  received: number;
  total: number;
  /** Bytes per second since the transfer started. */
  rate: number;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function cacheAvailable(): boolean {
  return typeof caches !== 'undefined';
}

/** The cache key of an entry: its URL with the hash, so a changed manifest entry never reads a stale file. */
function cacheKey(entry: ManifestModel): string {
  const key = new URL(entry.url ?? '', location.href);
  key.searchParams.set('gradcam-sha256', entry.sha256 ?? '');
  return key.href;
}

export async function isCached(entry: ManifestModel): Promise<boolean> {
  if (!cacheAvailable() || !entry.url) return false;
  const cache = await caches.open(MODEL_CACHE);
  return (await cache.match(cacheKey(entry))) !== undefined;
}

/** `models/<name>.onnx` relative to the page (so that it works under a sub-path too). */
export function sameOriginUrl(entry: ManifestModel): string {
  return new URL(`${MODELS_FOLDER}/${encodeURIComponent(entry.name)}.onnx`, location.href).href;
}

const onServerMemo = new Map<string, Promise<boolean>>();

/**
 * Whether the page's server has the entry's file at `models/<name>.onnx` (a HEAD request, once per
 * page load): a success that is not an HTML page, with the manifest's size when the server says it.
 * The file is still checked (SHA-256) when it is read.
 */
export function isOnServer(entry: ManifestModel): Promise<boolean> {
  if (entry.kind !== 'onnx-zoo' || !entry.bytes) return Promise.resolve(false);
  const url = sameOriginUrl(entry);
  let known = onServerMemo.get(url);
  if (!known) {
    known = fetch(url, { method: 'HEAD', cache: 'no-store', signal: AbortSignal.timeout(STALL_MS) }).then((res) => {
      const length = res.headers.get('content-length');
      return res.ok && !/text\/html/i.test(res.headers.get('content-type') ?? '') && (length === null || Number(length) === entry.bytes);
    }, () => false);
    onServerMemo.set(url, known);
  }
  return known;
}

/**
 * Where the browser can fetch a file from. github.com/…/raw/… answers with a redirect that carries
 * no CORS header, so a page cannot follow it; Git LFS files (the Model Zoo's) are served from
 * media.githubusercontent.com, which may. Both are tried, in that order.
 */
export function browserUrls(url: string): string[] {
  const m = /^https:\/\/github\.com\/([^/]+)\/([^/]+)\/raw\/(.+)$/.exec(url);
  return m ? [`https://media.githubusercontent.com/media/${m[1]}/${m[2]}/${m[3]}`, url] : [url];
}

/** The entry's download URLs, in the order tried: `url`, then each of `mirrors` (absolute, no repeats). */
export function downloadUrls(entry: ManifestModel): string[] {
  const all = [entry.url, ...(entry.mirrors ?? [])].filter((u): u is string => !!u).flatMap((u) => browserUrls(new URL(u, location.href).href));
  return [...new Set(all)];
}

/**
 * How a source failed. 'network': fetch() rejected with no response: the server refused to share
 * the file with this page (no CORS headers) or could not be reached: a browser cannot tell which.
 */
type FailureKind = 'network' | 'timeout' | 'http' | 'not-model' | 'interrupted' | 'checksum';

class SourceFailure extends Error {
  constructor(readonly kind: FailureKind, message: string) {
    super(message);
  }
}

export interface Failure {
  url: string;
  kind: FailureKind;
  detail: string;
}

/**
 * Reads `url` whole. `probe`: the page's own `models/` copy, which may well be missing: an HTML page
 * (a server's fallback for unknown paths) or a size other than the manifest's is "not the model",
 * and its body is not read.
 */
async function download(url: string, total: number, probe: boolean, onProgress: (p: DownloadProgress) => void): Promise<Uint8Array> {
  const abort = new AbortController();
  let stalled = false;
  let timer = setTimeout(() => ((stalled = true), abort.abort()), STALL_MS);
  const rearm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => ((stalled = true), abort.abort()), STALL_MS);
  };
  try {
    let res: Response;
    try {
      res = await fetch(url, { cache: 'no-store', signal: abort.signal });
    } catch (e) {
      if (stalled) throw new SourceFailure('timeout', `no answer in ${STALL_MS / 1000} s`);
      throw new SourceFailure('network', (e as Error).message || String(e));
    }
    if (!res.ok || !res.body) throw new SourceFailure('http', `HTTP ${res.status}`);
    const length = res.headers.get('content-length') === null ? undefined : Number(res.headers.get('content-length'));
    if (probe && (/text\/html/i.test(res.headers.get('content-type') ?? '') || (length !== undefined && length !== total))) {
      void res.body.cancel().catch(() => undefined);
      throw new SourceFailure('not-model', /text\/html/i.test(res.headers.get('content-type') ?? '') ? 'an HTML page' : `${length} bytes, expected ${total}`);
    }
    let buffer = new Uint8Array(Math.max(length ?? 0, total));
    const reader = res.body.getReader();
    const t0 = performance.now();
    let received = 0;
    onProgress({ url, sameOrigin: probe, received, total, rate: 0 });
    for (;;) {
      rearm();
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        if (stalled) throw new SourceFailure('timeout', `no data for ${STALL_MS / 1000} s after ${received} bytes`);
        throw new SourceFailure('interrupted', `the transfer broke off after ${received} bytes (${(e as Error).message})`);
      }
      if (chunk.done) break;
      const value = chunk.value;
      if (received + value.length > buffer.length) {
        const bigger = new Uint8Array(Math.max(buffer.length * 2, received + value.length));
        bigger.set(buffer.subarray(0, received));
        buffer = bigger;
      }
      buffer.set(value, received);
      received += value.length;
      onProgress({ url, sameOrigin: probe, received, total, rate: received / Math.max(1e-3, (performance.now() - t0) / 1000) });
    }
    return buffer.subarray(0, received);
  } finally {
    clearTimeout(timer);
  }
}

export interface FetchedModel {
  bytes: Uint8Array;
  /** 'cache': the browser's Cache Storage; 'server': the page's own `models/` folder; 'download': `url` or a mirror. */
  from: 'cache' | 'server' | 'download';
  /** The URL it was read from (not for 'cache'). */
  url?: string;
}

/** The command that puts a manifest model into the CLI's cache, which the dev and preview servers serve to the page. */
export const fetchCommand = (name: string) => `npm run -s gradcam -- fetch ${name}`;

/** No source had the model; the message is one sentence for the page's status line (commands in `backquotes`). */
export class ModelUnavailable extends Error {
  constructor(message: string, readonly failures: readonly Failure[]) {
    super(message);
    this.name = 'ModelUnavailable';
  }
}

const hostOf = (url: string) => new URL(url).host;
/** "a did not let", "neither a nor b let", "none of a, b and c let". */
function didNotLet(hosts: string[]): string {
  if (hosts.length === 1) return `${hosts[0]} did not let`;
  if (hosts.length === 2) return `neither ${hosts[0]} nor ${hosts[1]} let`;
  return `none of ${hosts.slice(0, -1).join(', ')} and ${hosts[hosts.length - 1]} let`;
}

/** The one sentence that says why no source worked and what to do instead. */
function unavailable(entry: ManifestModel, local: Failure | undefined, remote: Failure[]): ModelUnavailable {
  const ways = `run \`${fetchCommand(entry.name)}\` and reload to use the CLI's copy from this server, or open a local .onnx file with the file picker`;
  // The page's own copy matters only when it was there but wrong; a 404 is the normal "not here".
  const localNote = local && local.kind !== 'http' && local.kind !== 'network'
    ? `; this server's ${MODELS_FOLDER}/${entry.name}.onnx is not the manifest's file (${local.detail})` : '';
  const blocked = remote.filter((f) => f.kind === 'network' || f.kind === 'timeout');
  let why: string;
  if (!remote.length) {
    why = `this server has no ${MODELS_FOLDER}/${entry.name}.onnx${local ? ` (${local.detail})` : ''}`;
  } else if (blocked.length === remote.length) {
    why = `${didNotLet([...new Set(remote.map((f) => hostOf(f.url)))])} this page download it (no CORS headers, or not reachable)`;
  } else {
    why = `it could not be downloaded (${remote.map((f) => `${hostOf(f.url)}: ${f.detail}`).join('; ')})`;
  }
  return new ModelUnavailable(`${why}${localNote}; ${ways}.`, local ? [local, ...remote] : remote);
}

/**
 * The entry's file: from Cache Storage when it is there and intact, else from the page's own
 * `models/` folder, else downloaded from `url` or a mirror; checked and stored.
 */
export async function fetchModelFile(entry: ManifestModel, onProgress: (p: DownloadProgress) => void): Promise<FetchedModel> {
  const { url, sha256, bytes: total = 0 } = entry;
  if (!url || !sha256) throw new Error(`'${entry.name}' has no download URL`);
  const cache = cacheAvailable() ? await caches.open(MODEL_CACHE) : undefined;
  const key = cacheKey(entry);
  const hit = await cache?.match(key);
  if (hit) {
    const bytes = new Uint8Array(await hit.arrayBuffer());
    if ((await sha256Hex(bytes)) === sha256) return { bytes, from: 'cache' };
    await cache!.delete(key);
  }
  const local = sameOriginUrl(entry);
  const remote: Failure[] = [];
  let localFailure: Failure | undefined;
  for (const candidate of [local, ...downloadUrls(entry).filter((u) => u !== local)]) {
    const probe = candidate === local;
    let bytes: Uint8Array;
    try {
      bytes = await download(candidate, total, probe, onProgress);
    } catch (e) {
      const f = e instanceof SourceFailure ? { url: candidate, kind: e.kind, detail: e.message } : { url: candidate, kind: 'network' as const, detail: String(e) };
      if (probe) localFailure = f;
      else remote.push(f);
      continue;
    }
    const got = await sha256Hex(bytes);
    if ((total && bytes.length !== total) || got !== sha256) {
      const f: Failure = { url: candidate, kind: 'checksum', detail: `${bytes.length} bytes with SHA-256 ${got.slice(0, 12)}…, expected ${total} bytes with ${sha256.slice(0, 12)}…` };
      if (probe) localFailure = f;
      else remote.push(f);
      continue;
    }
    await cache?.put(key, new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) } }));
    return { bytes, from: probe ? 'server' : 'download', url: candidate };
  }
  const error = unavailable(entry, localFailure, remote);
  console.warn(`${entry.name}: ${error.message}`, error.failures);
  throw error;
}
