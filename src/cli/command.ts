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
    // parseArgs messages end with advice for programmers ("To specify a positional argument ..."): keep the first sentence.
    const msg = (err as Error).message.replace(/\. To specify .*$/s, '').replace(/^[A-Z]/, (c) => c.toLowerCase());
    throw new UsageError(msg, command);
  }
}

export function stringOption(args: Args, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A positive integer option (e.g. --top 5). */
export function intOption(command: Command, args: Args, name: string, fallback: number, min = 1): number {
  const v = stringOption(args, name);
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`--${name} wants an integer ≥ ${min}, got '${v}'`, command);
  return Number(v);
}

/** Exactly `n` positionals, or a usage error naming what is expected. */
export function positionals(command: Command, args: Args, min: number, max: number, what: string): string[] {
  const p = args.positionals;
  if (p.length < min) throw new UsageError(`missing ${what}`, command);
  if (p.length > max) throw new UsageError(`unexpected argument '${p[max]}'`, command);
  return p;
}
