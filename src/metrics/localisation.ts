/**
 * Weakly supervised localisation by the protocol of Selvaraju et al. 2017 (Grad-CAM, §4.1, after
 * Zhou et al.'s CAM): a map (upsampled to the input's resolution) is binarised at 15 % of its
 * maximum (a pixel counts when value ≥ 0.15 · max), the box is drawn around the largest connected
 * component of those pixels (8-connectivity; the first in row-major order among equally large
 * ones), and a box is correct when its IoU with a ground-truth box of the same class is ≥ 0.5.
 * An all-zero map has no box and counts as wrong. Top-1: the best class is a ground-truth class
 * and its box is correct; top-5: one of the five best classes is (ILSVRC's localisation error).
 */
import type { Box } from './boxes.ts';

export const LOCALISATION_THRESHOLD = 0.15;
export const IOU_THRESHOLD = 0.5;

/**
 * The box around the largest 8-connected component of `map` (w × h, row-major) ≥ threshold · max,
 * in map pixel indices (0-based, inclusive); null when the maximum is not > 0.
 */
export function boxFromMap(map: ArrayLike<number>, w: number, h: number, threshold = LOCALISATION_THRESHOLD): Box | null {
  let max = -Infinity;
  for (let i = 0; i < w * h; i++) max = Math.max(max, map[i]);
  if (!(max > 0)) return null;
  const cut = threshold * max;
  const label = new Int32Array(w * h).fill(-1);
  const stack: number[] = [];
  let best: { size: number; box: Box } | null = null;
  for (let start = 0; start < w * h; start++) {
    if (label[start] >= 0 || !(map[start] >= cut)) continue;
    label[start] = start;
    stack.push(start);
    let size = 0;
    const box = { xmin: w, ymin: h, xmax: -1, ymax: -1 };
    while (stack.length) {
      const p = stack.pop()!;
      const x = p % w, y = (p - x) / w;
      size++;
      box.xmin = Math.min(box.xmin, x); box.xmax = Math.max(box.xmax, x);
      box.ymin = Math.min(box.ymin, y); box.ymax = Math.max(box.ymax, y);
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx, ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
          const q = ny * w + nx;
          if (label[q] < 0 && map[q] >= cut) {
            label[q] = start;
            stack.push(q);
          }
        }
      }
    }
    if (!best || size > best.size) best = { size, box };
  }
  return best!.box;
}

/**
 * A box in the pixels of a w × h map as a box of the W × H picture the map was made from (the
 * input is the whole picture resized, no crop): map pixel x covers picture x' ∈ [x·W/w, (x+1)·W/w);
 * the box covers every picture pixel that such a range touches, 1-based as VOC and ILSVRC count.
 */
export function boxToPicture(box: Box, w: number, h: number, W: number, H: number): Box {
  return {
    xmin: Math.floor((box.xmin * W) / w) + 1, xmax: Math.ceil(((box.xmax + 1) * W) / w),
    ymin: Math.floor((box.ymin * H) / h) + 1, ymax: Math.ceil(((box.ymax + 1) * H) / h),
  };
}

/** Intersection over union of two inclusive pixel boxes (areas count pixels: width = xmax − xmin + 1). */
export function iou(a: Box, b: Box): number {
  const iw = Math.min(a.xmax, b.xmax) - Math.max(a.xmin, b.xmin) + 1;
  const ih = Math.min(a.ymax, b.ymax) - Math.max(a.ymin, b.ymin) + 1;
  if (iw <= 0 || ih <= 0) return 0;
  const area = (r: Box) => (r.xmax - r.xmin + 1) * (r.ymax - r.ymin + 1);
  const inter = iw * ih;
  return inter / (area(a) + area(b) - inter);
}

export interface LocalisationTruth {
  class: number;
  box: Box;
}

/**
 * Whether one of the first `k` predicted classes is a ground-truth class whose predicted box
 * (`boxes.get(class)`, picture pixels) has IoU ≥ 0.5 with a ground-truth box of that class.
 */
export function localisedWithin(k: number, predicted: readonly number[], boxes: ReadonlyMap<number, Box | null>, truth: readonly LocalisationTruth[]): boolean {
  return predicted.slice(0, k).some((c) => {
    const box = boxes.get(c);
    return !!box && truth.some((t) => t.class === c && iou(box, t.box) >= IOU_THRESHOLD);
  });
}
