/**
 * One error type for everything a user can get wrong (a bad file, an unknown layer, a class out of
 * range). The CLI prints `message` as one line and exits non-zero; `hint` says what to do next.
 */
export class GradcamError extends Error {
  constructor(message: string, readonly hint?: string) {
    super(message);
    this.name = 'GradcamError';
  }
}

/** Prefixes an error from a step with its context ("model.onnx: ..."), keeping the hint. */
export function withContext(context: string, err: unknown): GradcamError {
  if (err instanceof GradcamError) return new GradcamError(`${context}: ${err.message}`, err.hint);
  const msg = err instanceof Error ? err.message : String(err);
  return new GradcamError(`${context}: ${msg}`);
}

/**
 * A broken promise inside the engine (a kernel bound wrongly, a layout that does not add up): never
 * the user's fault. The CLI reports it as a bug (exit 3).
 */
export class InternalError extends Error {
  constructor(message: string) {
    super(`internal: ${message}`);
    this.name = 'InternalError';
  }
}
