/**
 * The `gradcam` command (bundled into dist/gradcam.mjs by scripts/build.mjs).
 *
 * Exit codes (src/cli/report.ts): 0 done; 1 a user error (GradcamError: one line
 * `gradcam: <message>`, maybe a `hint:` line); 2 a usage error; 3 a bug (InternalError, or anything
 * else). The process exits explicitly when the
 * work is done: Dawn keeps the event loop alive otherwise.
 *
 * Every line printed goes through src/node/text.ts: control characters escaped (names come from
 * model files), messages at most MAX_MESSAGE_LINE characters, credentials in URLs hidden.
 *
 * Results on stdout only. Dawn's Node binding prints its device log ("warning:", "info:") and
 * uncaptured errors ("validation:") with printf, i.e. to file descriptor 1, from native code that
 * JavaScript cannot redirect (Node has no dup2). So the commands that use the GPU (classify,
 * explain) run in a child process whose fd 1 is this process's stderr and whose results go to its
 * fd 3, which is this process's stdout (GRADCAM_RESULTS_FD=3). The parent only waits for it: it
 * passes on SIGINT, SIGTERM and SIGHUP and ends as the child ended; the child ends when the parent
 * is gone (its IPC channel closes).
 */
import { spawn } from 'node:child_process';
import { fstatSync, readFileSync, statSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { isatty, WriteStream } from 'node:tty';
import { ENDING_SIGNALS, fileErrorReason } from '../node/files.ts';
import { releaseNodeGpus } from '../gpu/node.ts';
import { repositoryRoot } from '../node/paths.ts';
import { classify } from './classify.ts';
import { evalCommand } from './eval.ts';
import { explain } from './explain.ts';
import { fetchCommand } from './fetch.ts';
import { type Command, type Io, parseCommandArgs, UsageError } from './command.ts';
import { generate } from './generate.ts';
import { info } from './info.ts';
import { reportError } from './report.ts';
import { messageLine, printable } from '../node/text.ts';

const COMMANDS: Command[] = [explain, classify, evalCommand, info, fetchCommand, generate];
/** The commands that start Dawn: run in a child process (see the header). */
const GPU_COMMANDS = new Set([classify.name, explain.name, evalCommand.name]);
const RESULTS_FD_ENV = 'GRADCAM_RESULTS_FD';

/** Where results go: stdout, or the file descriptor the parent process handed over. */
interface Results {
  write(text: string): void;
  flush(): Promise<void>;
}

/**
 * Exits quietly when the reader of the results has gone (`gradcam info model.onnx | head`); any
 * other write error (a full disk, `> /dev/full`) is the user's trouble, not a bug: said, exit 1.
 */
function onResultsError(err: NodeJS.ErrnoException): void {
  if (err.code === 'EPIPE') process.exit(0);
  writeSync(2, `gradcam: stdout: cannot write (${fileErrorReason(err)})\n`);
  process.exit(1);
}

function streamResults(stream: NodeJS.WritableStream): Results {
  stream.on('error', onResultsError);
  return {
    write: (text) => void stream.write(text),
    flush: () => new Promise((resolve) => stream.write('', () => resolve())),
  };
}

/** A writer for a file descriptor, of the kind Node would make for stdout: a terminal, a pipe or socket, else plain writes. */
function fdResults(fd: number): Results {
  if (isatty(fd)) return streamResults(new WriteStream(fd));
  const s = fstatSync(fd);
  if (s.isFIFO() || s.isSocket()) return streamResults(new Socket({ fd, readable: false, writable: true }));
  return {
    write(text) {
      const buf = Buffer.from(text);
      try {
        for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off);
      } catch (err) {
        onResultsError(err as NodeJS.ErrnoException);
      }
    },
    flush: async () => {},
  };
}

const resultsFd = process.env[RESULTS_FD_ENV];
delete process.env[RESULTS_FD_ENV];
const results: Results = resultsFd !== undefined ? fdResults(Number(resultsFd)) : streamResults(process.stdout);

/** Whether `path` is the file, pipe, socket or terminal results go to (same device and inode). */
function isStdout(path: string): boolean {
  try {
    const a = statSync(path);
    const b = fstatSync(resultsFd !== undefined ? Number(resultsFd) : 1);
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return false;
  }
}

const io: Io = {
  isStdout,
  out: (line) => results.write(`${printable(line)}\n`),
  info: (line) => process.stderr.write(`${messageLine(line)}\n`),
  progress: (line) => {
    if (process.stderr.isTTY) process.stderr.write(`${messageLine(line)}\n`);
  },
};

/** Text of several lines (help), each printed as a line of its own. */
const lines = (text: string, print: (line: string) => void) => text.split('\n').forEach((l) => print(l));

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
    lines(mainHelp(), io.info);
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    lines(mainHelp(), io.out);
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
    lines(`usage: ${command.usage}\n\n${command.summary}\n\n${command.help}`, io.out);
    return 0;
  }
  if (GPU_COMMANDS.has(command.name) && resultsFd === undefined && stdoutIsOpen()) return runInChild(argv);
  await command.run(args, io);
  return 0;
}

function stdoutIsOpen(): boolean {
  try {
    fstatSync(1);
    return true;
  } catch {
    return false;
  }
}

/** Paths that name our stdout; in the child, that is its fd 3 (its fd 1 is our stderr). */
const STDOUT_PATHS = new Set(['/dev/stdout', '/dev/fd/1', '/proc/self/fd/1']);
const CHILD_STDOUT = '/dev/fd/3';

/** The command line for the child: `--json /dev/stdout` still means our stdout there. */
function childArgv(argv: string[]): string[] {
  return argv.map((a) => {
    if (STDOUT_PATHS.has(a)) return CHILD_STDOUT;
    const m = /^(--[^=]+=)(.*)$/s.exec(a);
    return m && STDOUT_PATHS.has(m[2]) ? `${m[1]}${CHILD_STDOUT}` : a;
  });
}

/**
 * Runs this command line again in a child process whose fd 1 (where Dawn prints) is our stderr
 * and whose fd 3 (where it writes results) is our stdout; resolves with its exit code, or ends
 * this process by the signal that ended the child.
 */
function runInChild(argv: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1], ...childArgv(argv)], {
      stdio: ['inherit', 2, 'inherit', 1, 'ipc'],
      env: { ...process.env, [RESULTS_FD_ENV]: '3' },
    });
    const forward = (signal: NodeJS.Signals) => void child.kill(signal);
    for (const s of ENDING_SIGNALS) process.on(s, forward);
    child.on('error', (err) => resolve(report(err)));
    child.on('exit', (code, signal) => {
      for (const s of ENDING_SIGNALS) process.off(s, forward);
      if (signal) process.kill(process.pid, signal);
      else resolve(code ?? 3);
    });
  });
}

/** Prints an error the way the exit code says (src/cli/report.ts): user error, usage error, or bug. */
function report(err: unknown): number {
  // (io.info escapes control characters, hides URL credentials and shortens each line.)
  return reportError(err, { info: io.info, trace: (l) => process.stderr.write(`${printable(l)}\n`) });
}

/** Waits until what was written to a stream has been handed to the OS (pipes can be asynchronous). */
function flush(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}

if (resultsFd !== undefined) {
  // The child of runInChild: its parent waits for it; when the parent is gone, nobody does.
  process.channel?.unref();
  process.on('disconnect', () => process.exit(1));
  // process.stdout is the parent's stderr here (Dawn prints there too): a closed pipe is no error either.
  process.stdout.on('error', onResultsError);
}

const code = await main(process.argv.slice(2)).catch(report);
await Promise.all([results.flush(), flush(process.stdout), flush(process.stderr), releaseNodeGpus()]);
process.exit(code);
