/**
 * Small value maps for the inspector, drawn on the CPU (h·w values, at most a few thousand): the
 * heat maps of the view come from the GPU's jet overlay, these are the maps jet does not suit.
 *   - 'diverging': signed values around 0, blue (−scale) → white (0) → red (+scale);
 *   - 'sequential': values ≥ 0, black (0) → white (scale).
 * The canvas has one pixel per value; CSS scales it up without smoothing.
 */
export type ValueScale = 'diverging' | 'sequential';

function colour(v: number, kind: ValueScale, scale: number): [number, number, number] {
  const t = scale > 0 ? Math.max(-1, Math.min(1, v / scale)) : 0;
  if (kind === 'sequential') {
    const g = Math.round(255 * Math.max(0, t));
    return [g, g, g];
  }
  const fade = Math.round(255 * (1 - Math.abs(t)));
  return t >= 0 ? [255, fade, fade] : [fade, fade, 255];
}

export function valueCanvas(values: ArrayLike<number>, rows: number, cols: number, kind: ValueScale, scale: number, id?: string): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  canvas.width = cols;
  canvas.height = rows;
  canvas.className = 'values';
  if (id) canvas.id = id;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('no 2D canvas context');
  const img = ctx.createImageData(cols, rows);
  for (let i = 0; i < rows * cols; i++) img.data.set([...colour(values[i], kind, scale), 255], 4 * i);
  ctx.putImageData(img, 0, 0);
  return canvas;
}
