/**
 * Latency cost model of a pruned encoder (pure fitting; the timing that feeds it is not here yet).
 *
 * A variant v of the model is described by, per layer, its kept heads h_l, kept FFN neurons f_l and
 * whether the layer is still present. The model is linear in the counts:
 *
 *     latency(v) ≈ base + c_head · Σ h_l + c_neuron · Σ f_l + c_layer · (layers present)
 *
 * fitted by ordinary least squares to measured (variant, p50 ms) pairs (normal equations, solved by
 * Gaussian elimination with partial pivoting). `costOf` gives the ms saved by removing units.
 */

export interface VariantShape {
  heads: number;
  neurons: number;
  layers: number;
}

export interface CostModel {
  base: number;
  perHead: number;
  perNeuron: number;
  perLayer: number;
  /** Root-mean-square residual of the fit, ms. */
  rmse: number;
}

/** Solve A x = b (A n×n, row-major) by Gaussian elimination with partial pivoting. */
export function solveLinear(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r][c]) > Math.abs(M[p][c])) p = r;
    if (Math.abs(M[p][c]) < 1e-12) throw new RangeError('the system is singular: the measured variants do not separate heads, neurons and layers');
    [M[c], M[p]] = [M[p], M[c]];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = M[r][c] / M[c][c];
      for (let k = c; k <= n; k++) M[r][k] -= f * M[c][k];
    }
  }
  return M.map((row, i) => row[n] / row[i]);
}

/** Least-squares fit of the linear cost model to measured variants (at least 4, linearly independent). */
export function fitCostModel(samples: ReadonlyArray<{ shape: VariantShape; ms: number }>): CostModel {
  if (samples.length < 4) throw new RangeError(`the cost model needs at least 4 measured variants, got ${samples.length}`);
  const rows = samples.map((s) => [1, s.shape.heads, s.shape.neurons, s.shape.layers]);
  const AtA = [0, 1, 2, 3].map((i) => [0, 1, 2, 3].map((j) => rows.reduce((a, r) => a + r[i] * r[j], 0)));
  const Atb = [0, 1, 2, 3].map((i) => rows.reduce((a, r, k) => a + r[i] * samples[k].ms, 0));
  const [base, perHead, perNeuron, perLayer] = solveLinear(AtA, Atb);
  const pred = (s: VariantShape) => base + perHead * s.heads + perNeuron * s.neurons + perLayer * s.layers;
  const rmse = Math.sqrt(samples.reduce((a, s) => a + (pred(s.shape) - s.ms) ** 2, 0) / samples.length);
  return { base, perHead, perNeuron, perLayer, rmse };
}

/** Predicted latency of a variant, ms. */
export function predictLatency(m: CostModel, s: VariantShape): number {
  return m.base + m.perHead * s.heads + m.perNeuron * s.neurons + m.perLayer * s.layers;
}

/** Milliseconds saved by removing `heads` heads, `neurons` neurons and `layers` whole layers. */
export function costOf(m: CostModel, removed: VariantShape): number {
  return m.perHead * removed.heads + m.perNeuron * removed.neurons + m.perLayer * removed.layers;
}
