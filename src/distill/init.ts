/**
 * Student initialisation from the teacher: its token-embedding table, projected onto its top principal
 * directions. The student shares the teacher's vocabulary, so row i of the teacher's table already
 * places token i among similar tokens; starting there instead of at random saves the student from
 * rediscovering that from the little data a time-boxed run sees (cf. initialising students from teacher
 * weights in DistilBERT, or from pre-trained word vectors in Tang et al. 2019 "Distilling
 * Task-Specific Knowledge from BERT into Simple Neural Networks").
 */
import type { onnx } from '../onnx/codec.js';
import { tensorToFloat32 } from '../onnx/tensor.js';
import { gaussian } from './students.js';

/** The teacher's token-embedding table: the float initializer [V, D] that a Gather indexes with `input_ids`. */
export function findTokenEmbeddings(model: onnx.IModelProto, vocabSize: number): { name: string; rows: number; dim: number; data: Float32Array } | undefined {
  const graph = model.graph;
  if (!graph) return undefined;
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  // input_ids may pass through a Cast before the lookup
  const idNames = new Set(['input_ids']);
  for (const n of graph.node ?? []) if (n.opType === 'Cast' && idNames.has(n.input?.[0] ?? '')) idNames.add(n.output?.[0] ?? '');
  for (const n of graph.node ?? []) {
    if (n.opType !== 'Gather' || !idNames.has(n.input?.[1] ?? '')) continue;
    const t = inits.get(n.input?.[0] ?? '');
    const dims = (t?.dims ?? []).map(Number);
    if (!t || dims.length !== 2 || dims[0] < vocabSize) continue;
    return { name: t.name ?? '', rows: dims[0], dim: dims[1], data: tensorToFloat32(t) };
  }
  return undefined;
}

/** Orthonormalise the k columns of Q [n, k] in place (modified Gram–Schmidt). */
function orthonormalise(q: Float64Array, n: number, k: number): void {
  for (let j = 0; j < k; j++) {
    for (let i = 0; i < j; i++) {
      let dot = 0;
      for (let r = 0; r < n; r++) dot += q[r * k + i] * q[r * k + j];
      for (let r = 0; r < n; r++) q[r * k + j] -= dot * q[r * k + i];
    }
    let norm = 0;
    for (let r = 0; r < n; r++) norm += q[r * k + j] ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let r = 0; r < n; r++) q[r * k + j] /= norm;
  }
}

/**
 * Project the first `rows` rows of `data` [*, dim] onto their top-k principal directions (subspace
 * iteration on the covariance), centred, scaled to root-mean-square `rms`. k ≥ dim keeps all directions.
 */
export function pcaProject(data: Float32Array, rows: number, dim: number, k: number, rand: () => number, rms = 1, iterations = 30): Float32Array {
  const kk = Math.min(k, dim);
  const mean = new Float64Array(dim);
  for (let r = 0; r < rows; r++) for (let c = 0; c < dim; c++) mean[c] += data[r * dim + c] / rows;
  const cov = new Float64Array(dim * dim);
  const row = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < dim; c++) row[c] = data[r * dim + c] - mean[c];
    for (let a = 0; a < dim; a++) {
      const x = row[a];
      if (x === 0) continue;
      for (let b = a; b < dim; b++) cov[a * dim + b] += x * row[b];
    }
  }
  for (let a = 0; a < dim; a++) for (let b = 0; b < a; b++) cov[a * dim + b] = cov[b * dim + a];
  const g = gaussian(rand);
  let q = Float64Array.from({ length: dim * kk }, () => g());
  orthonormalise(q, dim, kk);
  for (let it = 0; it < iterations; it++) {
    const z = new Float64Array(dim * kk);
    for (let a = 0; a < dim; a++) for (let b = 0; b < dim; b++) {
      const cab = cov[a * dim + b];
      if (cab === 0) continue;
      for (let j = 0; j < kk; j++) z[a * kk + j] += cab * q[b * kk + j];
    }
    orthonormalise(z, dim, kk);
    q = z;
  }
  const out = new Float32Array(rows * k);
  let ss = 0;
  const tmp = new Float64Array(kk);
  for (let r = 0; r < rows; r++) {
    tmp.fill(0);
    for (let c = 0; c < dim; c++) {
      const x = data[r * dim + c] - mean[c];
      for (let j = 0; j < kk; j++) tmp[j] += x * q[c * kk + j];
    }
    for (let j = 0; j < kk; j++) {
      out[r * k + j] = tmp[j];
      ss += tmp[j] ** 2;
    }
  }
  // directions beyond the teacher's width (k > dim) start small and random
  for (let r = 0; r < rows; r++) for (let j = kk; j < k; j++) out[r * k + j] = 0.1 * g();
  const scale = ss > 0 ? rms / Math.sqrt(ss / (rows * kk)) : 1;
  for (let r = 0; r < rows; r++) for (let j = 0; j < kk; j++) out[r * k + j] *= scale;
  return out;
}
