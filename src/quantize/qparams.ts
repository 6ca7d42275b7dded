/**
 * The arithmetic of INT8 quantization, as pure functions: scale / zero-point selection, quantize and
 * dequantize exactly as the ONNX operators define them, signal-to-quantization-noise ratios, and the
 * range calibrators (min/max, percentile and entropy over histograms).
 *
 * Conventions (those of onnxruntime's `quantization/quant_utils.py` `compute_scale_zp`):
 * - activations: asymmetric uint8. The range is first widened to include 0, then
 *   `scale = (max − min) / 255` and `zero_point = round(−min / scale)` clamped to [0, 255]; a range of width
 *   0 (min = max = 0) gives scale 1, zero point 0 (every value is 0 and dequantizes exactly).
 * - weights: symmetric int8 in [−127, 127]: `scale = max|w| / 127`, zero point 0; per channel along one axis
 *   or per tensor; an all-zero channel gets scale 1.
 * Scales are float32 values (they are stored as float32 tensors); `round` is round-half-to-even.
 *
 * Operator semantics (ONNX QuantizeLinear-13, DequantizeLinear-13, DynamicQuantizeLinear-11), in float32:
 * - QuantizeLinear: `y = saturate(round(x / y_scale) + y_zero_point)`;
 * - DequantizeLinear: `y = (x − x_zero_point) · x_scale`;
 * - DynamicQuantizeLinear: `x_min = min(0, min(x))`, `x_max = max(0, max(x))`,
 *   `y_scale = (x_max − x_min) / 255`, `y_zero_point = saturate(round(0 − x_min / y_scale))`,
 *   `y = saturate(round(x / y_scale) + y_zero_point)`.
 * Every float32 operation is rounded with `Math.fround` (IEEE division/multiplication computed in double and
 * rounded once to float32 gives the correctly rounded float32 result).
 *
 * Calibrators follow onnxruntime's `calibrate.py`: `HistogramCollector.collect_value` (a histogram
 * symmetric around 0 over [−t, t], t = max|x|, widened by whole bins when a later batch exceeds it),
 * `compute_percentile` (asymmetric: cut (100 − p)/2 % on each side, thresholds at the left edge of the
 * bin where the CDF crosses, clamped to the observed min/max) and `get_entropy_threshold` (KL divergence
 * between the clipped reference distribution and its `numQuantizedBins`-level quantization, smoothed; the
 * symmetric threshold with the least divergence wins). Non-finite values (NaN, ±Inf) are skipped and counted.
 */

export const UINT8_MIN = 0;
export const UINT8_MAX = 255;
/** Symmetric int8 weights use [−127, 127] (so that the range is symmetric around zero point 0). */
export const INT8_SYM_MAX = 127;
export const INT8_MIN = -128;
export const INT8_MAX = 127;
/** Largest finite float32. */
export const FLOAT32_MAX = 3.4028234663852886e38;
/** Smallest positive normal float32 (numpy's finfo(float32).tiny). */
export const FLOAT32_TINY = 1.1754943508222875e-38;

export type QuantType = 'uint8' | 'int8';

/** Quantization parameters of one tensor: one scale / zero point, or one per channel along `axis`. */
export interface QParams {
  type: QuantType;
  /** float32 scales (length 1 for per-tensor). */
  scale: Float32Array;
  /** Zero points (length of `scale`). */
  zeroPoint: Int32Array;
  /** Channel axis for per-channel parameters. */
  axis?: number;
}

/** A calibrated real range. */
export interface Range {
  min: number;
  max: number;
}

const fr = Math.fround;

/** Round half to even (numpy.round / std::nearbyint under the default rounding mode). */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

function qBounds(type: QuantType): [number, number] {
  return type === 'uint8' ? [UINT8_MIN, UINT8_MAX] : [INT8_MIN, INT8_MAX];
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/** NaN → 0 (no information), ±Inf → ±float32 max. */
function sanitize(v: number): number {
  if (Number.isNaN(v)) return 0;
  if (v === Infinity) return FLOAT32_MAX;
  if (v === -Infinity) return -FLOAT32_MAX;
  return v;
}

/**
 * Asymmetric uint8 parameters for a real range (onnxruntime `compute_scale_zp`, qmin 0, qmax 255):
 * the range is widened to include 0, `scale = fround(fround(max − min) / 255)`,
 * `zero_point = round(0 − min / scale)` clamped to [0, 255]. Degenerate ranges: a width below the smallest
 * normal float32 (e.g. min = max = 0) gives scale 1 and zero point 0; NaN bounds count as 0 and infinite
 * ones as ±float32 max.
 */
export function activationParams(range: Range): { scale: number; zeroPoint: number } {
  const min = fr(Math.min(sanitize(range.min), 0));
  const max = fr(Math.max(sanitize(range.max), 0));
  const width = fr(max - min);
  const exact = width / (UINT8_MAX - UINT8_MIN); // float64, as numpy computes dr / dq
  if (!(exact >= FLOAT32_TINY) || !Number.isFinite(exact)) {
    if (!Number.isFinite(exact)) return { scale: fr(FLOAT32_MAX / 127.5), zeroPoint: 128 };
    return { scale: 1, zeroPoint: 0 };
  }
  const zeroPoint = clamp(roundHalfEven(UINT8_MIN - min / exact), UINT8_MIN, UINT8_MAX);
  return { scale: fr(exact), zeroPoint };
}

/** Symmetric int8 scale for a maximum magnitude: `fround(absMax / 127)`, or 1 when absMax is 0 (or below float32 tiny·127). */
export function symmetricScale(absMax: number): number {
  const a = sanitize(Math.abs(absMax));
  const s = (2 * a) / (2 * INT8_SYM_MAX); // onnxruntime: (rmax − rmin) / (qmax − qmin) with rmin = −absmax
  return s < FLOAT32_TINY ? 1 : fr(s);
}

/** The extent of `dims` split at `axis`: elements before, along, and after it. */
export function axisSplit(dims: readonly number[], axis: number): { outer: number; channels: number; inner: number } {
  const r = dims.length;
  const a = axis < 0 ? axis + r : axis;
  if (a < 0 || a >= r) throw new RangeError(`axis ${axis} is out of range for rank ${r}`);
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < a; i++) outer *= dims[i];
  for (let i = a + 1; i < r; i++) inner *= dims[i];
  return { outer, channels: dims[a], inner };
}

/**
 * Symmetric int8 weight parameters: one scale (per tensor) or one per index of `axis` (per channel), each
 * `max|w| / 127` over its slice; zero points 0. Non-finite weights are not allowed (RangeError).
 */
export function weightParams(w: ArrayLike<number>, dims: readonly number[], axis?: number): QParams {
  if (axis === undefined) {
    let m = 0;
    for (let i = 0; i < w.length; i++) {
      const v = Math.abs(w[i]);
      if (!Number.isFinite(v)) throw new RangeError(`weight element ${i} is ${w[i]}`);
      if (v > m) m = v;
    }
    return { type: 'int8', scale: Float32Array.of(symmetricScale(m)), zeroPoint: new Int32Array(1) };
  }
  const { outer, channels, inner } = axisSplit(dims, axis);
  const maxes = new Float64Array(channels);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      let m = maxes[c];
      for (let i = 0; i < inner; i++) {
        const v = Math.abs(w[base + i]);
        if (!Number.isFinite(v)) throw new RangeError(`weight element ${base + i} is ${w[base + i]}`);
        if (v > m) m = v;
      }
      maxes[c] = m;
    }
  }
  const scale = new Float32Array(channels);
  for (let c = 0; c < channels; c++) scale[c] = symmetricScale(maxes[c]);
  return { type: 'int8', scale, zeroPoint: new Int32Array(channels), axis: axis < 0 ? axis + dims.length : axis };
}

/** The (outer, channels, inner) layout of per-channel parameters over `dims`; per tensor is (1, 1, n). */
function paramLayout(p: QParams, dims: readonly number[], n: number): { outer: number; channels: number; inner: number } {
  if (p.axis === undefined) {
    if (p.scale.length !== 1) throw new RangeError('per-channel parameters need an axis');
    return { outer: 1, channels: 1, inner: n };
  }
  const l = axisSplit(dims, p.axis);
  if (l.channels !== p.scale.length) {
    throw new RangeError(`axis ${p.axis} has ${l.channels} channels but there are ${p.scale.length} scales`);
  }
  if (l.outer * l.channels * l.inner !== n) throw new RangeError(`dims [${dims.join(', ')}] do not hold ${n} elements`);
  return l;
}

/**
 * ONNX QuantizeLinear: `saturate(round_half_even(x / scale) + zero_point)` in float32, per tensor or per
 * channel (`p.axis` over `dims`). NaN quantizes to the zero point (onnxruntime's behaviour).
 */
export function quantizeLinear(x: ArrayLike<number>, p: QParams, dims: readonly number[] = [x.length]): Int8Array | Uint8Array {
  const [lo, hi] = qBounds(p.type);
  const out = p.type === 'uint8' ? new Uint8Array(x.length) : new Int8Array(x.length);
  const { outer, channels, inner } = paramLayout(p, dims, x.length);
  let i = 0;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const s = p.scale[c];
      const zp = p.zeroPoint[c];
      for (let k = 0; k < inner; k++, i++) {
        const q = roundHalfEven(fr(fr(x[i]) / s));
        out[i] = Number.isNaN(q) ? clamp(zp, lo, hi) : clamp(q + zp, lo, hi);
      }
    }
  }
  return out;
}

/** ONNX DequantizeLinear: `(q − zero_point) · scale` in float32, per tensor or per channel. */
export function dequantizeLinear(q: ArrayLike<number>, p: QParams, dims: readonly number[] = [q.length]): Float32Array {
  const out = new Float32Array(q.length);
  const { outer, channels, inner } = paramLayout(p, dims, q.length);
  let i = 0;
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const s = p.scale[c];
      const zp = p.zeroPoint[c];
      for (let k = 0; k < inner; k++, i++) out[i] = fr((q[i] - zp) * s);
    }
  }
  return out;
}

/** ONNX DynamicQuantizeLinear (uint8): the quantized values with the scale and zero point it chose. */
export function dynamicQuantizeLinear(x: ArrayLike<number>): { y: Uint8Array; scale: number; zeroPoint: number } {
  let min = 0;
  let max = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  min = fr(min);
  max = fr(max);
  const scale = fr(fr(max - min) / (UINT8_MAX - UINT8_MIN));
  const zeroPoint = scale === 0 ? 0 : clamp(roundHalfEven(fr(UINT8_MIN - fr(min / scale))), UINT8_MIN, UINT8_MAX);
  const y = new Uint8Array(x.length);
  if (scale !== 0) {
    for (let i = 0; i < x.length; i++) y[i] = clamp(roundHalfEven(fr(fr(x[i]) / scale)) + zeroPoint, UINT8_MIN, UINT8_MAX);
  }
  return { y, scale, zeroPoint };
}

/** QParams of a calibrated activation range (uint8, per tensor). */
export function activationQParams(range: Range): QParams {
  const { scale, zeroPoint } = activationParams(range);
  return { type: 'uint8', scale: Float32Array.of(scale), zeroPoint: Int32Array.of(zeroPoint) };
}

/** Quantize then dequantize (what the model computes with instead of `x`). */
export function fakeQuantize(x: ArrayLike<number>, p: QParams, dims: readonly number[] = [x.length]): Float32Array {
  return dequantizeLinear(quantizeLinear(x, p, dims), p, dims);
}

// ------------------------------------------------------------------------------------ SQNR

/** Running signal and noise energies of a reference vs. an approximation. */
export interface SqnrAccumulator {
  signal: number;
  noise: number;
  count: number;
}

export function newSqnr(): SqnrAccumulator {
  return { signal: 0, noise: 0, count: 0 };
}

/** Add `ref` vs `approx` to the accumulator (non-finite pairs are skipped). */
export function accumulateSqnr(acc: SqnrAccumulator, ref: ArrayLike<number>, approx: ArrayLike<number>): SqnrAccumulator {
  if (ref.length !== approx.length) throw new RangeError(`SQNR of arrays of different lengths (${ref.length} vs ${approx.length})`);
  let s = 0;
  let n = 0;
  let c = 0;
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i];
    const d = r - approx[i];
    if (!Number.isFinite(d)) continue;
    s += r * r;
    n += d * d;
    c++;
  }
  acc.signal += s;
  acc.noise += n;
  acc.count += c;
  return acc;
}

/**
 * Signal-to-quantization-noise ratio in dB, `10·log10(Σ ref² / Σ (ref − approx)²)`; `Infinity` when the
 * noise is zero (exact), `NaN` when there was nothing to compare.
 */
export function sqnrDb(acc: SqnrAccumulator): number {
  if (acc.count === 0) return NaN;
  if (acc.noise === 0) return Infinity;
  if (acc.signal === 0) return -Infinity;
  return 10 * Math.log10(acc.signal / acc.noise);
}

/** SQNR (dB) of one pair of arrays. */
export function sqnr(ref: ArrayLike<number>, approx: ArrayLike<number>): number {
  return sqnrDb(accumulateSqnr(newSqnr(), ref, approx));
}

/** SQNR of independent noise sources combined (noise powers add): `−10·log10(Σ 10^(−dB/10))`. */
export function combineSqnrDb(values: readonly number[]): number {
  let inv = 0;
  for (const v of values) {
    if (Number.isNaN(v)) continue;
    if (v === Infinity) continue;
    inv += 10 ** (-v / 10);
  }
  return inv === 0 ? Infinity : -10 * Math.log10(inv);
}

// ------------------------------------------------------------------------------------ min/max

/** Running min/max of the finite values seen, with a count of the non-finite ones skipped. */
export interface MinMax {
  min: number;
  max: number;
  /** Finite values seen. */
  count: number;
  /** NaN/±Inf values skipped. */
  nonFinite: number;
}

export function newMinMax(): MinMax {
  return { min: Infinity, max: -Infinity, count: 0, nonFinite: 0 };
}

/** Fold `x` into a running min/max. */
export function updateMinMax(acc: MinMax, x: ArrayLike<number>): MinMax {
  let { min, max } = acc;
  let bad = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v < min) min = v;
    if (v > max) max = v;
    if (!Number.isFinite(v)) bad++;
  }
  if (bad > 0) {
    // recompute over finite values only (rare path)
    min = acc.min;
    max = acc.max;
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (!Number.isFinite(v)) continue;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  acc.min = min;
  acc.max = max;
  acc.count += x.length - bad;
  acc.nonFinite += bad;
  return acc;
}

/**
 * Merge a reduced (min, max) pair of `count` values, e.g. from in-graph ReduceMin/ReduceMax. A non-finite
 * bound (the batch held NaN or ±Inf) is left out and counted in `nonFinite`.
 */
export function mergeMinMax(acc: MinMax, min: number, max: number, count = 1): MinMax {
  if (Number.isFinite(min)) acc.min = Math.min(acc.min, min);
  else acc.nonFinite++;
  if (Number.isFinite(max)) acc.max = Math.max(acc.max, max);
  else acc.nonFinite++;
  acc.count += count;
  return acc;
}

/** The range of a running min/max; [0, 0] when nothing finite was seen. */
export function minMaxRange(acc: MinMax): Range {
  return acc.min <= acc.max ? { min: acc.min, max: acc.max } : { min: 0, max: 0 };
}

// ------------------------------------------------------------------------------------ histograms

/** A histogram symmetric around zero over [−threshold, threshold] (onnxruntime `collect_value`). */
export interface Histogram {
  /** Bin counts (uniform bins; the last bin includes its right edge). */
  counts: Float64Array;
  /** Half-width of the range: the bins cover [−threshold, threshold]. */
  threshold: number;
  /** Observed finite min / max. */
  min: number;
  max: number;
  /** NaN/±Inf values skipped. */
  nonFinite: number;
}

/** Upper bound on the bins a histogram may grow to; beyond it, the old counts are re-binned (coarser). */
export const MAX_HISTOGRAM_BINS = 1 << 17;

/** Left edge of bin `i` of `h` (bin i covers [edge(i), edge(i+1))). */
export function binEdge(h: Pick<Histogram, 'counts' | 'threshold'>, i: number): number {
  const n = h.counts.length;
  if (h.threshold === 0) return -0.5 + i / n; // numpy widens an empty range to [−0.5, 0.5]
  return -h.threshold + (2 * h.threshold * i) / n;
}

/** numpy.histogram(x, bins=n, range=(lo, hi)) added into `counts` (values outside the range are dropped). */
function addToBins(counts: Float64Array, x: ArrayLike<number>, lo: number, hi: number): void {
  const n = counts.length;
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const norm = n / (hi - lo);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!(v >= lo && v <= hi)) continue;
    let b = Math.floor((v - lo) * norm);
    if (b >= n) b = n - 1;
    else if (b < 0) b = 0;
    counts[b]++;
  }
}

function finiteMinMax(x: ArrayLike<number>): { min: number; max: number; bad: number } {
  let min = Infinity;
  let max = -Infinity;
  let bad = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!Number.isFinite(v)) {
      bad++;
      continue;
    }
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (min > max) return { min: 0, max: 0, bad };
  return { min, max, bad };
}

/** A new histogram of `x` with `numBins` bins over [−t, t], t = max|x| (finite values). */
export function newHistogram(x: ArrayLike<number>, numBins: number): Histogram {
  if (!Number.isInteger(numBins) || numBins < 1) throw new RangeError(`numBins must be a positive integer, got ${numBins}`);
  const { min, max, bad } = finiteMinMax(x);
  const threshold = Math.max(Math.abs(min), Math.abs(max));
  const counts = new Float64Array(numBins);
  addToBins(counts, x, -threshold, threshold);
  return { counts, threshold, min, max, nonFinite: bad };
}

/**
 * Fold another batch into a histogram (onnxruntime `merge_histogram`): when the batch fits in the current
 * range its counts are added; otherwise the range grows by whole bins on both sides (same bin width) and
 * the old counts are placed in the middle. If that would exceed {@link MAX_HISTOGRAM_BINS}, the old counts
 * are re-binned into the histogram's original bin count over the new range (by bin centre).
 */
export function updateHistogram(h: Histogram, x: ArrayLike<number>): Histogram {
  const { min, max, bad } = finiteMinMax(x);
  const t = Math.max(Math.abs(min), Math.abs(max));
  const finite = x.length - bad;
  const newMin = finite > 0 ? Math.min(h.min, min) : h.min;
  const newMax = finite > 0 ? Math.max(h.max, max) : h.max;
  const nonFinite = h.nonFinite + bad;
  if (t <= h.threshold) {
    addToBins(h.counts, x, -h.threshold, h.threshold);
    return { counts: h.counts, threshold: h.threshold, min: newMin, max: newMax, nonFinite };
  }
  const oldN = h.counts.length;
  if (h.threshold === 0) {
    const counts = new Float64Array(oldN);
    addToBins(counts, x, -t, t);
    for (let i = 0; i < oldN; i++) counts[i] += h.counts[i];
    return { counts, threshold: t, min: newMin, max: newMax, nonFinite };
  }
  const stride = (2 * h.threshold) / oldN;
  const half = Math.floor((t - h.threshold) / stride) + 1;
  const newN = oldN + 2 * half;
  const newT = half * stride + h.threshold;
  if (newN <= MAX_HISTOGRAM_BINS) {
    const counts = new Float64Array(newN);
    addToBins(counts, x, -newT, newT);
    for (let i = 0; i < oldN; i++) counts[half + i] += h.counts[i];
    return { counts, threshold: newT, min: newMin, max: newMax, nonFinite };
  }
  // Too many bins: keep the bin count, spread the old counts by bin centre into the wider range.
  const counts = new Float64Array(oldN);
  addToBins(counts, x, -t, t);
  const norm = oldN / (2 * t);
  for (let i = 0; i < oldN; i++) {
    if (h.counts[i] === 0) continue;
    const centre = -h.threshold + (i + 0.5) * stride;
    const b = Math.min(oldN - 1, Math.max(0, Math.floor((centre + t) * norm)));
    counts[b] += h.counts[i];
  }
  return { counts, threshold: t, min: newMin, max: newMax, nonFinite };
}

/** First index i with cdf[i] >= v (numpy.searchsorted, side 'left'). */
function searchSorted(cdf: Float64Array, v: number): number {
  let lo = 0;
  let hi = cdf.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The percentile range of a histogram (onnxruntime `compute_percentile`, asymmetric): cut `(100 − p) / 2`
 * percent on each side; each bound is the left edge of the bin where the CDF reaches the cut, then clamped
 * to the observed [min, max]. A histogram with no counts gives [min, max].
 */
export function percentileRange(h: Histogram, percentile: number): Range {
  if (!(percentile >= 0 && percentile <= 100)) throw new RangeError(`percentile must be in [0, 100], got ${percentile}`);
  let total = 0;
  for (const c of h.counts) total += c;
  if (total === 0) return { min: h.min, max: h.max };
  const cdf = new Float64Array(h.counts.length);
  let run = 0;
  for (let i = 0; i < h.counts.length; i++) {
    run += h.counts[i] / total;
    cdf[i] = run;
  }
  const cut = (100 - percentile) / 200;
  const right = Math.min(searchSorted(cdf, 1 - cut), h.counts.length);
  const left = Math.min(searchSorted(cdf, cut), h.counts.length);
  let lo = binEdge(h, left);
  let hi = binEdge(h, right);
  if (lo < h.min) lo = h.min;
  if (hi > h.max) hi = h.max;
  return { min: lo, max: hi };
}

/**
 * onnxruntime's `smooth_distribution`: zeros become eps, the same mass is taken off the non-zero entries
 * (float32 arithmetic). Undefined when every entry is zero.
 */
export function smoothDistribution(p: ArrayLike<number>, eps = 0.0001): Float32Array | undefined {
  let zeros = 0;
  for (let i = 0; i < p.length; i++) if (p[i] === 0) zeros++;
  const nonZeros = p.length - zeros;
  if (nonZeros === 0) return undefined;
  const eps1 = (eps * zeros) / nonZeros;
  const out = new Float32Array(p.length);
  const e = fr(eps);
  const e1 = fr(-eps1);
  for (let i = 0; i < p.length; i++) out[i] = fr(fr(p[i]) + (p[i] === 0 ? e : e1));
  return out;
}

/** KL divergence of the normalized distributions, Σ p·log(p/q) (scipy.stats.entropy(p, q)). */
export function klDivergence(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < p.length; i++) {
    sp += p[i];
    sq += q[i];
  }
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i] / sp;
    const qi = q[i] / sq;
    if (pi > 0) {
      if (!(qi > 0)) return Infinity;
      kl += pi * Math.log(pi / qi);
    } else if (pi < 0 || qi < 0) return Infinity;
  }
  return kl;
}

/**
 * The entropy-calibrated range of a histogram (onnxruntime `get_entropy_threshold`): for every symmetric
 * window of `2i + 1` bins around the zero bin (i from numQuantizedBins/2 to the zero bin), compare the
 * window with outliers folded into its end bins (p) to its quantization into `numQuantizedBins` levels
 * expanded back (q, integer-truncated as onnxruntime does), both smoothed; the window with the smallest KL
 * divergence gives the thresholds, clamped to the observed [min, max].
 */
export function entropyRange(h: Histogram, numQuantizedBins = 128): Range {
  const hist = h.counts;
  const numBins = hist.length;
  const zeroBin = numBins >> 1;
  const halfQ = numQuantizedBins >> 1;
  if (numQuantizedBins < 1 || halfQ > zeroBin) {
    // too few bins to search: the whole histogram range
    return { min: Math.max(binEdge(h, 0), h.min), max: Math.min(binEdge(h, numBins), h.max) };
  }
  const prefix = new Float64Array(numBins + 1);
  for (let i = 0; i < numBins; i++) prefix[i + 1] = prefix[i] + hist[i];
  const sum = (a: number, b: number): number => prefix[Math.min(b, numBins)] - prefix[Math.max(a, 0)];
  let best = Infinity;
  let bestRange: [number, number] = [binEdge(h, 0), binEdge(h, numBins)];
  for (let i = halfQ; i <= zeroBin; i++) {
    const start = zeroBin - i;
    const end = Math.min(zeroBin + i + 1, numBins);
    const size = end - start;
    const p = new Float64Array(size);
    for (let k = 0; k < size; k++) p[k] = hist[start + k];
    p[0] += sum(0, start);
    p[size - 1] += sum(end, numBins);
    const merged = Math.floor(size / numQuantizedBins);
    const qBins = new Float64Array(numQuantizedBins);
    for (let j = 0; j < numQuantizedBins; j++) qBins[j] = sum(start + j * merged, start + (j + 1) * merged);
    qBins[numQuantizedBins - 1] += sum(start + numQuantizedBins * merged, end);
    const q = new Float64Array(size);
    for (let j = 0; j < numQuantizedBins; j++) {
      const a = j * merged;
      const b = a + merged;
      let norm = 0;
      for (let k = a; k < b; k++) if (p[k] !== 0) norm++;
      if (norm !== 0) {
        const v = Math.trunc(qBins[j] / norm); // onnxruntime assigns into an int64 array
        for (let k = a; k < b; k++) q[k] = v;
      }
    }
    const ps = smoothDistribution(p);
    const qs = smoothDistribution(q);
    const kl = ps && qs ? klDivergence(ps, qs) : Infinity;
    if (kl < best || i === halfQ) {
      best = kl;
      bestRange = [binEdge(h, start), binEdge(h, end)];
    }
  }
  let [lo, hi] = bestRange;
  if (lo < h.min) lo = h.min;
  if (hi > h.max) hi = h.max;
  return { min: lo, max: hi };
}
