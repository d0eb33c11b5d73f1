/**
 * The CLI's model cache, served to the page from its own origin (a Vite plugin), so that after
 * `gradcam fetch googlenet-12` the page loads `models/googlenet-12.onnx` next to itself and makes no
 * cross-origin request.
 *
 * - `npm start`, `npm run dev` and `npm run preview` answer `GET`/`HEAD <base>models/<name>.onnx` for
 *   the manifest's downloadable entries (kind 'onnx-zoo') from the model cache (`weights/cache/` in a
 *   checkout; `GRADCAM_CACHE` overrides it, as for the CLI: src/node/paths.ts), with its size as
 *   Content-Length. Anything else under `<base>models/` is a 404: only manifest names are served,
 *   so no path can leave the cache folder. The page checks the file's size and SHA-256 itself.
 * - `npm run build:web` copies each cached manifest model whose size and SHA-256 match the manifest
 *   into `<outDir>/models/`, and says in the build log what it copied or why not.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { Logger, Plugin } from 'vite';
import { modelCacheDir } from '../src/node/paths.ts';
import { MODELS, type ManifestModel } from '../weights/manifest.ts';

/** The folder next to the page that holds model files: `./models/<name>.onnx`. */
export const MODELS_FOLDER = 'models';

export interface ModelFilesOptions {
  /** The cache folder, asked for each request (default: modelCacheDir(), which reads GRADCAM_CACHE). */
  cacheDir?: () => string;
  /** The manifest's models (default: weights/manifest.json). */
  models?: readonly ManifestModel[];
}

/** The manifest entries the page may ask for: the downloadable ones (generated models are built in the page). */
function servable(models: readonly ManifestModel[]): Map<string, ManifestModel> {
  return new Map(models.filter((m) => m.kind === 'onnx-zoo').map((m) => [m.name, m]));
}

/** A path for messages: relative to the working folder when inside it. */
function shown(path: string): string {
  const r = relative(process.cwd(), path);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r : path;
}

const fetchCommand = (name: string) => `npm run -s gradcam -- fetch ${name}`;

type Next = (err?: unknown) => void;

/**
 * The middleware: `<base>models/<name>.onnx` from the cache folder, for manifest names only;
 * anything else under `<base>models/` is a 404 (never the dev server's index.html fallback).
 */
export function modelFilesMiddleware(base: string, opts: ModelFilesOptions = {}): (req: IncomingMessage, res: ServerResponse, next: Next) => void {
  const models = servable(opts.models ?? MODELS);
  const prefix = `${base.endsWith('/') ? base : `${base}/`}${MODELS_FOLDER}/`;
  return (req, res, next) => {
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://x').pathname;
    } catch {
      return next();
    }
    if (!path.startsWith(prefix)) return next();
    const notFound = (why: string) => {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : `${why}\n`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    // The name is compared with the manifest's names as it is: no decoding, no path is ever built from a request.
    const m = /^([A-Za-z0-9._-]+)\.onnx$/.exec(path.slice(prefix.length));
    const entry = m ? models.get(m[1]) : undefined;
    if (!entry) return notFound(`not a downloadable model of weights/manifest.json (${[...models.keys()].join(', ')})`);
    const file = join(resolve(opts.cacheDir?.() ?? modelCacheDir()), `${entry.name}.onnx`);
    stat(file).then((s) => {
      if (!s.isFile()) throw new Error('not a file');
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(s.size),
        'cache-control': 'no-cache',
        'last-modified': s.mtime.toUTCString(),
      });
      if (req.method === 'HEAD') return void res.end();
      const stream = createReadStream(file);
      stream.on('error', () => res.destroy());
      stream.pipe(res);
    }, () => notFound(`${shown(file)} is not there: \`${fetchCommand(entry.name)}\` puts it there`));
  };
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface CopyReport {
  copied: string[];
  /** One line per model: copied, damaged, or absent. */
  lines: string[];
}

/**
 * Copies each cached manifest model whose size and SHA-256 match the manifest into `<outDir>/models/`.
 * Lines of what was done go to `log.info`, files that are in the cache but wrong to `log.warn`.
 */
export async function copyCachedModels(cacheDir: string, outDir: string, log: Pick<Logger, 'info' | 'warn'>, models: readonly ManifestModel[] = MODELS): Promise<CopyReport> {
  const report: CopyReport = { copied: [], lines: [] };
  const absent: string[] = [];
  const target = join(outDir, MODELS_FOLDER);
  for (const entry of servable(models).values()) {
    const file = join(cacheDir, `${entry.name}.onnx`);
    const size = await stat(file).then((s) => (s.isFile() ? s.size : undefined), () => undefined);
    if (size === undefined) {
      absent.push(entry.name);
      continue;
    }
    const sha256 = size === entry.bytes ? await sha256File(file) : undefined;
    if (size !== entry.bytes || sha256 !== entry.sha256?.toLowerCase()) {
      const line = `models: ${shown(file)} is not the manifest's file (${size} bytes${sha256 ? `, SHA-256 ${sha256.slice(0, 12)}…` : ''}; ` +
        `expected ${entry.bytes} bytes, SHA-256 ${entry.sha256?.slice(0, 12)}…): not copied; \`${fetchCommand(entry.name)}\` checks it and downloads it again`;
      report.lines.push(line);
      log.warn(line);
      continue;
    }
    await mkdir(target, { recursive: true });
    await copyFile(file, join(target, `${entry.name}.onnx`));
    report.copied.push(entry.name);
    const line = `models: copied ${shown(file)} (${(size / 1e6).toFixed(1)} MB, size and SHA-256 checked) to ${shown(join(target, `${entry.name}.onnx`))}`;
    report.lines.push(line);
    log.info(line);
  }
  if (absent.length) {
    const many = absent.length > 1;
    const line = `models: ${absent.join(', ')} ${many ? 'are' : 'is'} not in ${shown(cacheDir)}: the page downloads ${many ? 'them' : 'it'} when picked; ` +
      `to serve ${many ? 'them' : 'it'} from this site, run \`${fetchCommand(many ? 'all' : absent[0])}\` before building, ` +
      `or put <name>.onnx in ${shown(target)}/`;
    report.lines.push(line);
    log.info(line);
  }
  return report;
}

/** The Vite plugin: the middleware for `vite`/`vite preview`, the copy for `vite build`. */
export function modelFiles(opts: ModelFilesOptions = {}): Plugin {
  let base = '/';
  let outDir = '';
  let logger: Logger | undefined;
  let command: 'build' | 'serve' = 'serve';
  let isSsr = false;
  const cacheDir = () => resolve(opts.cacheDir?.() ?? modelCacheDir());
  return {
    name: 'gradcam-model-files',
    configResolved(config) {
      base = config.base.startsWith('/') ? config.base : '/';
      outDir = resolve(config.root, config.build.outDir);
      logger = config.logger;
      command = config.command;
      isSsr = !!config.build.ssr;
    },
    configureServer(server) {
      server.middlewares.use(modelFilesMiddleware(base, opts));
    },
    configurePreviewServer(server) {
      server.middlewares.use(modelFilesMiddleware(base, opts));
    },
    async closeBundle() {
      if (command !== 'build' || isSsr || !logger) return;
      await copyCachedModels(cacheDir(), outDir, logger, opts.models);
    },
  };
}
