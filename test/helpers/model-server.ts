/**
 * A local HTTP server on 127.0.0.1 for the download tests: it records every request (path, Range,
 * If-Range) and hands it to the test's handler, which can serve bytes with Range support, or
 * misbehave on purpose (drop the connection, stall, ignore Range).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  path: string;
  range?: string;
  ifRange?: string;
  /** The Authorization header (credentials given in the URL are sent as Basic). */
  authorization?: string;
}

/** `n` is the request's index (0 for the first request this server gets). */
export type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

export interface ModelServer {
  /** http://127.0.0.1:PORT */
  url: string;
  seen: SeenRequest[];
  /** Replaces the handler. */
  handle(h: Handler): void;
  close(): Promise<void>;
}

export async function startServer(handler: Handler): Promise<ModelServer> {
  const seen: SeenRequest[] = [];
  let h = handler;
  const server: Server = createServer((req, res) => {
    const n = seen.length;
    seen.push({ path: req.url ?? '', range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined, authorization: req.headers.authorization });
    h(req, res, n);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    handle: (next) => (h = next),
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** A port that nothing listens on (a server is opened on it and closed). */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export interface SendOptions {
  /** Answer 200 with the whole file, whatever the Range header says. */
  ignoreRange?: boolean;
  /** Send this many bytes of the body, then destroy the socket. */
  dropAfter?: number;
  /** Send this many bytes of the body, then send nothing more (the socket stays open). */
  stallAfter?: number;
}

/**
 * Sends `chunk` again and again, `every` ms apart, until the client goes away or `max` chunks are
 * out (a bounded stand-in for a body that never ends, or one that trickles); no Content-Length.
 */
export function sendEndless(res: ServerResponse, chunk: Uint8Array, every = 0, max = 100_000): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  let sent = 0;
  let closed = false;
  res.on('close', () => (closed = true));
  const next = () => {
    if (closed) return;
    if (sent >= max) return void res.end();
    sent++;
    const more = res.write(chunk);
    if (every > 0) setTimeout(next, every);
    else if (more) setImmediate(next);
    else res.once('drain', next);
  };
  next();
}

/** Serves `bytes` as a static file: 200, or 206 for `Range: bytes=N-`, or 416 past the end. */
export function sendBytes(req: IncomingMessage, res: ServerResponse, bytes: Uint8Array, opts: SendOptions = {}): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  let start = 0;
  if (m && !opts.ignoreRange) {
    start = Number(m[1]);
    if (start >= bytes.length) {
      res.writeHead(416, { 'content-range': `bytes */${bytes.length}` }).end();
      return;
    }
    res.writeHead(206, {
      'content-type': 'application/octet-stream', 'content-length': bytes.length - start,
      'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}`, 'accept-ranges': 'bytes',
    });
  } else {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length, 'accept-ranges': 'bytes' });
  }
  const body = Buffer.from(bytes.buffer, bytes.byteOffset + start, bytes.length - start);
  if (opts.dropAfter !== undefined) {
    // Destroyed once the bytes are with the kernel: the client gets exactly `dropAfter` bytes, then the connection ends early.
    res.write(body.subarray(0, opts.dropAfter), () => res.socket?.destroy());
  } else if (opts.stallAfter !== undefined) {
    res.write(body.subarray(0, opts.stallAfter));
  } else {
    res.end(body);
  }
}
