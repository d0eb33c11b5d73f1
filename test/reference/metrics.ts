/**
 * float64 references of the faithfulness and localisation formulas (src/metrics/), written
 * differently from the engine's code on purpose: the curve's area as a sum of trapezoids, pixels
 * perturbed by their rank, the blur as a direct 2-D Gaussian (not separable), connected components
 * by union-find (not a flood fill), IoU by counting pixels (not by interval arithmetic).
 */

/** Σ over intervals of (p_i + p_{i+1}) / 2 · (1/N). */
export function aucReference(curve: readonly number[]): number {
  const n = curve.length - 1;
  let s = 0;
  for (let i = 0; i < n; i++) s += ((curve[i] + curve[i + 1]) / 2) * (1 / n);
  return s;
}

export function averageDropReference(full: readonly number[], explained: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < full.length; i++) s += full[i] > explained[i] ? (full[i] - explained[i]) / full[i] : 0;
  return (100 * s) / full.length;
}

export function increaseReference(full: readonly number[], explained: readonly number[]): number {
  let n = 0;
  for (let i = 0; i < full.length; i++) if (explained[i] > full[i]) n++;
  return (100 * n) / full.length;
}

/** rank[p]: how many pixels come before p (higher value first, then lower index). */
export function ranksReference(map: ArrayLike<number>): number[] {
  const rank: number[] = [];
  for (let p = 0; p < map.length; p++) {
    let r = 0;
    for (let q = 0; q < map.length; q++) if (map[q] > map[p] || (map[q] === map[p] && q < p)) r++;
    rank.push(r);
  }
  return rank;
}

/** Deletion: x, with base where rank < n; insertion: base, with x where rank < n. */
export function perturbedReference(kind: 'deletion' | 'insertion', x: ArrayLike<number>, base: ArrayLike<number>, rank: number[], n: number): Float64Array {
  const hw = rank.length;
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const changed = rank[i % hw] < n;
    out[i] = kind === 'deletion' ? (changed ? base[i] : x[i]) : (changed ? x[i] : base[i]);
  }
  return out;
}

/** A 2-D Gaussian (σ, radius r) per plane, coordinates clamped to the plane. */
export function blurReference(x: ArrayLike<number>, planes: number, h: number, w: number, sigma: number, r: number): Float64Array {
  const out = new Float64Array(x.length);
  let norm = 0;
  for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) norm += Math.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma));
  for (let c = 0; c < planes; c++) {
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        let s = 0;
        for (let dy = -r; dy <= r; dy++) {
          for (let dx = -r; dx <= r; dx++) {
            const yy = Math.min(h - 1, Math.max(0, y + dy)), xc = Math.min(w - 1, Math.max(0, xx + dx));
            s += Math.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma)) * x[c * h * w + yy * w + xc];
          }
        }
        out[c * h * w + y * w + xx] = s / norm;
      }
    }
  }
  return out;
}

export interface RefBox { xmin: number; ymin: number; xmax: number; ymax: number }

/** The bounding box of the largest 8-connected set of pixels ≥ t · max (union-find); ties: the one holding the first pixel in row-major order. */
export function boxReference(map: ArrayLike<number>, w: number, h: number, t: number): RefBox | null {
  let max = -Infinity;
  for (let i = 0; i < map.length; i++) max = Math.max(max, map[i]);
  if (!(max > 0)) return null;
  const on = (i: number) => map[i] >= t * max;
  const parent = Array.from({ length: w * h }, (_, i) => i);
  const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i])));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!on(y * w + x)) continue;
      for (const [dx, dy] of [[1, 0], [-1, 1], [0, 1], [1, 1]]) {
        const nx = x + dx, ny = y + dy;
        if (nx >= 0 && nx < w && ny < h && on(ny * w + nx)) parent[find(ny * w + nx)] = find(y * w + x);
      }
    }
  }
  const sets = new Map<number, { size: number; first: number; box: RefBox }>();
  for (let i = 0; i < w * h; i++) {
    if (!on(i)) continue;
    const x = i % w, y = Math.floor(i / w), root = find(i);
    const s = sets.get(root) ?? { size: 0, first: i, box: { xmin: x, ymin: y, xmax: x, ymax: y } };
    s.size++;
    s.box = { xmin: Math.min(s.box.xmin, x), ymin: Math.min(s.box.ymin, y), xmax: Math.max(s.box.xmax, x), ymax: Math.max(s.box.ymax, y) };
    sets.set(root, s);
  }
  const best = [...sets.values()].sort((a, b) => b.size - a.size || a.first - b.first)[0];
  return best.box;
}

/** IoU by counting the pixels of each box on a grid. */
export function iouReference(a: RefBox, b: RefBox): number {
  let inter = 0, union = 0;
  const x0 = Math.min(a.xmin, b.xmin), x1 = Math.max(a.xmax, b.xmax), y0 = Math.min(a.ymin, b.ymin), y1 = Math.max(a.ymax, b.ymax);
  const inside = (r: RefBox, x: number, y: number) => x >= r.xmin && x <= r.xmax && y >= r.ymin && y <= r.ymax;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const ia = inside(a, x, y), ib = inside(b, x, y);
      if (ia && ib) inter++;
      if (ia || ib) union++;
    }
  }
  return inter / union;
}

/** numpy's percentile (linear): the value at rank p/100·(n − 1) of the ascending order, interpolated; by a comparator sort. */
export function percentileReference(values: ArrayLike<number>, p: number): number {
  const v = Array.from(values).sort((a, b) => a - b);
  const rank = (p * (v.length - 1)) / 100;
  const below = v[Math.floor(rank)], above = v[Math.ceil(rank)];
  return below + (above - below) * (rank - Math.floor(rank));
}

/**
 * ROAD's linear imputation (no noise) as the authors' imputations.py sets it up, solved densely: for
 * each removed pixel i (mask 0) the equation −s_i·u_i + Σ_{removed neighbours j} w_ij u_j =
 * −Σ_{kept neighbours j} w_ij x_j, s_i = 1 − Σ_{neighbour offsets outside the picture} w; one dense
 * float64 matrix, Gaussian elimination with partial pivoting, one right-hand side per channel.
 */
export function roadImputationReference(x: ArrayLike<number>, c: number, h: number, w: number, removed: ArrayLike<number>): Float64Array {
  const offsets: [number, number, number][] = [[1, 1, 1 / 12], [0, 1, 1 / 6], [-1, 1, 1 / 12], [1, -1, 1 / 12], [0, -1, 1 / 6], [-1, -1, 1 / 12], [1, 0, 1 / 6], [-1, 0, 1 / 6]];
  const vars: number[] = [];
  for (let p = 0; p < h * w; p++) if (removed[p]) vars.push(p);
  const n = vars.length;
  const at = new Map(vars.map((p, i) => [p, i]));
  const A = Array.from({ length: n }, () => new Float64Array(n));
  const B = Array.from({ length: n }, () => new Float64Array(c));
  vars.forEach((p, i) => {
    let s = 1;
    const y = Math.floor(p / w), xx = p % w;
    for (const [dy, dx, wt] of offsets) {
      const ny = y + dy, nx = xx + dx;
      if (ny < 0 || nx < 0 || ny >= h || nx >= w) { s -= wt; continue; }
      const q = ny * w + nx;
      if (at.has(q)) A[i][at.get(q)!] += wt;
      else for (let ch = 0; ch < c; ch++) B[i][ch] -= wt * x[ch * h * w + q];
    }
    A[i][i] = -s;
  });
  // Gaussian elimination with partial pivoting on [A | B].
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(A[r][col]) > Math.abs(A[pivot][col])) pivot = r;
    [A[col], A[pivot]] = [A[pivot], A[col]];
    [B[col], B[pivot]] = [B[pivot], B[col]];
    for (let r = col + 1; r < n; r++) {
      const f = A[r][col] / A[col][col];
      if (f === 0) continue;
      for (let k = col; k < n; k++) A[r][k] -= f * A[col][k];
      for (let ch = 0; ch < c; ch++) B[r][ch] -= f * B[col][ch];
    }
  }
  const U = Array.from({ length: n }, () => new Float64Array(c));
  for (let r = n - 1; r >= 0; r--) {
    for (let ch = 0; ch < c; ch++) {
      let s = B[r][ch];
      for (let k = r + 1; k < n; k++) s -= A[r][k] * U[k][ch];
      U[r][ch] = s / A[r][r];
    }
  }
  const out = Float64Array.from(x);
  vars.forEach((p, i) => { for (let ch = 0; ch < c; ch++) out[ch * h * w + p] = U[i][ch]; });
  return out;
}
