/** The page's elements and the small functions that render state into them (no logic of its own). */
import type { GradcamTimings, Prediction } from '../gradcam/types.ts';
import type { DispatchTiming } from '../gpu/profiler.ts';
import type { LabelSet } from './labels.ts';
import { allLayers, type LayerInfo } from '../gradcam/layers.ts';

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  return el as T;
}

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const el = Object.assign(document.createElement(tag), props);
  el.append(...children);
  return el;
}

export const ui = {
  app: byId<HTMLElement>('app'),
  adapter: byId<HTMLElement>('adapter'),
  notice: byId<HTMLElement>('notice'),
  noWebGpu: byId<HTMLElement>('no-webgpu'),
  noWebGpuReason: byId<HTMLElement>('no-webgpu-reason'),
  view: byId<HTMLElement>('view'),
  picture: byId<HTMLCanvasElement>('picture'),
  heat: byId<HTMLCanvasElement>('heat'),
  busy: byId<HTMLElement>('busy'),
  busyText: byId<HTMLElement>('busy-text'),
  stop: byId<HTMLButtonElement>('stop'),
  gridSlow: byId<HTMLInputElement>('grid-slow'),
  gridSlowPasses: byId<HTMLElement>('grid-slow-passes'),
  imageFile: byId<HTMLInputElement>('image-file'),
  webcam: byId<HTMLButtonElement>('webcam'),
  fps: byId<HTMLElement>('fps'),
  opacity: byId<HTMLInputElement>('opacity'),
  opacityValue: byId<HTMLOutputElement>('opacity-value'),
  save: byId<HTMLButtonElement>('save'),
  caption: byId<HTMLElement>('caption'),
  stripSection: byId<HTMLElement>('strip-section'),
  strip: byId<HTMLElement>('strip'),
  stripNote: byId<HTMLElement>('strip-note'),
  gridSection: byId<HTMLElement>('grid-section'),
  grid: byId<HTMLElement>('grid'),
  gridNote: byId<HTMLElement>('grid-note'),
  inspector: byId<HTMLElement>('inspector'),
  gallerySection: byId<HTMLElement>('gallery-section'),
  gallery: byId<HTMLElement>('gallery'),
  galleryNote: byId<HTMLElement>('gallery-note'),
  galleryZip: byId<HTMLButtonElement>('gallery-zip'),
  galleryJsonl: byId<HTMLButtonElement>('gallery-jsonl'),
  galleryClose: byId<HTMLButtonElement>('gallery-close'),
  method: byId<HTMLSelectElement>('method'),
  counterfactual: byId<HTMLInputElement>('counterfactual'),
  augSmooth: byId<HTMLInputElement>('aug-smooth'),
  eigenSmooth: byId<HTMLInputElement>('eigen-smooth'),
  smoothNote: byId<HTMLElement>('smooth-note'),
  showGrid: byId<HTMLInputElement>('show-grid'),
  showStrip: byId<HTMLInputElement>('show-strip'),
  showInspector: byId<HTMLInputElement>('show-inspector'),
  model: byId<HTMLSelectElement>('model'),
  modelFile: byId<HTMLInputElement>('model-file'),
  progress: byId<HTMLElement>('progress'),
  progressBar: byId<HTMLProgressElement>('progress-bar'),
  progressText: byId<HTMLElement>('progress-text'),
  modelNote: byId<HTMLElement>('model-note'),
  modelDetails: byId<HTMLDetailsElement>('model-details'),
  modelFacts: byId<HTMLElement>('model-facts'),
  modelForm: byId<HTMLFormElement>('model-form'),
  recipePreset: byId<HTMLSelectElement>('recipe-preset'),
  recipeMean: byId<HTMLInputElement>('recipe-mean'),
  recipeStd: byId<HTMLInputElement>('recipe-std'),
  recipeSize: byId<HTMLInputElement>('recipe-size'),
  recipeLayout: byId<HTMLSelectElement>('recipe-layout'),
  modelReset: byId<HTMLButtonElement>('model-reset'),
  labelsFile: byId<HTMLInputElement>('labels-file'),
  showStripWhat: byId<HTMLElement>('show-strip-what'),
  classSelect: byId<HTMLSelectElement>('class'),
  classSearch: byId<HTMLInputElement>('class-search'),
  classList: byId<HTMLDataListElement>('class-list'),
  layer: byId<HTMLSelectElement>('layer'),
  predictions: byId<HTMLOListElement>('predictions'),
  timings: byId<HTMLElement>('timings'),
  profile: byId<HTMLButtonElement>('profile'),
  tune: byId<HTMLButtonElement>('tune'),
  tuneNote: byId<HTMLElement>('tune-note'),
  profileOut: byId<HTMLElement>('profile-out'),
  kernelView: byId<HTMLElement>('kernel-view'),
};

let noticeTimer: ReturnType<typeof setTimeout> | undefined;

/**
 * One line above the app; errors stay until the next notice, information fades after a while.
 * A command in `backquotes` is shown as code (and loses the quotes).
 */
export function notice(text: string, kind: 'info' | 'error' = 'info'): void {
  clearTimeout(noticeTimer);
  ui.notice.replaceChildren(...text.split(/`([^`]+)`/).map((part, i) => (i % 2 ? h('code', {}, part) : part)));
  ui.notice.dataset.kind = kind;
  ui.notice.hidden = !text;
  if (kind === 'info' && text) noticeTimer = setTimeout(() => (ui.notice.hidden = true), 12_000);
}

export function progress(text: string | null, fraction?: number): void {
  ui.progress.hidden = text === null;
  ui.progressText.textContent = text ?? '';
  if (fraction === undefined) ui.progressBar.removeAttribute('value');
  else ui.progressBar.value = fraction;
}

let busyTimer: ReturnType<typeof setTimeout> | undefined;

/** The "running…" veil over the view, shown only when work takes longer than a blink. */
export function busy(text: string | null): void {
  clearTimeout(busyTimer);
  if (text === null) {
    ui.busy.hidden = true;
    return;
  }
  ui.busyText.textContent = text;
  busyTimer = setTimeout(() => (ui.busy.hidden = false), 120);
}

const pct = (p: number) => `${(100 * p).toFixed(p >= 0.995 || p < 0.001 ? 0 : 1)} %`;

export function renderPredictions(predictions: Prediction[], labels: LabelSet, selected: number | null, onPick: (c: number) => void): void {
  const items = predictions.map((p) => {
    const button = h('button', { type: 'button', className: 'prediction', title: `class ${p.class}, logit ${p.score.toFixed(3)}; show its map` },
      h('span', { className: 'label' }, labels.of(p.class)),
      h('span', { className: 'value' }, pct(p.probability)));
    button.style.setProperty('--p', `${(100 * p.probability).toFixed(1)}%`);
    if (p.class === selected) button.setAttribute('aria-pressed', 'true');
    button.addEventListener('click', () => onPick(p.class));
    return h('li', {}, button);
  });
  ui.predictions.replaceChildren(...items);
}

/** The class picker: the best class, the current top 5, and the explicitly chosen class. */
export function renderClassPicker(predictions: Prediction[], labels: LabelSet, choice: 'top' | number): void {
  const key = JSON.stringify([labels.name, predictions.map((p) => p.class), choice]);
  if (ui.classSelect.dataset.key === key) return; // do not rebuild an open <select> every webcam frame
  ui.classSelect.dataset.key = key;
  const options = [h('option', { value: 'top' }, predictions.length ? `top prediction (${labels.of(predictions[0].class)})` : 'top prediction')];
  const listed = new Set<number>();
  for (const p of predictions) {
    options.push(h('option', { value: String(p.class) }, `${labels.of(p.class)} (${pct(p.probability)})`));
    listed.add(p.class);
  }
  if (choice !== 'top' && !listed.has(choice)) options.push(h('option', { value: String(choice) }, labels.of(choice)));
  ui.classSelect.replaceChildren(...options);
  ui.classSelect.value = String(choice);
}

export function renderClassSearch(labels: LabelSet): void {
  ui.classList.replaceChildren(...[...Array(labels.meaningful).keys()].map((c) => h('option', { value: `${labels.of(c)} · ${c}` })));
}

/** Parses what the search box holds: "tabby, tabby cat · 281", a class number, or an exact label. */
export function parseClassSearch(text: string, labels: LabelSet): number | null {
  const m = /·\s*(\d+)\s*$/.exec(text) ?? /^\s*(\d+)\s*$/.exec(text);
  if (m) {
    const c = Number(m[1]);
    return c < labels.count ? c : null;
  }
  const q = text.trim().toLowerCase();
  if (!q) return null;
  for (let c = 0; c < labels.count; c++) if (labels.of(c).toLowerCase() === q) return c;
  return null;
}

/**
 * Short names for layers: 'inception_4e/output_1' → 'inception_4e', 'conv2/3x3_2' stays; torch.onnx's
 * scoped names lose the op's output: '/layer4/layer4.0/relu_1/Relu_output_0' → 'layer4.0/relu_1'
 * (the module path, as --layer takes it, and the op in it), '/relu/Relu_output_0' → 'relu'.
 */
export function layerTitle(name: string): string {
  const parts = name.split('/');
  if (parts[0] === '' && parts.length >= 3 && /_output_\d+$/.test(parts[parts.length - 1])) return parts.slice(-3, -1).filter(Boolean).join('/');
  return name.replace(/\/output(_\d+)?$/, '');
}

export function renderLayerPicker(layers: LayerInfo[], value: string): void {
  const blocks = allLayers(layers); // 'all': the block outputs, or the stage outputs of a model without blocks
  const auto = layers[layers.length - 1];
  const dims = (l: LayerInfo) => `${l.shape[2]}×${l.shape[3]}`;
  const options: HTMLElement[] = [h('option', { value: 'auto' }, auto ? `automatic (${layerTitle(auto.name)}, ${dims(auto)})` : 'automatic')];
  if (blocks.length) options.push(h('optgroup', { label: blocks[0].block ? 'block outputs' : 'stage outputs' }, ...blocks.map((l) => h('option', { value: l.name }, `${layerTitle(l.name)} (${dims(l)})`))));
  const others = layers.filter((l) => !blocks.includes(l));
  if (others.length) options.push(h('optgroup', { label: 'other layers' }, ...others.map((l) => h('option', { value: l.name }, `${l.name} (${dims(l)})`))));
  ui.layer.replaceChildren(...options);
  ui.layer.value = layers.some((l) => l.name === value) || value === 'all' ? value : 'auto';
}

export const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + ' ms';

export function renderTimings(t: GradcamTimings, compileMs: number | undefined, adapter: string): void {
  const rows: [string, string][] = [
    ['forward', ms(t.forwardMs)],
    ['backward', ms(t.backwardMs)],
    ['map', ms(t.camMs)],
    ['wall clock', `${ms(t.totalMs)} (with read-back)`],
  ];
  if (compileMs !== undefined) rows.push(['compile', ms(compileMs)]);
  rows.push(['measured by', t.source === 'gpu' ? 'GPU timestamps' : 'the CPU clock (no timestamp queries)'], ['adapter', adapter]);
  ui.timings.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

/**
 * The per-kernel profile: the 10 slowest dispatches of the forward pass, each with links to its
 * kernel's WGSL source and generated header (`show`: the kernel view, src/web/kernel-source.ts).
 */
export function renderProfile(timings: DispatchTiming[], show: (kernel: string, part: 'source' | 'header') => void): void {
  const total = timings.reduce((a, t) => a + t.ms, 0);
  const top = [...timings].sort((a, b) => b.ms - a.ms).slice(0, 10);
  const row = (cells: (string | Node)[], tag: 'td' | 'th' = 'td', title = '') => h('tr', { title }, ...cells.map((c) => h(tag, {}, c)));
  const link = (kernel: string, part: 'source' | 'header', text: string) => {
    const a = h('a', { href: '#kernel-view', className: 'kernel-link', title: `${kernel}: its ${part === 'source' ? 'WGSL source' : 'generated header'}` }, text);
    a.dataset.kernel = kernel;
    a.dataset.part = part;
    a.addEventListener('click', (e) => {
      e.preventDefault();
      show(kernel, part);
    });
    return a;
  };
  const links = (kernel: string) => h('span', {}, link(kernel, 'source', 'WGSL'), ' · ', link(kernel, 'header', 'header'));
  // The op's first name ('conv2/3x3' of 'conv2/3x3+conv2/relu_3x3'); the full label and shapes are the row's tooltip.
  const table = h('table', {},
    h('thead', {}, row(['op', 'type', 'time', 'GFLOP/s', 'kernel'], 'th')),
    h('tbody', {}, ...top.map((t) => row([t.dispatch.label.split('+')[0], t.dispatch.opType, ms(t.ms),
      t.ms > 0 && t.dispatch.flops > 0 ? (t.dispatch.flops / (t.ms * 1e6)).toFixed(1) : '–', links(t.dispatch.kernel)], 'td', `${t.dispatch.label}: ${t.dispatch.shapes}; kernel ${t.dispatch.kernel}`))));
  const flops = timings.reduce((a, t) => a + t.dispatch.flops, 0);
  ui.profileOut.replaceChildren(
    h('p', {}, `forward: ${timings.length} dispatches, ${ms(total)} in all, ${(flops / 1e9).toFixed(2)} GFLOP, ${(flops / (total * 1e6)).toFixed(1)} GFLOP/s; the 10 slowest:`),
    table);
  ui.profileOut.hidden = false;
}

/**
 * The method picker: every method, with its formula and paper as the tooltip; the methods of one
 * pass first, then the slow ones (many passes each: `passes`, for the model and layer in view, or
 * undefined before a model is loaded), each saying how many passes it needs before it starts.
 */
export function renderMethodPicker(methods: readonly { name: string; formula: string; reference: string; slow: boolean; passes?: number }[], value: string): void {
  const option = (m: (typeof methods)[number]) => {
    const o = h('option', { value: m.name, title: `${m.formula} (${m.reference})` }, m.slow ? `${m.name} — ${m.passes === undefined ? 'many' : m.passes.toLocaleString('en')} passes` : m.name);
    if (m.passes !== undefined) o.dataset.passes = String(m.passes);
    return o;
  };
  const fast = methods.filter((m) => !m.slow), slow = methods.filter((m) => m.slow);
  ui.method.replaceChildren(h('optgroup', { label: 'one forward and backward pass' }, ...fast.map(option)),
    ...(slow.length ? [h('optgroup', { label: 'slow: many passes (a Stop button while they run)' }, ...slow.map(option))] : []));
  ui.method.value = value;
}

/** The running veil's progress of a multi-pass run: passes done, and the time left at the rate so far. */
export function passProgress(method: string, done: number, total: number, startedMs: number): string {
  const elapsed = (performance.now() - startedMs) / 1000;
  const left = done > 0 ? (elapsed / done) * (total - done) : undefined;
  const time = left === undefined ? '' : left >= 90 ? `, about ${Math.round(left / 60)} min left` : `, about ${Math.ceil(left)} s left`;
  return `${method}: ${done.toLocaleString('en')} of ${total.toLocaleString('en')} passes${time}`;
}

/** A thumbnail button: a canvas, a title, and optional lines under it (a time, a note). */
export function makeGalleryItem(title: string, canvas: HTMLCanvasElement, selected: boolean, onPick: () => void, ...lines: string[]): HTMLElement {
  const b = h('button', { type: 'button', className: 'thumb', title: `show ${title}` }, canvas, h('span', { className: 'thumb-title' }, title),
    ...lines.map((l) => h('span', { className: 'thumb-line' }, l)));
  if (selected) b.setAttribute('aria-pressed', 'true');
  b.addEventListener('click', onPick);
  return b;
}
