/**
 * `gradcam fetch [NAME|all|URL] [--url URL] [--force]`: downloads the manifest's models (the ONNX
 * Model Zoo GoogLeNets) into the model cache, checked against their size and SHA-256, and prints
 * their paths; also the download-limit options of every command that may fetch a model (the
 * progress display is src/models/progress.ts).
 */
import { DEFAULT_REAL_MODEL, findModel, MODELS } from '../../weights/manifest.ts';
import {
  DEFAULT_DOWNLOAD_DEADLINE_MS, DEFAULT_MAX_DOWNLOAD_BYTES, DEFAULT_MAX_RETRY_AFTER_MS, type DownloadTarget, fetchModel,
  type FetchOptions, isHttpUrl, mib, redactUrl, targetForEntry, targetForUrl,
} from '../../weights/fetch.ts';
import { GradcamError } from '../errors.ts';
import { baseUrlFromEnv, fetchOptionsWithProgress } from '../models/progress.ts';
import { formatBytes } from '../node/files.ts';
import { type Args, byteSizeOption, type Command, type Options, positionals, secondsOption, stringOption, UsageError } from './command.ts';

/** The download limits, as options of every command that may download a model. */
export const DOWNLOAD_OPTIONS: Options = { 'max-bytes': { type: 'string' }, 'max-time': { type: 'string' } };
export const DOWNLOAD_VALUES: Record<string, string> = { 'max-bytes': 'a size in bytes (e.g. 500MB, 2GiB)', 'max-time': 'a number of seconds' };

/** The help lines of DOWNLOAD_OPTIONS (indented to the help's option column, `width`). */
export function downloadOptionsHelp(width: number): string {
  const col = (s: string) => `  ${s.padEnd(width)}`;
  return `${col('--max-bytes N')}the most bytes a model downloaded from a URL may have (default ${formatBytes(DEFAULT_MAX_DOWNLOAD_BYTES)};
${' '.repeat(width + 2)}e.g. 500MB, 2GiB); a manifest model may have no more than its declared size
${col('--max-time S')}the most seconds a download may take, retries included (default ${DEFAULT_DOWNLOAD_DEADLINE_MS / 1000});
${' '.repeat(width + 2)}the .part is kept and the next run continues it`;
}

/** FetchOptions from --max-bytes and --max-time. */
export function downloadLimits(command: Command, args: Args): FetchOptions {
  const maxBytes = byteSizeOption(command, args, 'max-bytes');
  const seconds = secondsOption(command, args, 'max-time');
  return { ...(maxBytes !== undefined && { maxBytes }), ...(seconds !== undefined && { deadlineMs: seconds * 1000 }) };
}

const downloadable = () => MODELS.filter((m) => m.kind === 'onnx-zoo');
const allBytes = () => downloadable().reduce((s, m) => s + (m.bytes ?? 0), 0);

export const fetchCommand: Command = {
  name: 'fetch',
  summary: 'download a model of the manifest (the ONNX Model Zoo GoogLeNet) into the model cache, verified',
  usage: 'gradcam fetch [NAME|all|URL] [--url URL] [--force] [--max-bytes N] [--max-time S]',
  help: `options:
  --url URL       download from URL instead of the manifest's address (a mirror); the file must still
                  have the manifest's size and SHA-256
  --force         download again, even when the file is in the cache and verifies
${downloadOptionsHelp(16)}

NAME defaults to ${DEFAULT_REAL_MODEL}; 'all' fetches every downloadable model (${formatBytes(allBytes())} in all); a URL is downloaded
into the cache as \`--model URL\` does (no checksum known). The path of each file goes to stdout.

The cache is weights/cache/ in a checkout of the repository, else $XDG_CACHE_HOME/gradcam-webgpu
(~/.cache/gradcam-webgpu); GRADCAM_CACHE=DIR overrides it. GRADCAM_MODEL_BASE_URL=URL downloads
<URL>/<name>.onnx instead of the manifest's address (a mirror).

A file already in the cache is checked (size and SHA-256), not downloaded again. An interrupted
download is kept as <name>.onnx.part and continued (HTTP Range) by the next try or the next run;
only a complete, verified file is ever renamed to <name>.onnx. Transient failures (a dropped
connection, 5xx, a stalled transfer) are retried with backoff; a Retry-After of more than
${DEFAULT_MAX_RETRY_AFTER_MS / 1000} s is not waited for.

models:
${downloadable().map((m) => `  ${m.name} (${mib(m.bytes ?? 0)})\n      ${m.description}`).join('\n')}`,
  options: { url: { type: 'string' }, force: { type: 'boolean' }, ...DOWNLOAD_OPTIONS },
  values: { url: 'an http(s) URL', ...DOWNLOAD_VALUES },
  async run(args, io) {
    const [which = DEFAULT_REAL_MODEL] = positionals(fetchCommand, args, 0, 1, 'the model name');
    const url = stringOption(args, 'url');
    if (url !== undefined && !isHttpUrl(url)) throw new UsageError(`--url takes an http(s) URL, got '${redactUrl(url)}'`, fetchCommand);
    const limits = downloadLimits(fetchCommand, args);
    let targets: DownloadTarget[];
    if (which === 'all') {
      if (url) throw new UsageError('--url needs one model name, not all', fetchCommand);
      targets = downloadable().map((m) => targetForEntry(m, { baseUrl: baseUrlFromEnv() }));
      // Said before the first byte: 'all' is every zoo classifier, gigabytes.
      io.info(`gradcam: fetching all ${targets.length} downloadable models, ${formatBytes(allBytes())} in all (cached ones are verified, not downloaded again)`);
    } else if (isHttpUrl(which)) {
      if (url) throw new UsageError('give the URL once: as NAME or with --url', fetchCommand);
      targets = [targetForUrl(which)];
    } else {
      const entry = findModel(which);
      if (!entry) throw new GradcamError(`unknown model '${which}'`, `Downloadable: ${downloadable().map((m) => m.name).join(', ')} (or a URL).`);
      targets = [targetForEntry(entry, { url, baseUrl: baseUrlFromEnv() })];
    }
    const opts = fetchOptionsWithProgress(io.info, process.stderr, limits);
    for (const target of targets) {
      const result = await fetchModel(target, { ...opts, force: args.values.force === true });
      if (result.status === 'cached') {
        io.info(`gradcam: ${target.name} is in the cache already${result.verified ? ` and verified (${mib(result.bytes)}, SHA-256 ${result.sha256})` : ''}; --force downloads it again`);
      }
      io.out(result.path);
    }
  },
};
