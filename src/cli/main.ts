/**
 * The `gradcam` command (bundled into dist/gradcam.mjs by scripts/build.mjs).
 *
 * Exit codes: 0 done; 1 a user error (GradcamError: one line `gradcam: <message>`, maybe a
 * `hint:` line); 2 a usage error; 3 a bug (anything else). The process exits explicitly when the
 * work is done: Dawn keeps the event loop alive otherwise.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GradcamError } from '../errors.ts';
import { repositoryRoot } from '../node/paths.ts';
import { classify } from './classify.ts';
import { explain } from './explain.ts';
import { fetchCommand } from './fetch.ts';
import { type Command, type Io, parseCommandArgs, UsageError } from './command.ts';
import { generate } from './generate.ts';
import { info } from './info.ts';

const COMMANDS: Command[] = [explain, classify, info, fetchCommand, generate];

const io: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  info: (line) => process.stderr.write(`${line}\n`),
  progress: (line) => {
    if (process.stderr.isTTY) process.stderr.write(`${line}\n`);
  },
};

function version(): string {
  try {
    return JSON.parse(readFileSync(join(repositoryRoot(), 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `gradcam ${version()}: Grad-CAM for GoogLeNet on hand-written WebGPU kernels

usage: gradcam <command> [options]

commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}\n  ${' '.repeat(width)}  ${c.usage}`).join('\n')}

options:
  -h, --help   this help; \`gradcam <command> --help\` for a command's options
  --version    print the version

Without a GPU, WebGPU runs on SwiftShader (a CPU Vulkan driver shipped with Debian's chromium).`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.info(mainHelp());
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    io.out(mainHelp());
    return 0;
  }
  if (name === '--version' || name === '-V') {
    io.out(version());
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) throw new UsageError(name.startsWith('-') ? `unknown option '${name}'` : `unknown command '${name}'`);
  const args = parseCommandArgs(command, rest);
  if (args.values.help) {
    io.out(`usage: ${command.usage}\n\n${command.summary}\n\n${command.help}`);
    return 0;
  }
  await command.run(args, io);
  return 0;
}

/** Prints an error the way the exit code says: user error, usage error, or bug. */
function report(err: unknown): number {
  if (err instanceof UsageError) {
    io.info(`gradcam: ${err.message}`);
    if (err.hint) io.info(`hint: ${err.hint}`);
    io.info(err.command ? `usage: ${err.command.usage}  (gradcam ${err.command.name} --help)` : 'usage: gradcam <command> [options]  (gradcam --help)');
    return 2;
  }
  if (err instanceof GradcamError) {
    io.info(`gradcam: ${err.message}`);
    if (err.hint) io.info(`hint: ${err.hint}`);
    return 1;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  io.info(`gradcam: ${e.message} (this is a bug)`);
  io.info(process.env.GRADCAM_DEBUG ? String(e.stack) : 'hint: set GRADCAM_DEBUG=1 for the stack trace, and please report it.');
  return 3;
}

/** Waits until what was written to a stream has been handed to the OS (pipes can be asynchronous). */
function flush(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}

// `gradcam info model.onnx | head`: a reader that stops early is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const code = await main(process.argv.slice(2)).catch(report);
await Promise.all([flush(process.stdout), flush(process.stderr)]);
process.exit(code);
