/**
 * Pure arithmetic of pruning to a latency target (`ranerc prune --target-speedup X`): which heads, FFN
 * neuron blocks and whole layers to remove for a wanted saving in milliseconds, by importance lost per
 * millisecond saved (a greedy choice over a linear cost model, costmodel.ts), the latency goal of each
 * round, and when the iterative loop stops. No I/O, no timing: target-run.ts feeds measured numbers in.
 *
 * Importance is the raw Σ|∂L/∂ξ| ÷ tokens of a gate (importance.ts) — to first order the loss increase
 * of removing the unit — so heads and neurons are on one scale (no per-layer normalisation here); a
 * whole layer's importance is the sum of its remaining units'.
 */
import type { CostModel } from './costmodel.js';

/** Importance of one layer's remaining units (current numbering: index i = i-th remaining unit). */
export interface LayerScores {
  heads: readonly number[];
  neurons: readonly number[];
}

export type CandidateKind = 'head' | 'neurons' | 'attention' | 'layer';

/** One greedy step: what was chosen, its importance and its predicted saving. */
export interface SelectionStep {
  kind: CandidateKind;
  layer: number;
  /** Heads and neurons this step removes (current numbering within the layer). */
  heads: number[];
  neurons: number[];
  importance: number;
  ms: number;
}

export interface Selection {
  /** Per layer (current numbering): heads and FFN neurons to remove, sorted. */
  heads: number[][];
  neurons: number[][];
  /** Layers removed entirely (every head and neuron), and layers that lose all heads but keep their FFN. */
  layers: number[];
  attentionOnly: number[];
  /** Predicted milliseconds saved, importance removed. */
  predictedMs: number;
  importance: number;
  steps: SelectionStep[];
  /** True when no candidate was left before the wanted saving was reached. */
  exhausted: boolean;
}

export interface SelectOptions {
  /** FFN neurons removed together (default 64; the last block of a layer may be smaller). */
  neuronBlock?: number;
  /** Allow removing a layer's heads while it keeps its FFN (default true). */
  allowAttentionRemoval?: boolean;
  /** Allow removing whole layers (default true). */
  allowLayerRemoval?: boolean;
  /** Layers that must keep at least one head and one neuron; default none. */
  protect?: readonly number[];
  /** Layers that keep their attention, at least (default 1: the graph stays an encoder). */
  keepAttentionLayers?: number;
}

/** Cost coefficients clamped at 0: a noisy fit may give a small negative one, which saves nothing. */
function nonNegative(m: CostModel): CostModel {
  return { ...m, perHead: Math.max(0, m.perHead), perNeuron: Math.max(0, m.perNeuron), perLayer: Math.max(0, m.perLayer) };
}

/** Indices 0 … n−1 ordered by ascending score (ties by index; NaN first, as unmeasurable). */
function ascending(scores: readonly number[]): number[] {
  const key = (i: number) => (Number.isNaN(scores[i]) ? -Infinity : scores[i]);
  return scores.map((_, i) => i).sort((a, b) => key(a) - key(b) || a - b);
}

/**
 * Choose units to remove so that the predicted saving reaches `savingMs`, greedily by least
 * importance per millisecond. Candidates, per layer still present:
 * - its least important remaining head (a layer keeps ≥ 1 head this way): cost `perHead`;
 * - its next block of `neuronBlock` least important neurons (keeps ≥ 1 neuron): cost `n · perNeuron`;
 * - all its remaining heads ("attention"; the layer keeps only its FFN): cost `h · perHead`;
 * - the whole layer (all remaining heads and neurons): cost `h · perHead + n · perNeuron + perLayer`.
 * Importance of a candidate is the sum of its units' scores. A layer chosen after some of its units
 * counts only what is left. Steps with no predicted saving are never taken.
 */
export function selectForSaving(layers: readonly LayerScores[], cost: CostModel, savingMs: number, opts: SelectOptions = {}): Selection {
  if (!(savingMs >= 0)) throw new RangeError(`savingMs must be >= 0, got ${savingMs}`);
  const block = opts.neuronBlock ?? 64;
  if (!Number.isInteger(block) || block < 1) throw new RangeError(`neuronBlock must be an integer >= 1, got ${block}`);
  const m = nonNegative(cost);
  const protect = new Set(opts.protect ?? []);
  const allowAttention = opts.allowAttentionRemoval ?? true;
  const allowLayer = opts.allowLayerRemoval ?? true;
  const keepAttention = opts.keepAttentionLayers ?? 1;
  let withAttention = layers.filter((l) => l.heads.length > 0).length;
  const st = layers.map((l) => ({
    headOrder: ascending(l.heads),
    neuronOrder: ascending(l.neurons),
    h: 0, // heads taken (prefix of headOrder)
    n: 0, // neurons taken
    attention: false,
    layer: false,
  }));
  const steps: SelectionStep[] = [];
  let saved = 0;
  let importance = 0;
  const sum = (scores: readonly number[], idx: number[]) => idx.reduce((a, i) => a + (Number.isNaN(scores[i]) ? 0 : scores[i]), 0);
  let exhausted = false;
  while (saved < savingMs) {
    let best: SelectionStep | undefined;
    let bestRatio = Infinity;
    const offer = (c: SelectionStep) => {
      if (!(c.ms > 1e-12)) return;
      const r = c.importance / c.ms;
      if (r < bestRatio) {
        bestRatio = r;
        best = c;
      }
    };
    layers.forEach((l, i) => {
      const s = st[i];
      if (s.layer) return;
      const hLeft = l.heads.length - s.h;
      const nLeft = l.neurons.length - s.n;
      if (!s.attention && hLeft > 1) {
        const j = [s.headOrder[s.h]];
        offer({ kind: 'head', layer: i, heads: j, neurons: [], importance: sum(l.heads, j), ms: m.perHead });
      }
      if (nLeft > 1) {
        const j = s.neuronOrder.slice(s.n, s.n + Math.min(block, nLeft - 1));
        offer({ kind: 'neurons', layer: i, heads: [], neurons: j, importance: sum(l.neurons, j), ms: j.length * m.perNeuron });
      }
      if (protect.has(i) || (!s.attention && withAttention <= keepAttention)) return;
      const hs = s.attention ? [] : s.headOrder.slice(s.h);
      if (allowAttention && !s.attention && hLeft > 0) {
        offer({ kind: 'attention', layer: i, heads: hs, neurons: [], importance: sum(l.heads, hs), ms: hs.length * m.perHead });
      }
      if (allowLayer) {
        const ns = s.neuronOrder.slice(s.n);
        offer({ kind: 'layer', layer: i, heads: hs, neurons: ns, importance: sum(l.heads, hs) + sum(l.neurons, ns), ms: hs.length * m.perHead + ns.length * m.perNeuron + m.perLayer });
      }
    });
    if (!best) {
      exhausted = true;
      break;
    }
    const c: SelectionStep = best;
    const s = st[c.layer];
    s.h += c.heads.length;
    s.n += c.neurons.length;
    if ((c.kind === 'attention' || c.kind === 'layer') && !s.attention) withAttention--;
    if (c.kind === 'attention') s.attention = true;
    if (c.kind === 'layer') s.layer = true;
    steps.push(c);
    saved += c.ms;
    importance += c.importance;
  }
  return {
    heads: st.map((s) => s.headOrder.slice(0, s.h).sort((a, b) => a - b)),
    neurons: st.map((s) => s.neuronOrder.slice(0, s.n).sort((a, b) => a - b)),
    layers: st.flatMap((s, i) => (s.layer ? [i] : [])),
    attentionOnly: st.flatMap((s, i) => (s.attention && !s.layer ? [i] : [])),
    predictedMs: saved,
    importance,
    steps,
    exhausted,
  };
}

/**
 * The latency goal after round r (1-based) of `rounds`: geometric steps from `startMs` to `targetMs`
 * (equal speed-up factors per round); rounds past the planned ones aim at the target itself.
 */
export function roundGoal(startMs: number, targetMs: number, r: number, rounds: number): number {
  if (!(startMs > 0 && targetMs > 0)) throw new RangeError('latencies must be > 0');
  if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(r) || r < 1) throw new RangeError('rounds and r must be integers >= 1');
  if (r >= rounds) return targetMs;
  return startMs * Math.pow(targetMs / startMs, r / rounds);
}

/**
 * Predicted milliseconds (on the cost model's scale) to save so that a model measured at `measuredMs`
 * reaches `goalMs`: the same fraction of the model's predicted latency, since the cost model is fitted
 * on one run and the current measurement may be on a busier or quieter machine. 0 when already there.
 */
export function savingFor(measuredMs: number, predictedMs: number, goalMs: number): number {
  if (!(measuredMs > 0)) throw new RangeError(`measuredMs must be > 0, got ${measuredMs}`);
  return Math.max(0, predictedMs * (1 - goalMs / measuredMs));
}

/** What the loop does after a round's measurements. */
export type RoundVerdict = 'target-met' | 'below-min-f1' | 'continue' | 'out-of-rounds' | 'nothing-left';

/**
 * Decide after a round: stop below `minF1` (checked first: a model under the floor is never the
 * answer), stop when the measured speed-up reaches the wanted one, stop out of rounds or units,
 * else go on. Speed-ups are before ÷ after p50 of one interleaved run.
 */
export function roundVerdict(v: {
  speedup: number;
  wantSpeedup: number;
  f1?: number;
  minF1?: number;
  round: number;
  maxRounds: number;
  exhausted: boolean;
}): RoundVerdict {
  if (v.minF1 !== undefined && v.f1 !== undefined && v.f1 < v.minF1) return 'below-min-f1';
  if (v.speedup >= v.wantSpeedup) return 'target-met';
  if (v.exhausted) return 'nothing-left';
  if (v.round >= v.maxRounds) return 'out-of-rounds';
  return 'continue';
}
