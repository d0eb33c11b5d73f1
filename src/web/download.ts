/**
 * Downloads of model files: streamed with progress, checked against the manifest's SHA-256
 * (crypto.subtle) and kept in the browser's Cache Storage, so that a second visit reads the file
 * from there. A cached file is checked again before each use; a file that fails is dropped.
 */
import type { ManifestModel } from './manifest.ts';

export const MODEL_CACHE = 'gradcam-models';

export interface DownloadProgress {
  received: number;
  total: number;
  /** Bytes per second since the download started. */
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

/**
 * Where the browser can fetch a file from. github.com/…/raw/… answers with a redirect that carries
 * no CORS header, so a page cannot follow it; Git LFS files (the Model Zoo's) are served with CORS
 * from media.githubusercontent.com. Both are tried, in that order.
 */
export function browserUrls(url: string): string[] {
  const m = /^https:\/\/github\.com\/([^/]+)\/([^/]+)\/raw\/(.+)$/.exec(url);
  return m ? [`https://media.githubusercontent.com/media/${m[1]}/${m[2]}/${m[3]}`, url] : [url];
}

async function download(url: string, total: number, onProgress: (p: DownloadProgress) => void): Promise<Uint8Array> {
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
  const expected = Number(res.headers.get('content-length')) || total;
  const out = new Uint8Array(Math.max(expected, total));
  const reader = res.body.getReader();
  const t0 = performance.now();
  let received = 0;
  let buffer = out;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (received + value.length > buffer.length) {
      const bigger = new Uint8Array(Math.max(buffer.length * 2, received + value.length));
      bigger.set(buffer.subarray(0, received));
      buffer = bigger;
    }
    buffer.set(value, received);
    received += value.length;
    onProgress({ received, total, rate: received / Math.max(1e-3, (performance.now() - t0) / 1000) });
  }
  return buffer.subarray(0, received);
}

export interface FetchedModel {
  bytes: Uint8Array;
  fromCache: boolean;
}

/** The entry's file: from Cache Storage when it is there and intact, else downloaded, checked and stored. */
export async function fetchModelFile(entry: ManifestModel, onProgress: (p: DownloadProgress) => void): Promise<FetchedModel> {
  const { url, sha256, bytes: total = 0 } = entry;
  if (!url || !sha256) throw new Error(`'${entry.name}' has no download URL`);
  const cache = cacheAvailable() ? await caches.open(MODEL_CACHE) : undefined;
  const key = cacheKey(entry);
  const hit = await cache?.match(key);
  if (hit) {
    const bytes = new Uint8Array(await hit.arrayBuffer());
    if ((await sha256Hex(bytes)) === sha256) return { bytes, fromCache: true };
    await cache!.delete(key);
  }
  const failures: string[] = [];
  for (const candidate of browserUrls(new URL(url, location.href).href)) {
    let bytes: Uint8Array;
    try {
      bytes = await download(candidate, total, onProgress);
    } catch (e) {
      failures.push(`${candidate}: ${(e as Error).message}`);
      continue;
    }
    const got = await sha256Hex(bytes);
    if (got !== sha256) {
      failures.push(`${candidate}: ${bytes.length} bytes with SHA-256 ${got.slice(0, 12)}…, expected ${total} bytes with ${sha256.slice(0, 12)}…`);
      continue;
    }
    await cache?.put(key, new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) } }));
    return { bytes, fromCache: false };
  }
  throw new Error(`could not download '${entry.name}' (${failures.join('; ')}). ` +
    `If the server does not allow downloads from other sites, download the file yourself and open it with "local .onnx file".`);
}
