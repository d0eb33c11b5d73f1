/**
 * How the CLI reports an error, and the exit code it ends with: 1 for what the user can fix
 * (GradcamError: `gradcam: <message>` and maybe a `hint:` line), 2 for a usage error (with the
 * command's usage line) and for a model with op types the engine does not implement
 * (UnsupportedModelError: every missing type named, no usage line), 3 for a bug (InternalError, or anything else): the message with
 * "(this is a bug)", and the stack trace with GRADCAM_DEBUG set.
 */
import { AbortError, GradcamError, InternalError, UnsupportedModelError } from '../errors.ts';
import { UsageError } from './command.ts';

export interface ErrorOutput {
  /** A message line (escaped and shortened by the caller). */
  info(line: string): void;
  /** A line of a stack trace, as it is. */
  trace(line: string): void;
}

/** The exit code for an error: 1 user error, 2 usage error or unsupported model, 3 bug, 130 cancelled (Ctrl-C: 128 + SIGINT). */
export function exitCodeOf(err: unknown): 1 | 2 | 3 | 130 {
  if (err instanceof InternalError) return 3;
  if (err instanceof AbortError) return 130;
  if (err instanceof UsageError || err instanceof UnsupportedModelError) return 2;
  if (err instanceof GradcamError) return 1;
  return 3;
}

/** Prints an error the way its exit code says, and returns that code. */
export function reportError(err: unknown, out: ErrorOutput, debug = Boolean(process.env.GRADCAM_DEBUG)): 1 | 2 | 3 | 130 {
  const code = exitCodeOf(err);
  if (err instanceof UsageError) {
    const e = err;
    out.info(`gradcam: ${e.message}`);
    if (e.hint) out.info(`hint: ${e.hint}`);
    out.info(e.command ? `usage: ${e.command.usage}  (gradcam ${e.command.name} --help)` : 'usage: gradcam <command> [options]  (gradcam --help)');
  } else if (err instanceof GradcamError) {
    const e = err;
    out.info(`gradcam: ${e.message}`);
    if (e.hint) out.info(`hint: ${e.hint}`);
  } else {
    const e = err instanceof Error ? err : new Error(String(err));
    out.info(`gradcam: ${e.message} (this is a bug)`);
    if (debug) for (const l of String(e.stack).split('\n')) out.trace(l);
    else out.info('hint: set GRADCAM_DEBUG=1 for the stack trace, and please report it.');
  }
  return code;
}
