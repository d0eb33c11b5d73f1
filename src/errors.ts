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

/** One op type a model uses that the engine does not read: its first node, and how many nodes use it. */
export interface UnsupportedOp {
  /** The op type, with its domain when it is not the default ONNX one ('com.microsoft:FusedConv'). */
  opType: string;
  firstNode: string;
  nodes: number;
}

/**
 * A model that uses op types the engine does not implement (refused before lowering, with every
 * missing type named at once). The CLI exits 2 for it: the file is fine, the engine cannot run it.
 */
export class UnsupportedModelError extends GradcamError {
  constructor(message: string, readonly missing: readonly UnsupportedOp[], hint?: string) {
    super(message, hint);
    this.name = 'UnsupportedModelError';
  }
}

/** Prefixes an error from a step with its context ("model.onnx: ..."), keeping the hint (and the kind). */
export function withContext(context: string, err: unknown): GradcamError {
  if (err instanceof UnsupportedModelError) return new UnsupportedModelError(`${context}: ${err.message}`, err.missing, err.hint);
  if (err instanceof GradcamError) return new GradcamError(`${context}: ${err.message}`, err.hint);
  const msg = err instanceof Error ? err.message : String(err);
  return new GradcamError(`${context}: ${msg}`);
}

/**
 * A run cancelled through its AbortSignal (GradcamOptions.signal; the CLI's Ctrl-C): nothing was
 * returned or written, and the network is still usable. The CLI exits 130 for it (128 + SIGINT).
 */
export class AbortError extends GradcamError {
  constructor(reason?: unknown, hint = 'Nothing was returned; the network is still usable.') {
    const why = reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : '';
    super(`cancelled${why && why !== 'This operation was aborted' ? ` (${why})` : ''}: the run was stopped (its AbortSignal) before it finished`, hint);
    this.name = 'AbortError';
  }
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
