/**
 * Pure arithmetic on importance scores (Michel et al. 2019, "Are Sixteen Heads Really Better than
 * One?"; reference implementation: Hugging Face `run_bertology.py`): per-layer normalisation, global
 * ranking, selection of what to remove under the "never empty a layer" rule, the split of a removal
 * count over pruning rounds, and Spearman's rank correlation (to compare a ranking with brute force).
 *
 * Scores are given as rows (one per layer) that may have different lengths: after a pruning round a
 * layer keeps fewer heads (or FFN neurons) than another.
 */

/** A unit (head or FFN neuron) by layer and index within the layer. */
export interface UnitId {
  layer: number;
  index: number;
}

/**
 * Divide every row by its L_p norm (p = `exponent`, default 2) plus 1e-20, as `run_bertology.py`'s
 * layer-wise normalisation does: `head_importance /= norm_by_layer.unsqueeze(-1) + 1e-20`.
 * An empty row stays empty; an all-zero row stays zero.
 */
export function normalizeByLayer(scores: readonly (readonly number[])[], exponent = 2): number[][] {
  if (!(exponent > 0)) throw new RangeError(`exponent must be > 0, got ${exponent}`);
  return scores.map((row) => {
    let s = 0;
    for (const v of row) s += Math.pow(Math.abs(v), exponent);
    const norm = Math.pow(s, 1 / exponent) + 1e-20;
    return row.map((v) => v / norm);
  });
}

/**
 * Rescale all scores to [0, 1] by the global minimum and maximum (`run_bertology.py`'s
 * `normalize_global_importance`). Does not change the ranking; all-equal scores become 0.
 */
export function minMaxNormalize(scores: readonly (readonly number[])[]): number[][] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of scores) for (const v of row) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi - lo;
  return scores.map((row) => row.map((v) => (span > 0 ? (v - lo) / span : 0)));
}

/**
 * Every unit, least important first. Ties are broken by layer, then index (deterministic). NaN
 * scores rank first (an unmeasurable unit is treated as unimportant).
 */
export function rankAscending(scores: readonly (readonly number[])[]): UnitId[] {
  const all: Array<UnitId & { s: number }> = [];
  scores.forEach((row, layer) => row.forEach((s, index) => all.push({ layer, index, s: Number.isNaN(s) ? -Infinity : s })));
  all.sort((a, b) => a.s - b.s || a.layer - b.layer || a.index - b.index);
  return all.map(({ layer, index }) => ({ layer, index }));
}

/** 1-based global rank of every unit (1 = most important), shaped like `scores`. */
export function ranksDescending(scores: readonly (readonly number[])[]): number[][] {
  const order = rankAscending(scores);
  const out = scores.map((row) => row.map(() => 0));
  const n = order.length;
  order.forEach((u, i) => (out[u.layer][u.index] = n - i));
  return out;
}

/**
 * The `count` least important units, skipping any whose removal would leave its layer with fewer
 * than `minKeep` units (1 = never empty a layer; 0 = layers may be emptied). Returns fewer than
 * `count` only when the rule forbids more (see {@link maxRemovable}). Result in ranking order.
 */
export function selectRemovals(scores: readonly (readonly number[])[], count: number, minKeep: number): UnitId[] {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be an integer >= 0, got ${count}`);
  if (!Number.isInteger(minKeep) || minKeep < 0) throw new RangeError(`minKeep must be an integer >= 0, got ${minKeep}`);
  const left = scores.map((row) => row.length);
  const out: UnitId[] = [];
  for (const u of rankAscending(scores)) {
    if (out.length >= count) break;
    if (left[u.layer] - 1 < minKeep) continue;
    left[u.layer]--;
    out.push(u);
  }
  return out;
}

/** How many units `selectRemovals` can remove at most with this `minKeep`. */
export function maxRemovable(sizes: readonly number[], minKeep: number): number {
  return sizes.reduce((n, s) => n + Math.max(0, s - minKeep), 0);
}

/**
 * round(ratio × total), halves rounded up: the number of units `--ratio` asks to remove.
 */
export function removalCount(ratio: number, total: number): number {
  if (!(ratio >= 0 && ratio <= 1)) throw new RangeError(`ratio must be in [0, 1], got ${ratio}`);
  return Math.floor(ratio * total + 0.5 + 1e-9);
}

/**
 * Split `total` removals over `rounds` rounds as evenly as possible: round i removes
 * round(total·(i+1)/rounds) − round(total·i/rounds). Sums to `total`; earlier rounds never remove
 * more than later ones by more than one.
 */
export function splitRounds(total: number, rounds: number): number[] {
  if (!Number.isInteger(total) || total < 0) throw new RangeError(`total must be an integer >= 0, got ${total}`);
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`rounds must be an integer >= 1, got ${rounds}`);
  const at = (i: number) => Math.floor((total * i) / rounds + 0.5);
  return Array.from({ length: rounds }, (_, i) => at(i + 1) - at(i));
}

/** Average ranks (1-based) of `x`, ties sharing the mean of their positions. */
export function averageRanks(x: readonly number[]): number[] {
  const idx = x.map((_, i) => i).sort((a, b) => x[a] - x[b]);
  const r = new Array<number>(x.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && x[idx[j + 1]] === x[idx[i]]) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) r[idx[k]] = avg;
    i = j + 1;
  }
  return r;
}

/**
 * Spearman's rank correlation: Pearson's correlation of the average ranks (scipy.stats.spearmanr).
 * NaN when either side is constant or there are fewer than 2 points.
 */
export function spearman(x: readonly number[], y: readonly number[]): number {
  if (x.length !== y.length) throw new RangeError(`spearman: ${x.length} vs ${y.length} values`);
  const n = x.length;
  if (n < 2) return NaN;
  const rx = averageRanks(x);
  const ry = averageRanks(y);
  const mx = rx.reduce((a, b) => a + b, 0) / n;
  const my = ry.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) ** 2;
    syy += (ry[i] - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : NaN;
}

/** Group units by layer: for each layer, the sorted indices listed for it. */
export function byLayer(units: readonly UnitId[], layers: number): number[][] {
  const out: number[][] = Array.from({ length: layers }, () => []);
  for (const u of units) {
    if (u.layer < 0 || u.layer >= layers) throw new RangeError(`layer ${u.layer} outside [0, ${layers})`);
    out[u.layer].push(u.index);
  }
  for (const row of out) row.sort((a, b) => a - b);
  return out;
}
