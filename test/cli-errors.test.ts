/**
 * The CLI's error mapping (src/cli/report.ts): a GradcamError exits 1, a usage error 2, an
 * InternalError (an engine bug) and anything else 3 with "(this is a bug)".
 */
import { describe, expect, test } from 'vitest';
import { UsageError } from '../src/cli/command.ts';
import { exitCodeOf, reportError } from '../src/cli/report.ts';
import { GradcamError, InternalError } from '../src/errors.ts';

function report(err: unknown, debug = false): { code: number; lines: string[]; trace: string[] } {
  const lines: string[] = [];
  const trace: string[] = [];
  const code = reportError(err, { info: (l) => lines.push(l), trace: (l) => trace.push(l) }, debug);
  return { code, lines, trace };
}

describe('CLI error mapping', () => {
  test('a GradcamError is a user error: exit 1, the message and hint, no stack', () => {
    expect(report(new GradcamError('layer x is unknown', 'Try y.'))).toEqual({ code: 1, lines: ['gradcam: layer x is unknown', 'hint: Try y.'], trace: [] });
  });

  test('a usage error exits 2 with the usage line', () => {
    const r = report(new UsageError("unknown command 'frob'"));
    expect(r.code).toBe(2);
    expect(r.lines).toEqual(["gradcam: unknown command 'frob'", 'usage: gradcam <command> [options]  (gradcam --help)']);
  });

  test('an InternalError from a command exits 3 and says it is a bug', () => {
    const err = new InternalError("no gradient reached layer 'a'");
    expect(exitCodeOf(err)).toBe(3);
    const r = report(err);
    expect(r.code).toBe(3);
    expect(r.lines).toEqual([
      "gradcam: internal: no gradient reached layer 'a' (this is a bug)",
      'hint: set GRADCAM_DEBUG=1 for the stack trace, and please report it.',
    ]);
    const debug = report(err, true);
    expect(debug.code).toBe(3);
    expect(debug.trace[0]).toBe("InternalError: internal: no gradient reached layer 'a'");
  });

  test('anything else is a bug too: exit 3', () => {
    expect(report(new TypeError('x is undefined')).code).toBe(3);
    expect(report('a string').lines[0]).toBe('gradcam: a string (this is a bug)');
  });
});
