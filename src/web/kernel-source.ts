/**
 * The kernel view of the per-kernel profile: for a dispatch's kernel (`<kernel>[.<use>].<entry>`,
 * src/gpu/kernel.ts), the shader file it was written in (shaders/*.wgsl), the formula from that
 * file's opening comment, the header that declareKernel generated from the kernel's declaration
 * (overrides, constants, the Params struct, the bindings), and the hand-written body. Everything is
 * read from the kernels themselves (ALL_KERNELS) and the shader files' text: nothing is copied.
 */
import type { AnyKernel } from '../gpu/kernel.ts';
import { ALL_KERNELS } from '../kernels/index.ts';
import { h } from './ui.ts';

/** Every shader file's text, by its path ('shaders/conv.wgsl'), to name the file a kernel's body comes from. */
const SHADERS: [string, string][] = Object.entries(import.meta.glob<string>('../../shaders/*.wgsl', { eager: true, import: 'default' }))
  .map(([path, text]) => [path.replace(/^(\.\.\/)+/, ''), text]);

export interface KernelSource {
  kernel: AnyKernel;
  /** The entry point the dispatch ran. */
  entry: string;
  /** The shader file whose text is the kernel's body (undefined when none matches exactly). */
  file?: string;
  /** The file's opening comment: the formula it computes and how threads map to outputs. */
  formula: string;
}

/** The opening comment of a WGSL text: its leading `//` lines, up to the first line that is not one. */
export function openingComment(text: string): string {
  const lines: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*\/\/ ?(.*)$/.exec(line);
    if (!m) break;
    lines.push(m[1]);
  }
  return lines.join('\n').trim();
}

/** The kernel behind a dispatch name: the declared kernel whose name is its longest prefix. */
export function kernelSource(dispatch: string): KernelSource | undefined {
  const kernel = ALL_KERNELS.filter((k) => dispatch.startsWith(`${k.name}.`)).sort((a, b) => b.name.length - a.name.length)[0];
  if (!kernel) return undefined;
  const entry = dispatch.slice(dispatch.lastIndexOf('.') + 1);
  const file = SHADERS.find(([, text]) => text === kernel.decl.body)?.[0];
  return { kernel, entry, file, formula: openingComment(kernel.decl.body) };
}

/**
 * Shows a kernel in `el`: its name and entry, the file, the formula, then the generated header and
 * the body, each in its own block (`part` scrolls to one).
 */
export function renderKernelSource(el: HTMLElement, dispatch: string, part: 'source' | 'header'): void {
  const k = kernelSource(dispatch);
  if (!k) {
    el.replaceChildren(h('h2', {}, 'Kernel'), h('p', { className: 'note' }, `No declared kernel is named by '${dispatch}'.`));
    el.hidden = false;
    return;
  }
  const header = h('pre', { id: 'kernel-header', className: 'wgsl' }, k.kernel.header);
  const body = h('pre', { id: 'kernel-body', className: 'wgsl' }, k.kernel.decl.body);
  const close = h('button', { type: 'button', className: 'close' }, 'Close');
  close.addEventListener('click', () => (el.hidden = true));
  el.replaceChildren(
    h('h2', {}, 'Kernel ', h('code', { id: 'kernel-name' }, dispatch), ' ', h('span', { className: 'thin' },
      `entry point ${k.entry} of kernel ${k.kernel.name}${k.file ? `, ${k.file}` : ''}`), ' ', close),
    h('h3', {}, 'What it computes ', h('span', { className: 'thin' }, '(the file\'s opening comment)')),
    h('pre', { id: 'kernel-formula', className: 'formula' }, k.formula),
    h('h3', {}, 'Generated header ', h('span', { className: 'thin' }, '(declareKernel, from the declaration in TS: overrides, constants, Params, bindings)')),
    header,
    h('h3', {}, `Hand-written body ${k.file ? `(${k.file})` : ''}`),
    body,
  );
  el.hidden = false;
  (part === 'header' ? header : el).scrollIntoView({ behavior: 'smooth', block: 'start' });
}
