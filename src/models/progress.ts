/**
 * How a model download shows itself (Node): the progress display (a bar redrawn in place on a
 * terminal, a plain line every few seconds otherwise) and the fetcher's options that use it, shared
 * by the library's loadNetwork and every CLI command that fetches a model on first use.
 */
import type { DownloadProgress, FetchOptions } from '../../weights/fetch.ts';
import { isHttpUrl, mib, redactUrl } from '../../weights/fetch.ts';
import { printable } from '../node/text.ts';

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
/** Seconds as m:ss or h:mm:ss ('?' when unknown). */
export function fmtTime(s: number): string {
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

/** The fetcher's options with messages as `gradcam: ...` lines through `info`, and the progress display on `stream` (stderr). */
export function fetchOptionsWithProgress(info: (line: string) => void, stream: ProgressStream = process.stderr, extra: FetchOptions = {}): FetchOptions {
  const reporter = downloadReporter(info, stream);
  return { ...extra, log: (line) => reporter.log(`gradcam: ${line}`), onProgress: (p) => reporter.progress(p) };
}

/** GRADCAM_MODEL_BASE_URL: a mirror that has the manifest's files under their base names. */
export function baseUrlFromEnv(): string | undefined {
  return process.env.GRADCAM_MODEL_BASE_URL || undefined;
}
