/**
 * A command's run of the multi-pass methods (scorecam, ablationcam, …): a progress bar of passes on
 * stderr (passes done, passes/s, time left: src/cli/progress.ts) and Ctrl-C as a clean cancel. The
 * first SIGINT aborts the run's AbortSignal: the API stops before its next batch of passes and
 * rejects with AbortError, and the command exits 130 (report.ts). A terminal's Ctrl-C reaches this
 * process twice (from the terminal and forwarded by the parent process, main.ts), so a second
 * SIGINT within a second is the same one; a later one quits at once (exit 130; files are written
 * atomically, so none is half-written, and process.exit's 'exit' handler removes the temporary file
 * of a write in progress). While this listens, SIGINT is its own: src/node/files.ts's listener,
 * which stands in for the default action during writes (remove the temporary files, end by the
 * signal), leaves it alone; before and after a session SIGINT ends the process by the signal.
 *
 *   - One input (passesSession): nothing is written when the run is cancelled.
 *   - Many inputs (manyPassesSession, src/cli/many.ts): one bar of passes over all inputs (the
 *     passes of the inputs not run yet estimated from those run so far, the inputs done beside
 *     it); Ctrl-C stops the batch of inputs in flight, which writes nothing; the inputs finished
 *     before are complete (their outputs and JSONL lines), and --resume goes on from them.
 */
import { AbortError } from '../errors.ts';
import type { PassProgress } from '../gradcam/types.ts';
import type { ProgressStream } from '../models/progress.ts';
import { type InputsProgress, inputsProgress } from './progress.ts';

/** What a call of the API takes to be cancellable and report its passes. */
export interface PassControl {
  signal: AbortSignal;
  onProgress(p: PassProgress): void;
}

export interface PassesSession extends PassControl {
  /**
   * Runs the API call: its AbortError (or Ctrl-C pressed just after it returned) becomes the
   * command's 'cancelled (Ctrl-C)', before anything is written.
   */
  run<T>(call: () => Promise<T>): Promise<T>;
  /** Clears the bar and stops listening for SIGINT. */
  done(): void;
}

/** Listens for SIGINT (see the module comment) until the returned function is called. */
function onCtrlC(controller: AbortController, say: (line: string) => void): () => void {
  let firstAt = 0;
  const onSigint = () => {
    if (!controller.signal.aborted) {
      firstAt = Date.now();
      say('gradcam: Ctrl-C: stopping after the batch of passes in flight (Ctrl-C again to quit at once)');
      controller.abort(new Error('Ctrl-C'));
    } else if (Date.now() - firstAt > 1000) {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  return () => process.off('SIGINT', onSigint);
}

export function passesSession(info: (line: string) => void, stream: ProgressStream = process.stderr): PassesSession {
  const controller = new AbortController();
  let bar: InputsProgress | undefined;
  let shown = 0;
  let total = 0;
  const stop = onCtrlC(controller, (line) => (bar ? bar.log(line) : info(line)));
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
      stop();
    },
  };
}

/** The many-inputs mode's display and Ctrl-C with the multi-pass methods (see the module comment). */
export interface ManyPassesSession {
  /**
   * Runs one API call for `images` inputs with the session's signal and progress. An AbortError
   * from Ctrl-C becomes `cancelled()`'s error; so does Ctrl-C before the call (nothing runs).
   * A call that returned is complete: its results are the caller's to write.
   */
  call<T>(images: number, fn: (control: PassControl) => Promise<T>): Promise<T>;
  /** Throws `cancelled()`'s error when Ctrl-C was pressed: the loop stops before its next batch of inputs. */
  check(): void;
  /** `n` more inputs finished (their lines written). */
  advance(n: number): void;
  /** A line through `write` (default: the message stream), the bar cleared around it. */
  log(line: string, write?: (line: string) => void): void;
  /** Clears the bar and stops listening for SIGINT. */
  done(): void;
}

/**
 * `inputs`: the inputs to run; `cancelled`: the error Ctrl-C ends the run with (its hint says what
 * was written and how to go on). The bar's total is the passes done in finished calls, the call in
 * flight's total, and for the inputs not started the mean passes per input so far (exact when every
 * input takes as many, as scorecam's channels; skip-zero's vary).
 */
export function manyPassesSession(info: (line: string) => void, inputs: number, cancelled: () => AbortError,
  stream: ProgressStream = process.stderr, opts: { intervalMs?: number; now?: () => number } = {}): ManyPassesSession {
  const controller = new AbortController();
  let bar: InputsProgress | undefined;
  let inputsDone = 0;
  /** Passes and inputs of the finished calls. */
  let passesBefore = 0;
  let imagesBefore = 0;
  /** The call in flight: its inputs, and passes done and total as it last reported. */
  let images = 0;
  let callDone = 0;
  let callTotal = 0;
  let shown = 0;
  /** When the first call began: the bar's rate counts from there, not from the first report. */
  let began: number | undefined;
  const now = opts.now ?? (() => Date.now());
  const say = (line: string, write?: (line: string) => void) => (bar ? bar.log(line, write) : (write ?? info)(line));
  const stop = onCtrlC(controller, say);
  const estimate = () => {
    const perInput = (passesBefore + callTotal) / Math.max(1, imagesBefore + images);
    return passesBefore + callTotal + Math.round(perInput * Math.max(0, inputs - inputsDone - images));
  };
  const check = () => {
    if (controller.signal.aborted) throw cancelled();
  };
  return {
    async call(n, fn) {
      check();
      began ??= now();
      images = n;
      callDone = callTotal = 0;
      try {
        return await fn({
          signal: controller.signal,
          onProgress(p) {
            callDone = p.done;
            callTotal = p.total;
            if (!bar) {
              info(`gradcam: about ${estimate()} passes for ${inputs} input${inputs === 1 ? '' : 's'} (${p.method} first); Ctrl-C stops cleanly`);
              bar = inputsProgress(estimate(), info, stream, { ...opts, start: began, unit: 'passes', note: () => `${inputsDone} of ${inputs} inputs done` });
            } else bar.setTotal(estimate());
            bar.advance(passesBefore + callDone - shown);
            shown = passesBefore + callDone;
          },
        });
      } catch (e) {
        throw e instanceof AbortError && controller.signal.aborted ? cancelled() : e;
      } finally {
        // A call that failed ran its passes too (a batch run again input by input counts them again).
        passesBefore += callDone;
        imagesBefore += images;
        images = callDone = callTotal = 0;
      }
    },
    check,
    advance(n) {
      inputsDone += n;
      bar?.redraw();
    },
    log: say,
    done() {
      bar?.done();
      stop();
    },
  };
}
