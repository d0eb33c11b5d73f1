/**
 * `gradcam fetch [NAME|all|URL] [--url URL] [--force]`: downloads the manifest's models (the ONNX
 * Model Zoo GoogLeNets) into the model cache, checked against their size and SHA-256, and prints
 * their paths; also the download progress display that every command uses when it fetches a
 * model on first use (src/cli/models.ts).
 */
import { DEFAULT_REAL_MODEL, findModel, MODELS } from '../../weights/manifest.ts';
import {
  DEFAULT_DOWNLOAD_DEADLINE_MS, DEFAULT_MAX_DOWNLOAD_BYTES, DEFAULT_MAX_RETRY_AFTER_MS, type DownloadProgress, type DownloadTarget, fetchModel,
  type FetchOptions, isHttpUrl, mib, redactUrl, targetForEntry, targetForUrl,
} from '../../weights/fetch.ts';
import { GradcamError } from '../errors.ts';
import { formatBytes } from '../node/files.ts';
import { type Args, byteSizeOption, type Command, type Io, type Options, positionals, secondsOption, stringOption, UsageError } from './command.ts';
import { printable } from './text.ts';

/** Where progress goes: process.stderr, or a stand-in in tests. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

export interface DownloadReporter {
  /** An information line (the progress bar, if shown, is cleared first). */
  log(line: string): void;
  progress(p: DownloadProgress): void;
}

const fmtRate = (bps: number) => (bps >= 2 ** 20 ? `${(bps / 2 ** 20).toFixed(1)} MiB/s` : `${(bps / 1024).toFixed(0)} KiB/s`);
function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  s = Math.round(s);
  return s >= 3600 ? `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}` : `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** A name for a progress line: a URL by its file name, anything at most 32 characters, control characters escaped. */
function shortName(name: string): string {
  const base = printable(isHttpUrl(name) ? (redactUrl(name).split(/[?#]/)[0].split('/').filter(Boolean).pop() ?? name) : name);
  return base.length > 32 ? `…${base.slice(-31)}` : base;
}

/**
 * The display of a download: on a terminal, one line redrawn in place (bar, bytes, rate, time
 * left); otherwise (a log file, CI) a plain line every `intervalMs` (default 10 s), never a flood.
 * The rate is measured over the last 5 s.
 */
export function downloadReporter(info: (line: string) => void, stream: ProgressStream, opts: { intervalMs?: number; now?: () => number } = {}): DownloadReporter {
  const now = opts.now ?? (() => Date.now());
  const interval = opts.intervalMs ?? 10_000;
  let shown = false;
  let lastLine = -Infinity;
  let samples: { t: number; n: number }[] = [];
  const clear = () => {
    if (shown) stream.write('\r\x1b[K');
    shown = false;
  };
  return {
    log(line) {
      clear();
      info(line);
    },
    progress(p) {
      if (p.done) {
        clear();
        samples = [];
        return;
      }
      const t = now();
      if (samples.length && p.received < samples[samples.length - 1].n) samples = []; // started over
      samples.push({ t, n: p.received });
      while (samples.length > 2 && t - samples[0].t > 5000) samples.shift();
      const dt = (t - samples[0].t) / 1000;
      const rate = dt > 0.2 ? (p.received - samples[0].n) / dt : NaN;
      const left = p.total !== undefined && rate > 0 ? (p.total - p.received) / rate : NaN;
      const pct = p.total ? Math.floor((100 * p.received) / p.total) : undefined;
      const amount = p.total !== undefined ? `${(p.received / 2 ** 20).toFixed(1)}/${mib(p.total)}` : mib(p.received);
      const speed = Number.isFinite(rate) ? fmtRate(rate) : '';
      if (stream.isTTY) {
        const width = Math.max(20, (stream.columns || 80) - 1);
        const name = shortName(p.name);
        const tail = `${pct !== undefined ? `${String(pct).padStart(3)}%  ` : ''}${amount}  ${speed}${Number.isFinite(left) ? `  ${fmtTime(left)} left` : ''}`;
        const barWidth = Math.min(30, width - name.length - tail.length - 5);
        const bar = pct !== undefined && barWidth >= 5 ? ` [${'#'.repeat(Math.floor((barWidth * pct) / 100)).padEnd(barWidth, '-')}]` : '';
        stream.write(`\r\x1b[K${`${name}${bar} ${tail}`.slice(0, width)}`);
        shown = true;
      } else if (t - lastLine >= interval) {
        if (lastLine === -Infinity) {
          lastLine = t; // the "downloading ..." line has just been said
          return;
        }
        lastLine = t;
        info(`gradcam: ${shortName(p.name)}: ${amount}${pct !== undefined ? ` (${pct}%)` : ''}${speed ? `, ${speed}` : ''}${Number.isFinite(left) ? `, about ${fmtTime(left)} left` : ''}`);
      }
    },
  };
}

/** The fetcher's options for the CLI: messages as `gradcam: ...` lines, progress on stderr. */
export function cliFetchOptions(io: Pick<Io, 'info'>, stream: ProgressStream = process.stderr, extra: FetchOptions = {}): FetchOptions {
  const reporter = downloadReporter(io.info, stream);
  return { ...extra, log: (line) => reporter.log(`gradcam: ${line}`), onProgress: (p) => reporter.progress(p) };
}

/** The download limits, as options of every command that may download a model. */
export const DOWNLOAD_OPTIONS: Options = { 'max-bytes': { type: 'string' }, 'max-time': { type: 'string' } };
export const DOWNLOAD_VALUES: Record<string, string> = { 'max-bytes': 'a size in bytes (e.g. 500MB, 2GiB)', 'max-time': 'a number of seconds' };

/** The help lines of DOWNLOAD_OPTIONS (indented to the help's option column, `width`). */
export function downloadOptionsHelp(width: number): string {
  const col = (s: string) => `  ${s.padEnd(width)}`;
  return `${col('--max-bytes N')}the most bytes a model downloaded from a URL may have (default ${formatBytes(DEFAULT_MAX_DOWNLOAD_BYTES)};
${' '.repeat(width + 2)}e.g. 500MB, 2GiB); a manifest model may have no more than its declared size
${col('--max-time S')}the most seconds a download may take, retries included (default ${DEFAULT_DOWNLOAD_DEADLINE_MS / 1000});
${' '.repeat(width + 2)}the .part is kept and the next run continues it`;
}

/** FetchOptions from --max-bytes and --max-time. */
export function downloadLimits(command: Command, args: Args): FetchOptions {
  const maxBytes = byteSizeOption(command, args, 'max-bytes');
  const seconds = secondsOption(command, args, 'max-time');
  return { ...(maxBytes !== undefined && { maxBytes }), ...(seconds !== undefined && { deadlineMs: seconds * 1000 }) };
}

/** GRADCAM_MODEL_BASE_URL: a mirror that has the manifest's files under their base names. */
export function baseUrlFromEnv(): string | undefined {
  return process.env.GRADCAM_MODEL_BASE_URL || undefined;
}

const downloadable = () => MODELS.filter((m) => m.kind === 'onnx-zoo');

export const fetchCommand: Command = {
  name: 'fetch',
  summary: 'download a model of the manifest (the ONNX Model Zoo GoogLeNet) into the model cache, verified',
  usage: 'gradcam fetch [NAME|all|URL] [--url URL] [--force] [--max-bytes N] [--max-time S]',
  help: `options:
  --url URL       download from URL instead of the manifest's address (a mirror); the file must still
                  have the manifest's size and SHA-256
  --force         download again, even when the file is in the cache and verifies
${downloadOptionsHelp(16)}

NAME defaults to ${DEFAULT_REAL_MODEL}; 'all' fetches every downloadable model; a URL is downloaded
into the cache as \`--model URL\` does (no checksum known). The path of each file goes to stdout.

The cache is weights/cache/ in a checkout of the repository, else $XDG_CACHE_HOME/gradcam-webgpu
(~/.cache/gradcam-webgpu); GRADCAM_CACHE=DIR overrides it. GRADCAM_MODEL_BASE_URL=URL downloads
<URL>/<name>.onnx instead of the manifest's address (a mirror).

A file already in the cache is checked (size and SHA-256), not downloaded again. An interrupted
download is kept as <name>.onnx.part and continued (HTTP Range) by the next try or the next run;
only a complete, verified file is ever renamed to <name>.onnx. Transient failures (a dropped
connection, 5xx, a stalled transfer) are retried with backoff; a Retry-After of more than
${DEFAULT_MAX_RETRY_AFTER_MS / 1000} s is not waited for.

models:
${downloadable().map((m) => `  ${m.name} (${mib(m.bytes ?? 0)})\n      ${m.description}`).join('\n')}`,
  options: { url: { type: 'string' }, force: { type: 'boolean' }, ...DOWNLOAD_OPTIONS },
  values: { url: 'an http(s) URL', ...DOWNLOAD_VALUES },
  async run(args, io) {
    const [which = DEFAULT_REAL_MODEL] = positionals(fetchCommand, args, 0, 1, 'the model name');
    const url = stringOption(args, 'url');
    if (url !== undefined && !isHttpUrl(url)) throw new UsageError(`--url takes an http(s) URL, got '${redactUrl(url)}'`, fetchCommand);
    const limits = downloadLimits(fetchCommand, args);
    let targets: DownloadTarget[];
    if (which === 'all') {
      if (url) throw new UsageError('--url needs one model name, not all', fetchCommand);
      targets = downloadable().map((m) => targetForEntry(m, { baseUrl: baseUrlFromEnv() }));
    } else if (isHttpUrl(which)) {
      if (url) throw new UsageError('give the URL once: as NAME or with --url', fetchCommand);
      targets = [targetForUrl(which)];
    } else {
      const entry = findModel(which);
      if (!entry) throw new GradcamError(`unknown model '${which}'`, `Downloadable: ${downloadable().map((m) => m.name).join(', ')} (or a URL).`);
      targets = [targetForEntry(entry, { url, baseUrl: baseUrlFromEnv() })];
    }
    const opts = cliFetchOptions(io, process.stderr, limits);
    for (const target of targets) {
      const result = await fetchModel(target, { ...opts, force: args.values.force === true });
      if (result.status === 'cached') {
        io.info(`gradcam: ${target.name} is in the cache already${result.verified ? ` and verified (${mib(result.bytes)}, SHA-256 ${result.sha256})` : ''}; --force downloads it again`);
      }
      io.out(result.path);
    }
  },
};
