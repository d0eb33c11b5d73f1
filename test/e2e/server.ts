/**
 * The end-to-end tests' web server: the built page (dist/web or any folder) as static files, plus
 * extra routes a test adds (a manifest, a model file), with a count of the requests to each path.
 * Everything is sent with `Cache-Control: no-store`, so that only the page's own Cache Storage can
 * spare a request: a test that counts downloads is not fooled by the browser's HTTP cache.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json', '.png': 'image/png', '.jpg': 'image/jpeg', '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8', '.onnx': 'application/octet-stream', '.map': 'application/json',
};

export interface Route {
  body: Uint8Array | string;
  type?: string;
}

export interface TestServer {
  origin: string;
  /** Adds or replaces a route (an absolute path such as '/e2e/manifest.json'). */
  route(path: string, route: Route): void;
  /** Requests seen per path (query strings removed). */
  hits(path: string): number;
  close(): Promise<void>;
}

export async function startServer(root: string): Promise<TestServer> {
  const routes = new Map<string, Route>();
  const counts = new Map<string, number>();
  const server: Server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const headers = { 'cache-control': 'no-store' };
    const extra = routes.get(path);
    if (extra) {
      const body = typeof extra.body === 'string' ? Buffer.from(extra.body) : Buffer.from(extra.body.buffer, extra.body.byteOffset, extra.body.byteLength);
      res.writeHead(200, { ...headers, 'content-type': extra.type ?? TYPES[extname(path)] ?? 'application/octet-stream', 'content-length': body.length });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const file = normalize(join(root, path.endsWith('/') ? `${path}index.html` : path));
    if (!file.startsWith(normalize(root + sep)) && file !== normalize(root)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const s = await stat(file);
      if (!s.isFile()) throw new Error('not a file');
      res.writeHead(200, { ...headers, 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': s.size });
      if (req.method === 'HEAD') res.end();
      else createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404, headers).end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    route: (path, route) => routes.set(path, route),
    hits: (path) => counts.get(path) ?? 0,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
