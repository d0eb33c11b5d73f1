/**
 * Average Drop and Increase in Confidence (Chattopadhay et al. 2018, Grad-CAM++, §6.1). For each
 * image, Y_c is the model's probability of class c (the predicted class) on the image and O_c its
 * probability on the *explanation map* E_c = I ⊙ L_c: the picture multiplied pixel by pixel by the
 * map L_c, min-max normalised to [0, 1] and upsampled to the input's resolution. Then
 *
 *   Average Drop %            = 100 · (1/N) Σ_i max(0, Y_c^i − O_c^i) / Y_c^i      (lower is better)
 *   Increase in Confidence %  = 100 · (1/N) Σ_i [Y_c^i < O_c^i]                  (higher is better)
 *
 * I ⊙ L is taken on the picture's pixel values (0–255), as the paper writes it: black where the
 * map is 0. Preprocessing is affine per channel, so in the model's input space that is
 * x' = b + L · (x − b), with b the input of a black pixel (`preprocessPixel(recipe, [0, 0, 0])`).
 */

export interface ConfidencePair {
  /** Y_c: the class's probability on the image. */
  full: number;
  /** O_c: its probability on the explanation map. */
  explained: number;
}

export function averageDrop(pairs: readonly ConfidencePair[]): number {
  if (!pairs.length) return NaN;
  return (100 / pairs.length) * pairs.reduce((s, p) => s + Math.max(0, p.full - p.explained) / p.full, 0);
}

export function increaseInConfidence(pairs: readonly ConfidencePair[]): number {
  if (!pairs.length) return NaN;
  return (100 / pairs.length) * pairs.filter((p) => p.full < p.explained).length;
}

/** A map min-max normalised to [0, 1] (all zeros when it is constant). */
export function normalise(map: ArrayLike<number>): Float32Array {
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < map.length; i++) { min = Math.min(min, map[i]); max = Math.max(max, map[i]); }
  const out = new Float32Array(map.length);
  if (max > min) for (let i = 0; i < map.length; i++) out[i] = (map[i] - min) / (max - min);
  return out;
}

/**
 * The explanation map's input: x' = b + L · (x − b) per channel, for an input `x` of C planes of
 * `L.length` values (CHW), `black` = b per channel, `L` normalised to [0, 1].
 */
export function explanationInput(x: Float32Array, L: Float32Array, black: readonly number[]): Float32Array {
  const hw = L.length;
  const out = new Float32Array(x.length);
  for (let c = 0; c < black.length; c++) {
    const b = black[c];
    for (let p = 0; p < hw; p++) out[c * hw + p] = b + L[p] * (x[c * hw + p] - b);
  }
  return out;
}
