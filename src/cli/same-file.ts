/**
 * Outputs that are inputs: `classify a.png b.png --jsonl b.png` would truncate b.png before it is
 * read; `explain a.png --out a.png` would replace the picture with its overlay. Before any work the
 * output paths are compared with the inputs (and the model file) as files, by device and inode, so
 * that a symbolic link or a hard link to an input counts as that input; such a command line is a
 * usage error. Outputs that do not exist yet cannot be inputs; a path that cannot be examined is
 * left to the read or the write that will say why.
 */
import { type Stats, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { displayPath, type InputPath, joinName, listFolderNames } from '../node/byte-paths.ts';
import { type Command, UsageError } from './command.ts';

/** An output option and its path (undefined, '-': none, stdout). */
export interface NamedOutput {
  option: string;
  path: string | undefined;
}

/** A folder of outputs whose names are told by `isOutputName` (--out-dir: the overlays of some input). */
export interface OutputFolder {
  option: string;
  dir: string;
  isOutputName(name: string): boolean;
}

const statOrNone = (p: InputPath): Stats | undefined => {
  try {
    return statSync(p); // follows symbolic links: a link to an input is that input
  } catch {
    return undefined;
  }
};

const fileKey = (s: Stats) => `${s.dev}:${s.ino}`;

/** Throws a UsageError when an output is an input or the model file (see the module comment). */
export function refuseOutputsOverInputs(command: Command, files: { inputs: readonly InputPath[]; model?: string },
  outputs: NamedOutput[], folders: OutputFolder[] = []): void {
  const read = new Map<string, string>();
  for (const p of files.inputs) {
    const s = statOrNone(p);
    if (s?.isFile()) read.set(fileKey(s), `the input ${displayPath(p)}`);
  }
  const model = files.model !== undefined ? statOrNone(files.model) : undefined;
  if (model?.isFile()) read.set(fileKey(model), `the model file ${files.model}`);
  const hint = 'Choose another output path: writing it would destroy that file before (or instead of) reading it.';
  for (const { option, path } of outputs) {
    if (path === undefined || path === '-') continue;
    const s = statOrNone(path);
    const what = s?.isFile() ? read.get(fileKey(s)) : undefined;
    if (what) throw new UsageError(`${option} ${path} is ${what} too (the same file)`, command, hint);
  }
  for (const { option, dir, isOutputName } of folders) {
    let names: Buffer[];
    try {
      names = listFolderNames(dir);
    } catch {
      continue; // not there yet (made later), or unreadable: nothing in it is an input named through it
    }
    for (const name of names) {
      const shown = displayPath(name);
      if (!isOutputName(shown)) continue;
      const s = statOrNone(joinName(dir, name));
      const what = s?.isFile() ? read.get(fileKey(s)) : undefined;
      if (what) throw new UsageError(`${option} ${dir}: an overlay could be named ${shown}, which is ${what} too (the same file)`, command, hint);
    }
  }
}

/** The outputs written next to --out FILE for several maps: <stem>.<layer>.class<C>[.<method>]<ext> in its folder (or shortened: fitFileName). */
export function severalOutFolder(out: string, stem: string, ext: string): OutputFolder {
  const escaped = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`^(${escaped(stem)}\\.[A-Za-z0-9_]+|.*~[0-9a-f]{12})\\.class\\d+(\\.[A-Za-z0-9+-]+)?${escaped(ext)}$`);
  return { option: '--out', dir: dirname(out), isOutputName: (name) => pattern.test(name) };
}
