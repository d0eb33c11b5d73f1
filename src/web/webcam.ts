/** The webcam: a <video> fed by getUserMedia, read frame by frame; and a frame-rate meter. */
import type { RgbaImage } from '../image/image.ts';
import { rasterize } from './images.ts';

export class Webcam {
  private stream?: MediaStream;
  readonly video = document.createElement('video');

  constructor() {
    this.video.muted = true;
    this.video.playsInline = true;
  }

  get active(): boolean {
    return this.stream !== undefined;
  }

  async start(): Promise<void> {
    if (!navigator.mediaDevices?.getUserMedia) throw new Error('this browser gives pages no camera access (it needs https or localhost)');
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: 'user' }, audio: false });
    } catch (e) {
      const name = (e as DOMException).name;
      throw new Error(name === 'NotAllowedError' ? 'camera access was refused' : name === 'NotFoundError' ? 'no camera was found' : `the camera did not start (${(e as Error).message})`);
    }
    this.video.srcObject = this.stream;
    await this.video.play();
  }

  /** The current frame (scaled like any picture). */
  frame(): RgbaImage {
    return rasterize(this.video, this.video.videoWidth || 640, this.video.videoHeight || 480);
  }

  stop(): void {
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    this.stream = undefined;
    this.video.srcObject = null;
  }
}

/** Frames per second over the last few frames. */
export class FpsMeter {
  private times: number[] = [];

  tick(now = performance.now()): void {
    this.times.push(now);
    if (this.times.length > 10) this.times.shift();
  }

  reset(): void {
    this.times = [];
  }

  get fps(): number {
    const t = this.times;
    return t.length < 2 ? 0 : ((t.length - 1) * 1000) / (t[t.length - 1] - t[0]);
  }
}
