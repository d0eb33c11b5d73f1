/**
 * Progress over many inputs (stderr): on a terminal one line redrawn in place (bar, done/total,
 * images/s, time left); otherwise (a log file, CI) a plain line every `intervalMs` (default 10 s)
 * at most, and none for a run shorter than that. The rate is over the last 30 s of finished inputs.
 */
import { fmtTime, type ProgressStream } from '../models/progress.ts';

export interface InputsProgress {
  /** `n` more inputs finished (results or errors). */
  advance(n: number): void;
  /** A new total (an estimate that firmed up: the passes of inputs not run yet); redraws. */
  setTotal(total: number): void;
  /** Redraws the bar (after `opts.note` changed). */
  redraw(): void;
  /** A line through `write` (default: the message stream); the bar, if shown, is cleared first and redrawn after. */
  log(line: string, write?: (line: string) => void): void;
  /** Clears the bar. */
  done(): void;
}

export function inputsProgress(total: number, info: (line: string) => void, stream: ProgressStream,
  /**
   * `unit`: what is counted, plural ('inputs', the default: 'images/s' and '… inputs'; 'passes':
   * 'passes/s', '… passes'); `note`: more words after the count ('2 of 5 inputs done'), read at each
   * draw; `start`: when the counting began (default: now; a bar made at the first report starts earlier).
   */
  opts: { intervalMs?: number; now?: () => number; unit?: string; note?: () => string; start?: number } = {}): InputsProgress {
  const unit = opts.unit ?? 'inputs';
  const rateUnit = opts.unit ?? 'images';
  const now = opts.now ?? (() => Date.now());
  const interval = opts.intervalMs ?? 10_000;
  const start = opts.start ?? now();
  let finished = 0;
  let shown = false;
  let lastLine = start;
  const samples: { t: number; n: number }[] = [{ t: start, n: 0 }];
  const clear = () => {
    if (shown) stream.write('\r\x1b[K');
    shown = false;
  };
  const text = () => {
    const t = now();
    while (samples.length > 2 && t - samples[0].t > 30_000) samples.shift();
    const first = samples[0];
    const dt = (t - first.t) / 1000;
    const rate = dt > 0 && finished > first.n ? (finished - first.n) / dt : NaN;
    const left = rate > 0 ? (total - finished) / rate : NaN;
    const speed = Number.isFinite(rate) ? `${rate >= 10 ? rate.toFixed(0) : rate.toPrecision(2)} ${rateUnit}/s` : `… ${rateUnit}/s`;
    return { count: `${finished}/${total}`, note: opts.note?.() ?? '', speed, left: Number.isFinite(left) ? `${fmtTime(left)} left` : '' };
  };
  const draw = () => {
    const { count, note, speed, left } = text();
    const width = Math.max(20, (stream.columns || 80) - 1);
    const tail = `${count}${note ? `  ${note}` : ''}  ${speed}${left ? `  ${left}` : ''}`;
    const barWidth = Math.min(30, width - tail.length - 3);
    const bar = barWidth >= 5 ? `[${'#'.repeat(Math.min(barWidth, Math.floor((barWidth * finished) / Math.max(1, total)))).padEnd(barWidth, '-')}] ` : '';
    stream.write(`\r\x1b[K${`${bar}${tail}`.slice(0, width)}`);
    shown = true;
  };
  if (stream.isTTY) draw();
  return {
    advance(n) {
      finished += n;
      samples.push({ t: now(), n: finished });
      if (stream.isTTY) draw();
      else if (now() - lastLine >= interval && finished < total) {
        lastLine = now();
        const { count, note, speed, left } = text();
        info(`gradcam: ${count} ${unit}${note ? ` (${note})` : ''}, ${speed}${left ? `, about ${left}` : ''}`);
      }
    },
    setTotal(n) {
      total = n;
      if (stream.isTTY) draw();
    },
    redraw() {
      if (stream.isTTY) draw();
    },
    log(line, write = info) {
      const again = shown;
      clear();
      write(line);
      if (again) draw();
    },
    done: clear,
  };
}
