/**
 * Decoding per-token label scores: linear-chain CRF Viterbi and plain argmax.
 *
 * `viterbiDecode` is the same algorithm, in the same floating-point order, as `viterbi` in
 * fixtures/tools/bert_ner.py (pytorch-crf parameterisation: start + emission, then per step
 * max_i(score[i] + transitions[i][j]) + emission[j], then + end). Ties go to the lowest label index, both for
 * back-pointers and for the last label.
 */
import { InputError } from '../errors.js';
import type { CrfParams } from './types.js';

function checkCrf(crf: CrfParams): number {
  const L = crf.start.length;
  const bad =
    L === 0 ||
    crf.end.length !== L ||
    crf.transitions.length !== L ||
    crf.transitions.some((row) => row.length !== L) ||
    (crf.labels.length > 0 && crf.labels.length !== L);
  if (bad) {
    throw new InputError(
      `CRF parameters do not fit together: ${crf.labels.length} labels, ${crf.start.length} start, ` +
        `${crf.end.length} end, ${crf.transitions.length}x${crf.transitions[0]?.length ?? 0} transitions`,
      { hint: 'crf.json needs one start/end score per label and an L x L transitions matrix (format ranerc-crf/1)' },
    );
  }
  return L;
}

/** The highest-scoring label path under a linear-chain CRF. `emissions[t][j]` scores label j at token t. */
export function viterbiDecode(emissions: ArrayLike<number>[], crf: CrfParams): number[] {
  const T = emissions.length;
  if (T === 0) return [];
  const L = checkCrf(crf);
  for (let t = 0; t < T; t++) {
    if (emissions[t].length !== L) {
      throw new InputError(`token ${t} has ${emissions[t].length} label scores but the CRF has ${L} labels`, {
        hint: "the model's number of output labels must equal the number of labels in crf.json",
      });
    }
  }
  const { transitions: trans, start, end } = crf;
  let score = new Float64Array(L);
  for (let j = 0; j < L; j++) score[j] = start[j] + emissions[0][j];
  const back: Int32Array[] = [];
  let next = new Float64Array(L);
  for (let t = 1; t < T; t++) {
    const bp = new Int32Array(L);
    const em = emissions[t];
    for (let j = 0; j < L; j++) {
      let best = -Infinity;
      let bi = 0;
      for (let i = 0; i < L; i++) {
        const v = score[i] + trans[i][j];
        if (v > best) {
          best = v;
          bi = i;
        }
      }
      bp[j] = bi;
      next[j] = best + em[j];
    }
    back.push(bp);
    [score, next] = [next, score];
  }
  let last = 0;
  let bestLast = score[0] + end[0];
  for (let j = 1; j < L; j++) {
    const v = score[j] + end[j];
    if (v > bestLast) {
      bestLast = v;
      last = j;
    }
  }
  const path = new Array<number>(T);
  path[T - 1] = last;
  for (let t = T - 2; t >= 0; t--) path[t] = back[t][path[t + 1]];
  return path;
}

/**
 * CRF label ids of a text's tokens: Viterbi over every token, or, when the CRF runs over words
 * (`crf.positions === 'words'`), over the first piece of each word, every later piece taking its word's label.
 */
export function crfTagIds(rows: ArrayLike<number>[], crf: CrfParams, tokens: ReadonlyArray<{ word: number }>): number[] {
  if (crf.positions !== 'words') return viterbiDecode(rows, crf);
  const first: number[] = [];
  for (let t = 0; t < tokens.length; t++) if (t === 0 || tokens[t].word !== tokens[t - 1].word) first.push(t);
  const wordTags = viterbiDecode(first.map((t) => rows[t]), crf);
  const out = new Array<number>(tokens.length);
  let w = -1;
  for (let t = 0; t < tokens.length; t++) {
    if (w + 1 < first.length && first[w + 1] === t) w++;
    out[t] = wordTags[w];
  }
  return out;
}

/** The best label per token on its own (lowest index on ties). */
export function argmaxDecode(emissions: ArrayLike<number>[]): number[] {
  return emissions.map((row) => {
    let bi = 0;
    let best = row[0];
    for (let j = 1; j < row.length; j++) {
      if (row[j] > best) {
        best = row[j];
        bi = j;
      }
    }
    return bi;
  });
}

/** The CRF score of one label path (start + emissions + transitions + end), for checks. */
export function pathScore(emissions: ArrayLike<number>[], crf: CrfParams, path: number[]): number {
  if (path.length === 0) return 0;
  let s = crf.start[path[0]] + emissions[0][path[0]];
  for (let t = 1; t < path.length; t++) s += crf.transitions[path[t - 1]][path[t]] + emissions[t][path[t]];
  return s + crf.end[path[path.length - 1]];
}
