/**
 * What every `gradcam` command is made of: its help text, its options (node:util parseArgs,
 * strict: an unknown option is a usage error) and its `run`, which gets the parsed arguments and
 * the output channels. Results go to stdout; messages and progress go to stderr.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { GradcamError } from '../errors.ts';

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Args {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export interface Io {
  /** One line of results (stdout). */
  out(line: string): void;
  /** One line of information (stderr, always). */
  info(line: string): void;
  /** One line of progress for a long step (stderr, only when it is a terminal). */
  progress(line: string): void;
  /**
   * Whether an output path names where results go (stdout): /dev/stdout, or the file stdout is
   * redirected to. Such a path is written through `out`, after the other results.
   */
  isStdout(path: string): boolean;
}

export interface Command {
  name: string;
  /** One line for `gradcam --help`. */
  summary: string;
  /** The synopsis, e.g. 'gradcam info <model.onnx> [--json FILE]'. */
  usage: string;
  /** The rest of `gradcam <name> --help`: options and notes. */
  help: string;
  options: Options;
  /** What an option's value is, for messages: { top: 'an integer ≥ 1' } → "--top takes an integer ≥ 1, got '-3'". */
  values?: Record<string, string>;
  run(args: Args, io: Io): Promise<void>;
}

/** A mistake in the command line: printed with the command's usage line, exit code 2. */
export class UsageError extends GradcamError {
  constructor(message: string, readonly command?: Command, hint?: string) {
    super(message, hint);
    this.name = 'UsageError';
  }
}

/** Parses a command's arguments (and its --help) strictly; mistakes become UsageError. */
export function parseCommandArgs(command: Command, argv: string[]): Args {
  try {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
    });
    return { values: values as Args['values'], positionals };
  } catch (err) {
    const ambiguous = ambiguousValue(command, argv, err);
    if (ambiguous) throw new UsageError(ambiguous, command);
    // parseArgs messages end with advice for programmers ("To specify a positional argument ..."): keep the first sentence.
    const msg = (err as Error).message.replace(/\.\s+(To specify|Did you forget) .*$/s, '').replace(/^[A-Z]/, (c) => c.toLowerCase());
    throw new UsageError(msg, command);
  }
}

/**
 * parseArgs refuses a value that starts with '-' (`--class -1`) as "ambiguous"; says instead what
 * the option takes and what it got.
 */
function ambiguousValue(command: Command, argv: string[], err: unknown): string | undefined {
  const m = /^Option '(-[^']+)' argument is ambiguous/.exec((err as Error)?.message ?? '');
  if (!m) return undefined;
  const given = m[1];
  const name = given.startsWith('--')
    ? given.slice(2)
    : Object.entries(command.options).find(([, o]) => o.short === given.slice(1))?.[0] ?? given.replace(/^-+/, '');
  const i = argv.indexOf(given);
  const value = i >= 0 ? argv[i + 1] : undefined;
  const takes = command.values?.[name] ?? 'a value';
  if (value !== undefined && /^-\d/.test(value)) return `--${name} takes ${takes}, got '${value}'`;
  return `--${name} takes ${takes}, got the option '${value ?? '?'}' instead (write --${name}=${value ?? 'VALUE'} for a value that starts with '-')`;
}

export function stringOption(args: Args, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A positive integer option (e.g. --top 5). */
export function intOption(command: Command, args: Args, name: string, fallback: number, min = 1): number {
  const v = stringOption(args, name);
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v) || Number(v) < min || !Number.isSafeInteger(Number(v))) throw new UsageError(`--${name} takes an integer ≥ ${min}, got '${v}'`, command);
  return Number(v);
}

/** An output file option (--json, --out, --save-input): an empty name is a usage error, not "no file". */
export function pathOption(command: Command, args: Args, name: string): string | undefined {
  const v = stringOption(args, name);
  if (v === '') throw new UsageError(`--${name} takes a file name, got an empty one`, command);
  return v;
}

const UNITS: Record<string, number> = {
  '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** A size in bytes: 5000000, 500MB, 1.5GiB (kB/MB/GB: powers of 1000; KiB/MiB/GiB: of 1024). */
export function parseByteSize(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?$/i.exec(s.trim());
  if (!m) return undefined;
  const n = Math.floor(Number(m[1]) * UNITS[(m[2] ?? '').toLowerCase()]);
  return Number.isSafeInteger(n) && n >= 1 ? n : undefined;
}

/** A byte-size option (--max-bytes 500MB). */
export function byteSizeOption(command: Command, args: Args, name: string): number | undefined {
  const v = stringOption(args, name);
  if (v === undefined) return undefined;
  const n = parseByteSize(v);
  if (n === undefined) throw new UsageError(`--${name} takes a size in bytes ≥ 1 (e.g. 500000000, 500MB, 2GiB), got '${v}'`, command);
  return n;
}

/** A duration option in seconds (--max-time 600, 0.5). */
export function secondsOption(command: Command, args: Args, name: string): number | undefined {
  const v = stringOption(args, name);
  if (v === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(v) || !(Number(v) > 0)) throw new UsageError(`--${name} takes a number of seconds > 0, got '${v}'`, command);
  return Number(v);
}

/** Exactly `n` positionals, or a usage error naming what is expected. */
export function positionals(command: Command, args: Args, min: number, max: number, what: string): string[] {
  const p = args.positionals;
  if (p.length < min) throw new UsageError(`missing ${what}`, command);
  if (p.length > max) throw new UsageError(`unexpected argument '${p[max]}'`, command);
  return p;
}
