/**
 * The page: a picture (file, drop, webcam or the sample photo), a model (manifest entry or local
 * file), and the Grad-CAM of the chosen class at the chosen layer drawn over the picture.
 *
 * Every change of input or option asks for a render; renders run one at a time and a burst of
 * requests collapses into one (the webcam asks for the next frame as soon as one is drawn). All GPU
 * work goes through the session's queue.
 *
 * One render is one gradCAM call: the chosen method at the chosen layer, plus, when shown, every
 * method at that layer (the grid), every inception block (the layer strip), and the inspector's
 * report (`inspect: true`). Picking a tile of the grid or the strip only redraws: its map is
 * already in the result.
 *
 * Query parameters (for sharing links and for the end-to-end tests):
 *   ?model=NAME      start with this manifest entry (`none`: no model until one is picked or opened)
 *   ?manifest=URL    read the model manifest from URL instead of the bundled one
 *   ?image=URL       start with this picture instead of the sample photo
 */
import sampleUrl from '../../weights/samples/chelsea.png';
import { allLayers } from '../gradcam/layers.ts';
import { METHODS, METHOD_SPECS, isMethod, isMultiPass, methodSpec, type Method } from '../gradcam/methods.ts';
import { AbortError } from '../errors.ts';
import { chwOf } from '../image/recipes.ts';
import { type GradcamMap, type GradcamOptions, type GradcamResult, isReduction, type Reduction } from '../gradcam/types.ts';
import type { RgbaImage } from '../image/image.ts';
import { clear, composite, drawImage } from './draw.ts';
import { decodeImage, imageFromUrl } from './images.ts';
import { labelSet, type LabelSet } from './labels.ts';
import { checkLabelCount, parseLabels } from '../gradcam/labels.ts';
import { modelFacts, renderModelCard, settingsFromForm } from './model-card.ts';
import { loadManifest, type Manifest, modelGroup } from './manifest.ts';
import { modelFitsDevice } from '../gradcam/limits.ts';
import { defaultModel, obtainModel, REAL_MODEL, type LoadedModel, type ModelChoice, type ModelSettings, withSettings } from './models.ts';
import { DeviceLost, NoWebGpu, Session } from './session.ts';
import { isCached, isOnServer } from './download.ts';
import { DEMO_MODEL } from '../../weights/manifest.ts';
import { hook, publishResult } from './hook.ts';
import { renderInspector } from './inspector.ts';
import { renderKernelSource } from './kernel-source.ts';
import { Gallery } from './gallery.ts';
import {
  busy, h, layerTitle, makeGalleryItem, ms, notice, parseClassSearch, passProgress, progress, renderClassPicker, renderClassSearch,
  renderLayerPicker, renderMethodPicker, renderPredictions, renderProfile, renderTimings, ui,
} from './ui.ts';
import { tuneProgressText, tuningNote } from './tuning.ts';
import { mergeResults, type Smoothing, smoothingCalls, smoothingFor, smoothingLabel, smoothingRefusal, unsmoothedMark } from './smoothing.ts';
import { FpsMeter, Webcam } from './webcam.ts';

const params = new URLSearchParams(location.search);
const message = (e: unknown) => {
  const err = e as { message?: string; hint?: string };
  return [err?.message ?? String(e), err?.hint].filter(Boolean).join(' ');
};

class App {
  private image?: RgbaImage;
  private imageName = '';
  private classChoice: 'top' | number = 'top';
  private layer = 'auto';
  private reduction: Reduction = 'logit';
  private method: Method = 'gradcam';
  private counterfactual = false;
  private labels: LabelSet = labelSet(undefined, undefined, 0);
  private result?: GradcamResult;
  /** The picture the result belongs to (a webcam frame, or the still picture). */
  private shown?: RgbaImage;
  /** The options the result was made with, and its picture: a tile picked from it needs no new run. */
  private resultKey = '';
  /** The smoothing checkboxes as they were for the result (the grid marks the maps they did not apply to). */
  private resultSmoothing: Smoothing = { eigen: false, aug: false };
  private modelValue = '';
  private modelToken = 0;
  /** Programs already compiled (the first run of a new layer/class/reduction shape compiles kernels). */
  private compiled = new Set<string>();
  private dirty = false;
  private pumping = false;
  /** The slow methods' run in progress (the Stop button aborts it). */
  private slowRun?: AbortController;
  private readonly webcam = new Webcam();
  private readonly fps = new FpsMeter();
  private readonly gallery: Gallery;

  constructor(private session: Session, private manifest: Manifest) {
    this.gallery = new Gallery(session, {
      options: () => this.galleryOptions(),
      labels: () => this.labels,
      show: (image, name) => {
        if (this.webcam.active) this.stopWebcam();
        this.setImage(image, name);
        ui.view.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
      },
      changed: (state) => (hook.gallery = state),
    });
    // The API itself on the picture in view, past the page's request-making (what the page shows is checked against it).
    hook.gradCAM = async (options) => {
      const picture = this.shown ?? this.image;
      if (!picture) throw new Error('no picture in view');
      const r = await this.session.run((net) => net.gradCAM(picture, { upsample: false, ...options }));
      return r.maps.map((m) => ({ layer: m.layer, method: m.method, class: m.class, ...(m.smoothing ? { smoothing: m.smoothing } : {}), raw: [...m.raw] }));
    };
  }

  async start(): Promise<void> {
    ui.app.hidden = false;
    ui.adapter.textContent = this.session.adapter;
    ui.profile.disabled = !this.session.hasTimestamps;
    if (!this.session.hasTimestamps) ui.profile.title = 'This adapter has no timestamp queries (feature timestamp-query)';
    this.fillMethodPicker();
    this.bindEvents();
    await this.fillModelPicker();
    const imageUrl = params.get('image') ?? sampleUrl;
    const picture = imageFromUrl(imageUrl).then((img) => this.setImage(img, imageUrl === sampleUrl ? 'Chelsea the cat' : imageUrl));
    const entry = await defaultModel(this.manifest, params.get('model'));
    // A start model that cannot be had (a download the browser may not make) leaves its message
    // on the status line, and the page goes on with the demonstration model.
    const demo = this.manifest.models.find((m) => m.name === DEMO_MODEL);
    const model = entry
      ? this.switchModel({ kind: 'manifest', entry }).then((ok) => (ok || !demo || entry === demo ? ok : this.switchModel({ kind: 'manifest', entry: demo })))
      : Promise.resolve(void (ui.modelNote.textContent = 'No model loaded yet: pick one above, or open your own .onnx file (with its labels .txt).'));
    await Promise.all([picture.catch((e) => notice(`picture: ${message(e)}`, 'error')), model]);
  }

  // ── inputs ────────────────────────────────────────────────────────────────────────────────────

  private setImage(img: RgbaImage, name: string): void {
    this.image = img;
    this.imageName = name;
    if (!this.webcam.active) {
      drawImage(ui.picture, img);
      clear(ui.heat);
      ui.view.dataset.empty = 'false';
    }
    this.requestRender();
  }

  /**
   * Files picked or dropped: one picture goes to the view, several make a gallery; an .onnx file is
   * the model, and a .txt beside it its class names (one per line).
   */
  private async openFiles(files: File[]): Promise<void> {
    const model = files.find((f) => /\.onnx$/i.test(f.name));
    const labels = model ? files.find((f) => /\.txt$/i.test(f.name)) : undefined;
    if (model) await this.switchModel({ kind: 'file', file: model, labelsFile: labels });
    const pictures = files.filter((f) => f !== model && f !== labels);
    if (pictures.length === 1) await this.openFile(pictures[0]);
    else if (pictures.length > 1) await this.gallery.open(pictures);
  }

  private async openFile(file: File): Promise<void> {
    if (/\.onnx$/i.test(file.name)) return void (await this.switchModel({ kind: 'file', file }));
    try {
      if (this.webcam.active) this.stopWebcam();
      this.setImage(await decodeImage(file), file.name);
    } catch (e) {
      notice(`${file.name}: ${message(e)}`, 'error');
    }
  }

  private async toggleWebcam(): Promise<void> {
    if (this.webcam.active) return this.stopWebcam();
    try {
      await this.webcam.start();
    } catch (e) {
      notice(`webcam: ${message(e)}`, 'error');
      return;
    }
    ui.webcam.textContent = 'Stop webcam';
    ui.webcam.setAttribute('aria-pressed', 'true');
    this.fps.reset();
    this.requestRender();
  }

  /** Stops the camera; its last frame stays as the picture, to explore further. */
  private stopWebcam(): void {
    this.webcam.stop();
    ui.webcam.textContent = 'Start webcam';
    ui.webcam.removeAttribute('aria-pressed');
    ui.fps.textContent = '';
    if (this.shown) {
      this.image = this.shown;
      this.imageName = 'webcam frame';
    }
  }

  // ── the model ─────────────────────────────────────────────────────────────────────────────────

  /**
   * The model picker: the generated models, then the zoo's by family, each with its size and where
   * it would come from: '✓ cached' (this browser's Cache Storage, src/web/download.ts), 'on this
   * server' (the page's models/ folder: the CLI's cache under `npm start`), else a download; and
   * 'too big for this GPU' when its largest weight exceeds what the device binds (checked before
   * any download, src/gradcam/limits.ts).
   */
  private async fillModelPicker(): Promise<void> {
    const options = await Promise.all(this.manifest.models.map(async (m) => {
      const cached = m.kind === 'onnx-zoo' && (await isCached(m).catch(() => false));
      const served = m.kind === 'onnx-zoo' && !cached && (await isOnServer(m));
      const tooBig = m.kind === 'onnx-zoo' ? modelFitsDevice(m, this.session.limits) : undefined;
      const size = m.bytes ? `${(m.bytes / 1e6).toFixed(m.bytes < 1e7 ? 1 : 0)} MB` : '';
      const how = m.kind === 'generated' ? 'built here' : cached ? `✓ cached, ${size}` : served ? `on this server, ${size}` : `${size} download`;
      const o = new Option(`${m.name} (${how}${tooBig ? '; too big for this GPU' : ''})`, m.name);
      o.title = tooBig ?? m.description;
      o.dataset.where = m.kind === 'generated' ? 'generated' : cached ? 'cached' : served ? 'server' : 'download';
      if (tooBig) o.dataset.tooBig = 'true';
      return { group: modelGroup(m), option: o };
    }));
    // The generated models first (the demonstration model among them), then the zoo's families in the manifest's order.
    const groups = new Map<string, HTMLOptionElement[]>([[modelGroup({ kind: 'generated' }), []]]);
    for (const { group, option } of options) groups.set(group, [...(groups.get(group) ?? []), option]);
    const local = [...ui.model.querySelectorAll<HTMLOptionElement>('option[value^="file:"]')];
    ui.model.replaceChildren(
      ...[...groups].filter(([, list]) => list.length).map(([label, list]) => h('optgroup', { label }, ...list)),
      ...(local.length ? [h('optgroup', { label: 'local files' }, ...local)] : []),
    );
    ui.model.value = this.modelValue;
  }

  /**
   * Loads a model. False when it could not be had (the reason is on the status line) and no other
   * model was asked for since; true when it was loaded, or when another request took over.
   */
  private async switchModel(choice: ModelChoice): Promise<boolean> {
    const token = ++this.modelToken;
    const value = choice.kind === 'file' ? `file:${choice.file.name}` : choice.entry.name;
    const name = choice.kind === 'file' ? choice.file.name : choice.entry.name;
    try {
      const show = (text: string, fraction?: number) => {
        if (token !== this.modelToken) return;
        progress(text, fraction);
        busy(text);
      };
      // A model whose weights this device cannot bind says so before anything is downloaded.
      const unfit = choice.kind === 'manifest' && choice.entry.kind === 'onnx-zoo' ? modelFitsDevice(choice.entry, this.session.limits) : undefined;
      if (unfit) throw new Error(unfit);
      const loaded = await obtainModel(choice, (p) => show(p.text, p.fraction));
      if (token !== this.modelToken) return true;
      show('compiling kernels…');
      await this.session.load(loaded);
      this.modelLoaded(loaded, value);
      return true;
    } catch (e) {
      if (token !== this.modelToken) return true;
      busy(null);
      notice(`${name}: ${message(e)}`, 'error');
      ui.model.value = this.modelValue;
      return false;
    } finally {
      // (The veil stays: the render that modelLoaded asked for takes it over, and clears it.)
      if (token === this.modelToken) progress(null);
    }
  }

  private modelLoaded(loaded: LoadedModel, value: string): void {
    if (value.startsWith('file:') && ![...ui.model.options].some((o) => o.value === value)) {
      const group = ui.model.querySelector<HTMLOptGroupElement>('optgroup[label="local files"]') ?? ui.model.appendChild(h('optgroup', { label: 'local files' }));
      group.append(new Option(`${loaded.name} (local file)`, value));
    }
    if (loaded.source === 'download' || loaded.source === 'server') void this.fillModelPicker().then(() => (ui.model.value = value));
    ui.model.value = value;
    this.modelValue = value;
    this.settled(loaded);
    this.showTuning();
    renderLayerPicker(this.session.layers, this.layer);
    this.layer = ui.layer.value;
    this.fillMethodPicker();
    const blocks = allLayers(this.session.layers)[0]?.block;
    ui.showStripWhat.textContent = blocks ? 'every inception block' : 'every stage output';
    ui.modelNote.textContent = loaded.demo
      ? `A demonstration model: GoogLeNet's layers with weights set by hand, so that class 0 = red, 1 = green, 2 = blue. ` +
        `For real ImageNet predictions pick ${REAL_MODEL} above (28 MB, downloaded once and kept in this browser).`
      : loaded.source === 'generated' ? 'A test model with random weights: its predictions mean nothing.'
      : loaded.source === 'server' ? `Read from this server's models/ folder, checked against the manifest's SHA-256.`
      : loaded.source === 'download' ? `Downloaded from ${new URL(loaded.url!).host}, checked against the manifest's SHA-256 and kept in this browser.`
      : '';
    hook.model = { name: loaded.name, source: loaded.source, demo: loaded.demo, url: loaded.url };
    this.requestRender();
  }

  /** The class names and the model card for the model as loaded (after a load, or a change made in the card). */
  private settled(loaded: LoadedModel): void {
    const list = loaded.labels.labels;
    if (list !== this.labels.list || this.session.classCount !== this.labels.count) {
      this.labels = labelSet(list, loaded.labels.from, this.session.classCount);
      this.classChoice = 'top';
      renderClassSearch(this.labels);
    }
    const facts = modelFacts(loaded, this.session.inputFacts);
    renderModelCard(loaded, facts);
    hook.modelCard = facts;
  }

  /**
   * A change made in the model card (recipe fields, a labels file): the same model with these
   * settings, swapped in place when only the values change, compiled again when the size, layout
   * or labels do; then the view runs again. A bad field or a labels file of the wrong length is
   * refused on the status line, and the model stays as it was.
   */
  private async changeSettings(make: (current: ModelSettings) => ModelSettings): Promise<void> {
    const current = this.session.model;
    if (!current) return;
    try {
      const settings = make(current.settings);
      if (settings.labels) checkLabelCount(settings.labels.names, this.session.classCount, settings.labels.file);
      const next = withSettings(current, settings);
      busy('applying the change…');
      const how = await this.session.reconfigure(next);
      if (how === 'recompiled') {
        this.showTuning();
        renderLayerPicker(this.session.layers, this.layer);
        this.layer = ui.layer.value;
        this.fillMethodPicker(); // (an input of another size: the input attributions' pass counts change)
      }
      this.settled(next);
      notice(`${next.name}: ${how === 'in place' ? 'the new recipe is used from this run on' : 'compiled again with the change'}; running again.`);
      this.requestChange();
    } catch (e) {
      busy(null);
      notice(message(e), 'error');
      hook.errors.push(message(e));
    }
  }

  // ── rendering ─────────────────────────────────────────────────────────────────────────────────

  /**
   * The passes a method needs for one image and class at the chosen layer, on the model loaded
   * (METHOD_SPECS' `passes`: 1 + channels for scorecam and ablationcam, six times that under
   * aug-smooth, …); undefined before a model is.
   */
  private passesOf(m: Method): number | undefined {
    const layer = this.session.layers.find((l) => l.name === this.layerName());
    const { shape, layout } = this.session.inputFacts;
    if (!layer || shape.length !== 4) return undefined;
    return methodSpec(m).passes({ channels: layer.shape[1], input: chwOf(shape, layout), augSmooth: smoothingFor(m, this.smoothing()).aug });
  }

  /** The smoothing checkboxes (applied per method: src/web/smoothing.ts). */
  private smoothing(): Smoothing {
    return { eigen: ui.eigenSmooth.checked, aug: ui.augSmooth.checked };
  }

  /** The note beside the method picker: why a smoothing that is on does not apply to the chosen method (it runs without it). */
  private showSmoothingNote(): void {
    const why = smoothingRefusal(this.method, this.smoothing());
    ui.smoothNote.textContent = why;
    ui.smoothNote.hidden = !why;
  }

  /** The method picker for the model and layer in view (the slow methods' pass counts change with them), and the grid's opt-in. */
  private fillMethodPicker(): void {
    const methods = METHODS.map((name) => ({ name, ...METHOD_SPECS[name], slow: isMultiPass(name), passes: isMultiPass(name) ? this.passesOf(name) : undefined }));
    renderMethodPicker(methods, this.method);
    const slow = methods.filter((m) => m.slow);
    const total = slow.reduce((a, m) => a + (m.passes ?? NaN), 0);
    ui.gridSlowPasses.textContent = Number.isFinite(total) ? `${slow.length} methods, ${total.toLocaleString('en')} passes` : 'many passes';
    ui.gridSlow.parentElement!.hidden = slow.length === 0;
    this.showSmoothingNote();
  }

  /** The tensor name of the chosen layer ('auto' resolved as the API resolves it: the last candidate). */
  private layerName(): string {
    return this.layer === 'auto' ? this.session.layers.at(-1)?.name ?? 'auto' : this.layer;
  }

  private options(): GradcamOptions {
    const layer = this.layerName();
    const isBlock = allLayers(this.session.layers).some((l) => l.name === layer);
    return {
      classes: this.classChoice === 'top' ? 'top' : [this.classChoice],
      // The strip: every block (or stage) output ('all'), with the chosen layer when it is not one of them.
      featureLayers: ui.showStrip.checked ? (isBlock ? 'all' : ['all', layer]) : layer,
      reduction: this.reduction,
      // The grid: every method of one pass; the slow (multi-pass) ones only when asked for.
      methods: ui.showGrid.checked ? METHODS.filter((m) => ui.gridSlow.checked || !isMultiPass(m)) : [this.method],
      counterfactual: this.counterfactual,
      // The checkboxes as they stand: renderOnce runs each method with those that apply to it (smoothingCalls).
      eigenSmooth: ui.eigenSmooth.checked,
      augSmooth: ui.augSmooth.checked,
      inspect: ui.showInspector.checked,
      upsample: false,
      overlay: { alpha: 1 }, // the pure colour map; the slider blends it (CSS opacity)
    };
  }

  requestRender(): void {
    // A newer request supersedes slow passes in progress (they stop at their next batch).
    this.slowRun?.abort(new Error('superseded by a newer request'));
    this.dirty = true;
    if (!this.pumping) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    while (this.dirty) {
      this.dirty = false;
      let drawn = false;
      try {
        drawn = await this.renderOnce();
      } catch (e) {
        // A lost device is reported by onLost, and the render is asked for again once it is back.
        if (e instanceof AbortError) {
          // Stopped (the Stop button, or a newer request): the last finished result stays in view.
          if (!this.dirty) notice('Stopped: the slow method\'s passes were cancelled; the view shows the last finished result.');
          hook.stopped++;
        } else if (!(e instanceof DeviceLost)) {
          notice(message(e), 'error');
          hook.errors.push(message(e));
        }
      }
      // The webcam asks for the next frame once this one is drawn (not while no model is ready, nor after an error).
      if (this.webcam.active && drawn) {
        this.fps.tick();
        ui.fps.textContent = this.fps.fps ? `${this.fps.fps.toFixed(1)} frames/s` : '';
        this.dirty = true;
        await new Promise((r) => setTimeout(r, 0)); // let the page breathe between frames
      }
    }
    busy(null);
    this.pumping = false;
  }

  /** One Grad-CAM of the current picture (or webcam frame) with the current options; false if there was nothing to do. */
  private async renderOnce(): Promise<boolean> {
    if (!this.session.ready) return false;
    const live = this.webcam.active;
    const picture = live ? this.webcam.frame() : this.image;
    if (!picture) return false;
    const options = this.options();
    const resultKey = JSON.stringify([this.session.generation, options]);
    if (!live && picture === this.shown && resultKey === this.resultKey) {
      this.draw(); // a tile of the grid or the strip was picked: its map is in the result
      return false;
    }
    const key = JSON.stringify([this.session.generation, options.featureLayers, options.classes === 'top', options.reduction, options.methods, options.counterfactual, options.eigenSmooth, options.augSmooth]);
    const slow = options.methods!.filter(isMultiPass);
    const before = slow.length ? `${slow.map((m) => `${m} (${this.passesOf(m)?.toLocaleString('en') ?? 'many'} passes)`).join(', ')}: ` : '';
    if (!live) busy(`${before}${this.compiled.has(key) ? 'running…' : 'compiling Grad-CAM kernels, then running…'}`);
    // Each method with the smoothings that apply to it: one call, or (the grid with smoothing on) one per set of them.
    const calls = smoothingCalls(options.methods!, this.smoothing());
    // The slow methods run in batches of passes: a progress line, and a Stop button that aborts between batches.
    let abort: AbortController | undefined;
    let part = '';
    let t0 = performance.now();
    if (slow.length) {
      abort = this.slowRun = new AbortController();
      options.signal = abort.signal;
      options.onProgress = (p) => {
        const text = part + passProgress(p.method, p.done, p.total, t0);
        hook.passes = { ...p };
        if (!live) busy(text);
        progress(text, p.total ? p.done / p.total : undefined);
      };
      ui.stop.hidden = false;
    }
    let result: GradcamResult;
    try {
      const results: GradcamResult[] = [];
      for (const [i, call] of calls.entries()) {
        // The inspector takes apart a sum over channels of one pass: not a smoothed map (checkSmoothing refuses it).
        const o: GradcamOptions = { ...options, ...call, inspect: options.inspect && !call.eigenSmooth && !call.augSmooth };
        part = calls.length > 1 ? `call ${i + 1} of ${calls.length} (${smoothingLabel({ eigen: call.eigenSmooth, aug: call.augSmooth }) || 'unsmoothed'}): ` : '';
        t0 = performance.now();
        // The grid asks for each method's own time: its kernels replayed alone after the run (profileMethods);
        // with the slow methods in it, a plain run (their time is the passes' time, timings.passesMs).
        results.push(await this.session.run((net) => (ui.showGrid.checked && !slow.length ? net.profileMethods(picture, o, 3) : net.gradCAM(picture, o))));
      }
      result = mergeResults(results, options.methods!);
    } finally {
      if (abort) {
        ui.stop.hidden = true;
        progress(null);
        if (this.slowRun === abort) this.slowRun = undefined;
      }
    }
    this.compiled.add(key);
    busy(null);
    this.result = result;
    this.resultKey = resultKey;
    this.resultSmoothing = { eigen: !!options.eigenSmooth, aug: !!options.augSmooth };
    this.shown = picture;
    this.draw();
    hook.runs++;
    hook.firstMapMs ??= performance.now();
    return true;
  }

  /** The map of the chosen layer and method (the big view, the inspector). */
  private mainMap(r: GradcamResult): GradcamMap {
    const layer = this.layerName();
    return r.maps.find((m) => m.layer === layer && m.method === this.method) ?? r.maps.find((m) => m.method === this.method) ?? r.maps[r.maps.length - 1];
  }

  /** Draws the last result: picture, heat map, gallery, predictions, pickers, timings, caption. */
  private draw(): void {
    const r = this.result;
    const picture = this.shown;
    if (!r || !picture) return;
    const map = this.mainMap(r);
    drawImage(ui.picture, picture);
    drawImage(ui.heat, map.overlay!);
    ui.view.dataset.empty = 'false';
    this.drawStrip(r, map);
    this.drawGrid(r, map);
    ui.inspector.hidden = !ui.showInspector.checked;
    if (!ui.inspector.hidden) renderInspector(ui.inspector, map, this.labels.of(map.class));
    const selected = this.classChoice === 'top' ? r.predictions[0]?.class ?? null : this.classChoice;
    // The demonstration model's unused classes (logit −10) are not worth a line.
    const predictions = r.predictions.filter((p) => p.class < this.labels.meaningful);
    renderPredictions(predictions, this.labels, selected, (c) => this.pickClass(c));
    renderClassPicker(predictions, this.labels, this.classChoice);
    renderTimings(r.timings, this.session.compileMs, this.session.adapter);
    const [h, w] = map.shape;
    const cold = map.max <= 0 ? ` The map is zero everywhere: nothing at this layer raises this score${ui.showInspector.checked ? ' (the inspector below says why)' : ' (the inspector says why)'}.` : '';
    const smoothed = smoothingLabel(map.smoothing);
    const by = `${map.method}${smoothed ? `, ${smoothed}` : ''}${map.counterfactual ? ', counterfactual: what speaks against it' : ''}`;
    ui.caption.textContent = `Where “${this.labels.of(map.class)}” comes from (${by}), at ${layerTitle(map.layer)} (${h}×${w}), ` +
      `by the ${map.reduction === 'logit' ? 'class score (logit)' : 'probability (softmax)'}. ` +
      `${this.webcam.active ? 'Webcam' : this.imageName}.${cold}`;
    publishResult(r, map, this.labels, this.session.model?.name ?? '');
  }

  /** The picture with a map's overlay blended at the slider's opacity, as a thumbnail canvas. */
  private thumbnail(m: GradcamMap): HTMLCanvasElement {
    const pic = document.createElement('canvas');
    const heat = document.createElement('canvas');
    drawImage(pic, this.shown!);
    drawImage(heat, m.overlay!);
    return composite(pic, heat, Number(ui.opacity.value));
  }

  /** The layer strip: the chosen method at every inception block, or stage output without blocks (featureLayers 'all', one backward pass). */
  private drawStrip(r: GradcamResult, main: GradcamMap): void {
    const all = allLayers(this.session.layers);
    const maps = r.maps.filter((m) => m.method === main.method && all.some((l) => l.name === m.layer));
    ui.stripSection.hidden = !ui.showStrip.checked || maps.length === 0;
    if (ui.stripSection.hidden) return;
    const smoothed = smoothingLabel(main.smoothing);
    ui.stripNote.textContent = `${main.method}${smoothed ? ` (${smoothed})` : ''} at ${maps.length} ${all[0]?.block ? 'blocks' : 'stages'}, ` +
      `from one forward and one backward pass${main.smoothing?.aug ? ' of the six augmented copies' : ''}; pick one to view it`;
    ui.strip.replaceChildren(...maps.map((m) => {
      const [h, w] = m.shape;
      const item = makeGalleryItem(layerTitle(m.layer), this.thumbnail(m), m === main, () => this.pick({ layer: m.layer }), `${h}×${w}`);
      item.dataset.layer = m.layer;
      return item;
    }));
  }

  /**
   * The grid: every method at the chosen layer, side by side, each with its own time (profileMethods:
   * its kernels at every layer of the request replayed alone, median of 3) when the result has them.
   */
  private drawGrid(r: GradcamResult, main: GradcamMap): void {
    // The maps at the chosen layer, and those of no feature layer (guided backprop's is the input).
    const candidates = new Set(this.session.layers.map((l) => l.name));
    const atLayer = this.layerName();
    const maps = r.maps.filter((m) => m.layer === atLayer || !candidates.has(m.layer));
    ui.gridSection.hidden = !ui.showGrid.checked || maps.length < 2;
    if (ui.gridSection.hidden) return;
    const t = r.timings;
    const clock = t.source === 'gpu' ? 'GPU timestamps' : 'the CPU clock';
    // With smoothing on, the methods it does not apply to ran in calls of their own (src/web/smoothing.ts).
    const calls = smoothingCalls(maps.map((m) => m.method), this.resultSmoothing).length;
    const passes = calls > 1 ? `${calls} calls, one per smoothing that applies, each one forward and one backward pass (the first: ${ms(t.forwardMs)} + ${ms(t.backwardMs)})`
      : `one forward and one backward pass (${ms(t.forwardMs)} + ${ms(t.backwardMs)})`;
    ui.gridNote.textContent = t.methodMs
      ? `${passes}; under each map its method's own kernels (for the guided methods, with their guided backward pass to the input), replayed alone (median of 3, ${clock}), at every layer of this request`
      : `${passes}; the maps of all ${maps.length} methods together took ${ms(t.camMs)} (${clock}): no per-method times in this result`;
    ui.grid.replaceChildren(...maps.map((m) => {
      const own = t.methodMs?.[m.method];
      const time = own !== undefined ? ms(own) : `(all: ${ms(t.camMs)})`;
      const note = [m.method === 'eigencam' ? 'no gradient' : m.counterfactual ? 'counterfactual' : '', candidates.has(m.layer) ? '' : `at the input (${m.shape[0]}×${m.shape[1]})`,
        unsmoothedMark(m, this.resultSmoothing)].filter(Boolean).join(', ');
      const item = makeGalleryItem(m.method, this.thumbnail(m), m === main, () => this.pick({ method: m.method }), time, ...(note ? [note] : []));
      item.dataset.method = m.method;
      item.title = [`${METHOD_SPECS[m.method].formula} (${METHOD_SPECS[m.method].reference})`, smoothingRefusal(m.method, this.resultSmoothing)].filter(Boolean).join('. ');
      return item;
    }));
  }

  /** A tile of the strip or the grid: that layer or method becomes the chosen one. */
  private pick(choice: { layer?: string; method?: Method }): void {
    if (choice.layer) {
      this.layer = choice.layer;
      ui.layer.value = choice.layer;
      this.fillMethodPicker();
    }
    if (choice.method) {
      this.method = choice.method;
      ui.method.value = choice.method;
      this.showSmoothingNote();
    }
    this.requestChange();
  }

  private pickClass(c: number | 'top'): void {
    this.classChoice = c;
    this.requestChange();
  }

  /** The request changed (class, layer, method, counterfactual, score): the view and the gallery run again. */
  private requestChange(): void {
    this.requestRender();
    this.gallery.rerun();
  }

  /** The gallery's request: the chosen method at the chosen layer, for the chosen class and score. */
  private galleryOptions(): GradcamOptions {
    const smooth = smoothingFor(this.method, this.smoothing());
    return {
      classes: this.classChoice === 'top' ? 'top' : [this.classChoice], featureLayers: this.layerName(), reduction: this.reduction,
      methods: [this.method], counterfactual: this.counterfactual, eigenSmooth: smooth.eigen, augSmooth: smooth.aug,
    };
  }

  private async profile(): Promise<void> {
    ui.profile.disabled = true;
    busy('profiling kernels…');
    try {
      const timings = await this.session.run((net) => net.profileForward());
      renderProfile(timings, (kernel, part) => renderKernelSource(ui.kernelView, kernel, part));
    } catch (e) {
      notice(`profile: ${message(e)}`, 'error');
    } finally {
      busy(null);
      ui.profile.disabled = false;
    }
  }

  /** The Timings card's line on the conv variants (tuned plan or fixed rules), and window.gradcam.tuning. */
  private showTuning(): void {
    const facts = this.session.tuning;
    ui.tuneNote.textContent = facts ? tuningNote(facts) : '';
    hook.tuning = facts;
    ui.tune.disabled = !facts;
  }

  /**
   * The Tune button: every conv variant timed on every layer shape of the model in view (a progress
   * line, as it takes a while on a slow GPU), the fastest kept in IndexedDB and compiled in; then the
   * view runs again on the tuned kernels.
   */
  private async tune(): Promise<void> {
    ui.tune.disabled = true;
    const t0 = performance.now();
    busy('tuning: timing every conv variant on every layer shape…');
    let done = false;
    try {
      await this.session.tune((p) => {
        const text = tuneProgressText(p, t0);
        hook.tuneProgress = { done: p.done, total: p.total };
        busy(text);
        progress(text, p.done / p.total);
      });
      done = true;
    } catch (e) {
      notice(`tune: ${message(e)}`, 'error');
      hook.errors.push(`tune: ${message(e)}`);
    } finally {
      busy(null);
      progress(null);
      this.compiled.clear();
      this.showTuning();
    }
    if (done) notice(`Tuned in ${((performance.now() - t0) / 1000).toFixed(1)} s. ${tuningNote(hook.tuning!)}`);
    this.requestRender();
  }

  private save(): void {
    const out = composite(ui.picture, ui.heat, Number(ui.opacity.value));
    const map = this.result ? this.mainMap(this.result) : undefined;
    const name = map ? `gradcam-${this.labels.of(map.class)}-${layerTitle(map.layer)}`.replace(/[^\w.-]+/g, '_') : 'gradcam';
    out.toBlob((blob) => {
      if (!blob) return;
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = `${name}.png`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    }, 'image/png');
  }

  // ── events ────────────────────────────────────────────────────────────────────────────────────

  private bindEvents(): void {
    ui.imageFile.addEventListener('change', () => {
      const files = [...(ui.imageFile.files ?? [])];
      ui.imageFile.value = '';
      void this.openFiles(files);
    });
    ui.modelFile.addEventListener('change', () => {
      const files = [...(ui.modelFile.files ?? [])];
      const f = files.find((x) => /\.onnx$/i.test(x.name)) ?? files[0];
      if (f) void this.switchModel({ kind: 'file', file: f, labelsFile: files.find((x) => /\.txt$/i.test(x.name)) });
      ui.modelFile.value = '';
    });
    ui.modelForm.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.changeSettings((current) => settingsFromForm(current));
    });
    ui.modelReset.addEventListener('click', () => void this.changeSettings((current) => ({ ...current, recipe: undefined })));
    ui.labelsFile.addEventListener('change', () => {
      const file = ui.labelsFile.files?.[0];
      ui.labelsFile.value = '';
      if (file) void file.text().then((text) => this.changeSettings((current) => ({ ...current, labels: { names: parseLabels(text, file.name), file: file.name } })));
    });
    ui.model.addEventListener('change', () => {
      const entry = this.manifest.models.find((m) => m.name === ui.model.value);
      if (entry) void this.switchModel({ kind: 'manifest', entry });
    });
    ui.webcam.addEventListener('click', () => void this.toggleWebcam());
    ui.opacity.addEventListener('input', () => this.applyOpacity());
    ui.save.addEventListener('click', () => this.save());
    ui.profile.addEventListener('click', () => void this.profile());
    ui.tune.addEventListener('click', () => void this.tune());
    ui.classSelect.addEventListener('change', () => this.pickClass(ui.classSelect.value === 'top' ? 'top' : Number(ui.classSelect.value)));
    ui.classSearch.addEventListener('change', () => {
      const c = parseClassSearch(ui.classSearch.value, this.labels);
      if (c === null) {
        if (ui.classSearch.value.trim()) notice(`no class matches “${ui.classSearch.value}”`, 'error');
        return;
      }
      ui.classSearch.value = '';
      this.pickClass(c);
    });
    ui.layer.addEventListener('change', () => {
      this.layer = ui.layer.value;
      this.fillMethodPicker();
      this.requestChange();
    });
    ui.method.addEventListener('change', () => {
      if (isMethod(ui.method.value)) this.pick({ method: ui.method.value });
    });
    ui.counterfactual.addEventListener('change', () => {
      this.counterfactual = ui.counterfactual.checked;
      this.requestChange();
    });
    for (const box of [ui.augSmooth, ui.eigenSmooth]) {
      box.addEventListener('change', () => {
        this.fillMethodPicker(); // (aug-smooth: six times the slow methods' passes; the note on the chosen method)
        this.requestChange();
      });
    }
    for (const box of [ui.showGrid, ui.gridSlow, ui.showStrip, ui.showInspector]) box.addEventListener('change', () => this.requestRender());
    ui.stop.addEventListener('click', () => this.slowRun?.abort(new Error('stopped on the page')));
    for (const radio of document.querySelectorAll<HTMLInputElement>('input[name=reduction]')) {
      radio.addEventListener('change', () => {
        if (!radio.checked) return;
        this.reduction = isReduction(radio.value) ? radio.value : 'logit';
        this.requestChange();
      });
    }
    // Drag and drop anywhere on the page: pictures are explained, .onnx files become the model.
    window.addEventListener('dragover', (e) => {
      e.preventDefault();
      ui.view.classList.add('dropping');
    });
    window.addEventListener('dragleave', (e) => {
      if (!e.relatedTarget) ui.view.classList.remove('dropping');
    });
    window.addEventListener('drop', (e) => {
      e.preventDefault();
      ui.view.classList.remove('dropping');
      void this.openFiles([...(e.dataTransfer?.files ?? [])]);
    });
    this.applyOpacity();
  }

  private applyOpacity(): void {
    const v = Number(ui.opacity.value);
    ui.heat.style.opacity = String(v);
    ui.opacityValue.textContent = `${Math.round(100 * v)} %`;
    if (this.result && this.result.maps.length > 1) {
      this.drawStrip(this.result, this.mainMap(this.result));
      this.drawGrid(this.result, this.mainMap(this.result));
    }
  }

  // ── device loss ───────────────────────────────────────────────────────────────────────────────

  onLost(info: GPUDeviceLostInfo, recovered: Promise<void>): void {
    const why = info.message ? ` (${info.message})` : '';
    notice(`The GPU device was lost${why}; re-creating the engine…`);
    this.compiled.clear();
    recovered.then(() => {
      progress(null);
      this.showTuning();
      hook.recoveries++;
      notice(`The GPU device was lost${why}; the engine was re-created.`);
      this.requestRender();
    }, (e) => {
      progress(null);
      notice(`The GPU device was lost and could not be re-created: ${message(e)}. Reload the page to try again.`, 'error');
    });
  }
}

function showNoWebGpu(e: NoWebGpu): void {
  ui.noWebGpu.hidden = false;
  ui.noWebGpuReason.textContent = e.reason === 'no-api'
    ? 'This browser has no WebGPU (navigator.gpu is missing).'
    : 'This browser has WebGPU, but it found no graphics adapter to use (it may be turned off, or the driver blocked).';
  hook.state = 'no-webgpu';
  hook.noWebGpuReason = e.reason;
}

async function boot(): Promise<void> {
  let app: App | undefined;
  let session: Session;
  try {
    session = await Session.start({
      lost: (info, recovered) => app?.onLost(info, recovered),
      progress: (text) => progress(text),
    });
  } catch (e) {
    if (e instanceof NoWebGpu) return showNoWebGpu(e);
    throw e;
  }
  hook.loseDevice = () => session.loseDevice();
  hook.limits = session.limits;
  const manifest = await loadManifest(params.get('manifest'));
  app = new App(session, manifest);
  await app.start();
  hook.state = 'ready';
}

boot().catch((e) => {
  hook.state = 'error';
  hook.errors.push(message(e));
  notice(message(e), 'error');
});
