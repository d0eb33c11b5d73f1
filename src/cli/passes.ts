/**
 * A command's run of the multi-pass methods (scorecam, ablationcam, …): a progress bar of passes on
 * stderr (passes done, passes/s, time left: src/cli/progress.ts) and Ctrl-C as a clean cancel. The
 * first SIGINT aborts the run's AbortSignal: the API stops before its next batch of passes and
 * rejects with AbortError, before anything is written, and the command exits 130 (report.ts). A
 * terminal's Ctrl-C reaches this process twice (from the terminal and forwarded by the parent
 * process, main.ts), so a second SIGINT within a second is the same one; a later one quits at once
 * (exit 130; files are written atomically, so none is half-written).
 */
import { AbortError } from '../errors.ts';
import type { PassProgress } from '../gradcam/types.ts';
import type { ProgressStream } from '../models/progress.ts';
import { type InputsProgress, inputsProgress } from './progress.ts';

export interface PassesSession {
  signal: AbortSignal;
  onProgress(p: PassProgress): void;
  /**
   * Runs the API call: its AbortError (or Ctrl-C pressed just after it returned) becomes the
   * command's 'cancelled (Ctrl-C)', before anything is written.
   */
  run<T>(call: () => Promise<T>): Promise<T>;
  /** Clears the bar and stops listening for SIGINT. */
  done(): void;
}

export function passesSession(info: (line: string) => void, stream: ProgressStream = process.stderr): PassesSession {
  const controller = new AbortController();
  let bar: InputsProgress | undefined;
  let shown = 0;
  let total = 0;
  let firstAt = 0;
  const onSigint = () => {
    if (!controller.signal.aborted) {
      firstAt = Date.now();
      bar?.log('gradcam: Ctrl-C: stopping after the batch of passes in flight (Ctrl-C again to quit at once)');
      controller.abort(new Error('Ctrl-C'));
    } else if (Date.now() - firstAt > 1000) {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  return {
    signal: controller.signal,
    onProgress(p) {
      if (!bar) info(`gradcam: ${p.total} passes (${p.method} first); Ctrl-C stops cleanly`);
      if (p.total !== total) {
        // The first call's total, or a larger one once a second kind of passes starts (the input attributions after the channel passes).
        bar?.done();
        bar = inputsProgress(p.total, info, stream, { unit: 'passes' });
        total = p.total;
        shown = 0;
      }
      bar!.advance(p.done - shown);
      shown = p.done;
    },
    async run(call) {
      const cancelled = () => new AbortError('Ctrl-C', 'Nothing was written.');
      let result;
      try {
        result = await call();
      } catch (e) {
        throw e instanceof AbortError && controller.signal.aborted ? cancelled() : e;
      }
      if (controller.signal.aborted) throw cancelled();
      return result;
    },
    done() {
      bar?.done();
      process.off('SIGINT', onSigint);
    },
  };
}
