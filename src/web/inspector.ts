/**
 * The inspector panel: what the selected map is made of, from the API's `inspect: true` report
 * (src/gradcam/inspect.ts, MapInspection), enough to answer "why is my map all zero?":
 *   - the diagnosis sentence;
 *   - the signed map before the ReLU in diverging colours, with its negative share;
 *   - the CAM identity where it applies (a layer followed only by global average pooling and the
 *     classifier, logit reduction: α_k = W_fc[c, k] / (h·w));
 *   - where the layer has branches: each inception branch's contribution (1×1, 3×3, 5×5, pool proj),
 *     or a residual block's split between its residual branch and its shortcut;
 *   - the top channels (positive and negative) with activation and gradient thumbnails;
 *   - every channel's weight and contribution, all C, in a table sorted by any column.
 * Only rendering: the numbers are the API's.
 */
import type { ChannelDetail, MapInspection } from '../gradcam/inspect.ts';
import type { GradcamMap } from '../gradcam/types.ts';
import { valueCanvas } from './colormap.ts';
import { h, layerTitle } from './ui.ts';
import { smoothingLabel } from './smoothing.ts';

type SortKey = 'channel' | 'branch' | 'weight' | 'contribution';

const num = (v: number | undefined) => (v === undefined ? '–' : v === 0 ? '0' : Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3 ? v.toExponential(3) : v.toPrecision(4));
const pct = (v: number) => `${(100 * v).toFixed(1)} %`;

/** How the channel table is sorted (kept across maps, so that a comparison reads the same way). */
const sort: { key: SortKey; descending: boolean } = { key: 'contribution', descending: true };

export function renderInspector(el: HTMLElement, map: GradcamMap, label: string): void {
  const x = map.inspection;
  if (!x) {
    const planes = map.raw.length / (map.shape[0] * map.shape[1]);
    const why = planes > 1
      ? `${map.method} is a gradient at the input (${planes}×${map.shape[0]}×${map.shape[1]}): it has no feature channels to weigh. Pick a layer method to inspect.`
      : map.smoothing
        ? `This map is smoothed (${smoothingLabel(map.smoothing)}): it is no longer a sum over channels of one pass, which is what the inspector takes apart. Turn the smoothing off to inspect it.`
        : 'This result has no inspection (it was made without inspect: true).';
    el.replaceChildren(h('h2', {}, 'Inspector'), h('p', { id: 'inspector-diagnosis', className: 'note' }, why));
    return;
  }
  const [rows, cols] = map.shape;
  const C = x.contributions.length;
  // A residual Add's two inputs both span every channel: the channels have no branch of their own then.
  const residual = isResidual(x);
  const kindOf = (k: number) => (residual ? undefined : x.branches?.find((b) => k >= b.channels[0] && k < b.channels[1])?.kind);
  const title = `${map.method}${map.counterfactual ? ' (counterfactual)' : ''} at ${layerTitle(map.layer)}, class “${label}”`;

  // The signed map: diverging colours around 0, symmetric scale ±max|v|.
  const signedScale = x.signed.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  const signed = h('figure', { className: 'signed' },
    valueCanvas(x.signed, rows, cols, 'diverging', signedScale, 'inspector-signed'),
    h('figcaption', {},
      h('strong', { id: 'inspector-negative-share' }, `negative share ${pct(x.negativeShare)}`),
      ` of the signed map's mass (Σ|negative| / Σ|all|), at ${pct(x.negativePositions)} of the ${rows}×${cols} positions; the ReLU removes it. `,
      `Blue < 0 < red, scale ±${num(signedScale)}.`));

  const parts: HTMLElement[] = [
    h('h2', {}, 'Inspector ', h('span', { className: 'thin' }, title)),
    h('p', { id: 'inspector-diagnosis', className: 'diagnosis' }, x.diagnosis),
    h('div', { className: 'inspector-row' }, signed, camIdentity(x)),
  ];
  // The branch view only where the layer has branches: an inception block's concat, a residual block's Add.
  if (x.branches?.length) parts.push(residual ? residualBranches(x) : branches(x));
  parts.push(topChannels('Top channels by contribution', x.topChannels, rows, cols, kindOf),
    topChannels('Most negative channels', x.negativeChannels, rows, cols, kindOf));
  const table = h('div', { className: 'channel-table' });
  parts.push(h('h3', {}, `Every channel (${C}): weight and contribution`,
    h('span', { className: 'thin' }, x.weights ? ' — click a column to sort' : ' — this method has no channel weights (element-wise): contributions only')), table);
  el.replaceChildren(...parts);
  renderChannelTable(table, x, kindOf);
}

function camIdentity(x: MapInspection): HTMLElement {
  const cam = x.camIdentity;
  if (!cam) return h('p', { id: 'inspector-cam', className: 'note' }, 'CAM identity: for Grad-CAM maps only.');
  if (!cam.applies) return h('p', { id: 'inspector-cam', className: 'note' }, `CAM identity does not apply: ${cam.reason}.`);
  return h('div', { id: 'inspector-cam', className: 'cam-identity' },
    h('strong', {}, 'CAM identity holds here. '), `${cam.reason}. `,
    h('br'), `max |α_k − W[c, k]/(h·w)| = ${num(cam.maxAbsDiff)} (weights up to ${num(cam.scale)}); `,
    `max |map − CAM/(h·w)| = ${num(cam.mapMaxAbsDiff)} (terms up to ${num(cam.mapScale)}): float32 rounding.`);
}

/** The layer is a residual Add: its branches are the residual branch and the shortcut (identity), each over all channels. */
function isResidual(x: MapInspection): boolean {
  return !!x.branches?.some((b) => b.kind === 'residual' || b.kind === 'identity');
}

/** A residual block's output: how much of the map comes through the residual branch and how much through the shortcut. */
function residualBranches(x: MapInspection): HTMLElement {
  const total = x.branches!.reduce((a, b) => a + Math.abs(b.contribution), 0) || 1;
  const row = (b: NonNullable<MapInspection['branches']>[number]) => {
    const bar = h('span', { className: `bar ${b.contribution < 0 ? 'neg' : 'pos'}` });
    bar.style.width = `${(100 * Math.abs(b.contribution)) / total}%`;
    return h('tr', { title: b.name }, h('td', {}, b.kind === 'identity' ? 'shortcut (identity)' : 'residual branch'), h('td', {}, num(b.contribution)),
      h('td', {}, num(b.positive)), h('td', {}, num(b.negative)), h('td', { className: 'bar-cell' }, bar));
  };
  return h('div', {},
    h('h3', {}, 'Residual block ', h('span', { className: 'thin' }, '(the map\'s sum split by the Add\'s two inputs: Σ_k w_k Σ R_k and Σ_k w_k Σ I_k where the ReLU passes)')),
    h('table', { id: 'inspector-branches', className: 'data residual' },
      h('thead', {}, h('tr', {}, ...['input', 'contribution', 'positive', 'negative', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, ...x.branches!.map(row))));
}

function branches(x: MapInspection): HTMLElement {
  const total = x.branches!.reduce((a, b) => a + Math.abs(b.contribution), 0) || 1;
  const row = (b: NonNullable<MapInspection['branches']>[number]) => {
    const bar = h('span', { className: `bar ${b.contribution < 0 ? 'neg' : 'pos'}` });
    bar.style.width = `${(100 * Math.abs(b.contribution)) / total}%`;
    return h('tr', { title: b.name }, h('td', {}, b.kind), h('td', {}, `${b.channels[0]}–${b.channels[1] - 1}`), h('td', {}, num(b.contribution)),
      h('td', {}, num(b.positive)), h('td', {}, num(b.negative)), h('td', { className: 'bar-cell' }, bar));
  };
  return h('div', {},
    h('h3', {}, 'Inception branches ', h('span', { className: 'thin' }, '(the concat\'s channels, by the branch that made them)')),
    h('table', { id: 'inspector-branches', className: 'data' },
      h('thead', {}, h('tr', {}, ...['branch', 'channels', 'contribution', 'positive', 'negative', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, ...x.branches!.map(row))));
}

function topChannels(heading: string, list: ChannelDetail[], rows: number, cols: number, kindOf: (k: number) => string | undefined): HTMLElement {
  if (!list.length) return h('div', {}, h('h3', {}, heading), h('p', { className: 'note' }, 'none'));
  const card = (c: ChannelDetail) => {
    const aMax = c.activation.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    const gMax = c.gradient?.reduce((a, v) => Math.max(a, Math.abs(v)), 0) ?? 0;
    return h('figure', { className: 'channel' },
      h('div', { className: 'pair' },
        valueCanvas(c.activation, rows, cols, 'sequential', aMax),
        c.gradient ? valueCanvas(c.gradient, rows, cols, 'diverging', gMax) : h('span', { className: 'note' }, 'no gradient')),
      h('figcaption', {}, `#${c.channel}${kindOf(c.channel) ? ` (${kindOf(c.channel)})` : ''}`, h('br'),
        `c = ${num(c.contribution)}`, c.weight !== undefined ? `, w = ${num(c.weight)}` : '', h('br'),
        h('span', { className: 'thin' }, `A ≤ ${num(aMax)}${c.gradient ? `, |G| ≤ ${num(gMax)}` : ''}`)));
  };
  return h('div', {}, h('h3', {}, heading, h('span', { className: 'thin' }, ' — activation A_k (black → white) and gradient G_k (blue < 0 < red)')),
    h('div', { className: 'channels' }, ...list.map(card)));
}

function renderChannelTable(el: HTMLElement, x: MapInspection, kindOf: (k: number) => string | undefined): void {
  const C = x.contributions.length;
  const value = (k: number, key: SortKey): number | string => key === 'channel' ? k : key === 'branch' ? kindOf(k) ?? '' : key === 'weight' ? x.weights?.[k] ?? 0 : x.contributions[k];
  const order = [...Array(C).keys()].sort((a, b) => {
    const va = value(a, sort.key), vb = value(b, sort.key);
    const d = typeof va === 'string' ? va.localeCompare(vb as string) : va - (vb as number);
    return (sort.descending ? -d : d) || a - b;
  });
  const keys: SortKey[] = x.branches && !isResidual(x) ? ['channel', 'branch', 'weight', 'contribution'] : ['channel', 'weight', 'contribution'];
  const head = keys.map((key) => {
    const arrow = sort.key === key ? (sort.descending ? ' ▼' : ' ▲') : '';
    const th = h('th', { className: 'sortable', title: `sort by ${key}` }, `${key === 'weight' ? 'weight w_k' : key === 'contribution' ? 'contribution c_k' : key}${arrow}`);
    th.dataset.key = key;
    if (sort.key === key) th.setAttribute('aria-sort', sort.descending ? 'descending' : 'ascending');
    th.addEventListener('click', () => {
      sort.descending = sort.key === key ? !sort.descending : key !== 'channel' && key !== 'branch';
      sort.key = key;
      renderChannelTable(el, x, kindOf);
    });
    return th;
  });
  const body = order.map((k) => h('tr', {}, ...keys.map((key) => h('td', {},
    key === 'channel' ? String(k) : key === 'branch' ? kindOf(k) ?? '' : key === 'weight' ? num(x.weights?.[k]) : num(x.contributions[k])))));
  el.replaceChildren(h('table', { id: 'inspector-channels', className: 'data' }, h('thead', {}, h('tr', {}, ...head)), h('tbody', {}, ...body)));
}
