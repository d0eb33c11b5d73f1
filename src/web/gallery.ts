/**
 * The gallery: many pictures (picked or dropped together), each explained with the page's current
 * request (method, layer, class, score), shown as a tile with its overlay, top-1 class and time. A
 * file that cannot be decoded, or whose run fails, is an error tile, and the rest goes on. The whole
 * gallery downloads as a zip (each overlay as PNG, named as the CLI's --out-dir names them, and
 * results.jsonl) or as the JSONL alone: one line per picture, {input, predictions, maps, timings}
 * (the CLI's --jsonl layout, src/gradcam/json.ts) or {input, error}.
 *
 * Runs go through the session's queue in batches (gradCAM(net, images[]), BATCH pictures per queued
 * job), so they never overlap the view's runs; a newer gallery, or a change of the request, supersedes
 * the one in progress between two batches.
 */
import { strToU8, zipSync } from 'fflate';
import { explainLine, overlayFileName, uniqueStems } from '../gradcam/json.ts';
import type { GradcamOptions, GradcamResult } from '../gradcam/types.ts';
import type { RgbaImage } from '../image/image.ts';
import { drawImage } from './draw.ts';
import { decodeImage } from './images.ts';
import type { LabelSet } from './labels.ts';
import type { Session } from './session.ts';
import { smoothingLabel } from './smoothing.ts';
import { h, ms, ui } from './ui.ts';

/** Pictures per queued job: one batch on the GPU, and how often a newer request can take over. */
const BATCH = 4;

export interface GalleryEntry {
  /** The file's name, and the stem its overlay files are named from. */
  name: string;
  stem: string;
  image?: RgbaImage;
  result?: GradcamResult;
  error?: string;
  /** Each map's overlay as PNG bytes (for the zip), once drawn. */
  pngs?: Uint8Array[];
  tile: HTMLElement;
}

export interface GalleryState {
  pictures: number;
  done: number;
  failed: number;
  running: boolean;
}

const message = (e: unknown) => {
  const err = e as { message?: string; hint?: string };
  return [err?.message ?? String(e), err?.hint].filter(Boolean).join(' ');
};

async function pngBytes(canvas: HTMLCanvasElement): Promise<Uint8Array> {
  const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/png'));
  if (!blob) throw new Error('the browser could not encode the overlay as PNG');
  return new Uint8Array(await blob.arrayBuffer());
}

function download(bytes: Uint8Array | string, name: string, type: string): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([bytes as BlobPart], { type }));
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

export class Gallery {
  private entries: GalleryEntry[] = [];
  private token = 0;
  private running = false;

  constructor(
    private session: Session,
    private page: { options(): GradcamOptions; labels(): LabelSet; show(image: RgbaImage, name: string): void; changed(state: GalleryState): void },
  ) {
    ui.galleryZip.addEventListener('click', () => void this.downloadZip());
    ui.galleryJsonl.addEventListener('click', () => download(this.jsonl(), 'results.jsonl', 'application/x-ndjson'));
    ui.galleryClose.addEventListener('click', () => this.close());
  }

  get active(): boolean {
    return !ui.gallerySection.hidden;
  }

  state(): GalleryState {
    return {
      pictures: this.entries.length, done: this.entries.filter((e) => e.result || e.error).length,
      failed: this.entries.filter((e) => e.error).length, running: this.running,
    };
  }

  /** A new gallery of these files (it supersedes the one shown). */
  async open(files: File[]): Promise<void> {
    this.token++; // the gallery running stops at its next batch
    const stems = uniqueStems(files.map((f) => f.name.replace(/\.[^.]*$/, '')));
    const entries: GalleryEntry[] = files.map((f, i) => ({ name: f.name, stem: stems[i], tile: h('figure', { className: 'tile pending' }) }));
    this.entries = entries;
    ui.gallery.replaceChildren(...entries.map((e) => e.tile));
    ui.gallerySection.hidden = false;
    entries.forEach((e) => this.drawTile(e));
    this.update();
    await Promise.all(files.map(async (f, i) => {
      const e = entries[i];
      try {
        e.image = await decodeImage(f);
      } catch (err) {
        e.error = `${f.name}: ${message(err)}`;
      }
    }));
    if (this.entries !== entries) return; // a newer gallery took over
    entries.forEach((e) => this.drawTile(e));
    // A new token: the request may have changed while the files were decoded (run() reads it now).
    await this.run(++this.token);
  }

  /** Explains every picture again with the current request (the method, layer, class or score changed). */
  rerun(): void {
    if (!this.active || this.entries.length === 0) return;
    const token = ++this.token;
    for (const e of this.entries) {
      if (!e.image) continue;
      e.result = undefined;
      e.pngs = undefined;
      e.error = undefined;
      this.drawTile(e);
    }
    void this.run(token);
  }

  close(): void {
    this.token++;
    this.entries = [];
    ui.gallery.replaceChildren();
    ui.gallerySection.hidden = true;
    this.update();
  }

  private async run(token: number): Promise<void> {
    this.running = true;
    this.update();
    try {
      const todo = this.entries.filter((e) => e.image && !e.result && !e.error);
      for (let i = 0; i < todo.length; i += BATCH) {
        if (token !== this.token) return;
        const batch = todo.slice(i, i + BATCH);
        const options = { ...this.page.options(), upsample: false, overlay: true };
        try {
          const results = await this.session.run((net) => net.gradCAM(batch.map((e) => e.image!), options));
          if (token !== this.token) return;
          batch.forEach((e, n) => (e.result = results[n]));
        } catch {
          if (token !== this.token) return;
          // One picture's failure should not take its batch with it: run that batch one by one.
          for (const e of batch) {
            try {
              e.result = await this.session.run((net) => net.gradCAM(e.image!, options));
            } catch (one) {
              e.error = `${e.name}: ${message(one)}`;
            }
            if (token !== this.token) return;
          }
        }
        await Promise.all(batch.map(async (e) => {
          if (e.result) e.pngs = await Promise.all(e.result.maps.map((m) => pngBytes(this.canvasOf(m.overlay!))));
          this.drawTile(e);
        }));
        this.update();
      }
    } finally {
      if (token === this.token) {
        this.running = false;
        this.update();
      }
    }
  }

  private canvasOf(img: RgbaImage): HTMLCanvasElement {
    const c = document.createElement('canvas');
    drawImage(c, img);
    return c;
  }

  private drawTile(e: GalleryEntry): void {
    const labels = this.page.labels();
    e.tile.className = `tile${e.error ? ' error' : e.result ? '' : ' pending'}`;
    e.tile.dataset.name = e.name;
    if (e.error) {
      e.tile.replaceChildren(h('div', { className: 'tile-error' }, '⚠'), h('figcaption', {}, h('strong', {}, e.name), h('br'), e.error));
      return;
    }
    if (!e.result) {
      e.tile.replaceChildren(h('div', { className: 'tile-pending' }, e.image ? 'waiting…' : 'decoding…'), h('figcaption', {}, h('strong', {}, e.name)));
      return;
    }
    const r = e.result;
    const top = r.predictions[0];
    const map = r.maps[0];
    const canvas = this.canvasOf(map.overlay!);
    const button = h('button', { type: 'button', className: 'tile-view', title: `open ${e.name} in the view` }, canvas);
    button.addEventListener('click', () => this.page.show(e.image!, e.name));
    const batch = r.batch && r.batch.images > 1 ? ` (a batch of ${r.batch.images}, together)` : '';
    e.tile.replaceChildren(button, h('figcaption', {}, h('strong', {}, e.name), h('br'),
      h('span', { className: 'top1' }, `${labels.of(top.class)} ${(100 * top.probability).toFixed(1)} %`), h('br'),
      h('span', { className: 'time' }, `${ms(r.timings.totalMs)}${batch}`), h('br'),
      h('span', { className: 'thin' }, `${map.method}${map.smoothing ? ` (${smoothingLabel(map.smoothing)})` : ''} at ${map.layer.replace(/\/output(_\d+)?$/, '')}`)));
  }

  private update(): void {
    const s = this.state();
    ui.galleryNote.textContent = s.pictures ? `${s.done} of ${s.pictures} pictures${s.failed ? `, ${s.failed} failed` : ''}${s.running ? ' — running…' : ''}` : '';
    const ready = !s.running && s.pictures > 0 && s.done === s.pictures;
    ui.galleryZip.disabled = !ready;
    ui.galleryJsonl.disabled = !ready;
    this.page.changed(s);
  }

  /** One line per picture, in order: {input, predictions, maps, timings} or {input, error}. */
  jsonl(): string {
    return this.entries.map((e) => {
      const files = e.result?.maps.map((m) => overlayFileName(e.stem, m));
      return JSON.stringify(e.result ? { input: e.name, ...explainLine(e.result, files) } : { input: e.name, error: e.error ?? 'not run' });
    }).join('\n') + '\n';
  }

  /** The overlays as PNG (the CLI's --out-dir names) and results.jsonl, in one zip. */
  zip(): Uint8Array {
    const files: Record<string, Uint8Array> = { 'results.jsonl': strToU8(this.jsonl()) };
    for (const e of this.entries) {
      e.result?.maps.forEach((m, i) => {
        if (e.pngs?.[i]) files[overlayFileName(e.stem, m)] = e.pngs[i];
      });
    }
    // PNGs are compressed already: stored, not deflated again.
    return zipSync(files, { level: 0 });
  }

  private async downloadZip(): Promise<void> {
    download(this.zip(), 'gradcam-gallery.zip', 'application/zip');
  }
}
