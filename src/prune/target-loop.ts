/**
 * The iterative loop of pruning to a latency target, with its steps injected (so it is tested with a
 * fake cost model and fake models, and target-run.ts wires in the real ones): per round, score the
 * current model, choose removals for this round's latency goal (target.ts), apply them (surgery and,
 * optionally, recovery fine-tuning), measure the speed-up against the original and dev F1, and decide.
 *
 * Goals are fractions of the original latency, (1/X)^(r/R) after round r of R planned rounds, so they
 * survive the machine's load changing between runs: each round's measurement is a ratio of the
 * original and the current model timed together.
 */
import { predictLatency, type CostModel, type VariantShape } from './costmodel.js';
import { roundVerdict, savingFor, selectForSaving, type LayerScores, type RoundVerdict, type Selection, type SelectOptions } from './target.js';

export interface Measured {
  /** p50 of the original and of the current model, ms, from one interleaved run. */
  beforeMs: number;
  afterMs: number;
}

export interface LoopSteps<S> {
  /** Importance of every unit of the current model's layers (current numbering). */
  score(state: S, round: number): Promise<LayerScores[]>;
  /** The model after removing `sel` from `state` (and recovery, if any). */
  apply(state: S, sel: Selection, round: number): Promise<S>;
  /** Timing of the original and `state` together. */
  measure(state: S, round: number): Promise<Measured>;
  /** Dev F1 of `state` in [0, 1] (undefined without dev data). */
  evaluate(state: S, round: number): Promise<number | undefined>;
  /** Heads, neurons and layers present, for the cost model. */
  shape(state: S): VariantShape;
}

export interface LoopOptions {
  cost: CostModel;
  /** Wanted speed-up (before ÷ after p50), or a latency in ms (converted with each run's original p50). */
  target: { speedup: number } | { latencyMs: number };
  /** Rounds planned to reach the target (the goal steps), and the most rounds run. */
  rounds: number;
  maxRounds: number;
  /** Stop when dev F1 falls below this ([0, 1]); the previous round's model is the result. */
  minF1?: number;
  select?: SelectOptions;
  /** Original p50 for the first goal (e.g. the cost measurement's); later goals use each run's. */
  startMs: number;
  /** Called after every round with its row. */
  onRound?: (row: LoopRound) => void;
}

export interface LoopRound {
  round: number;
  selection?: Selection;
  /** Goal as a fraction of the original latency, and the predicted saving asked for. */
  goalFraction?: number;
  askedMs?: number;
  shape: VariantShape;
  beforeMs?: number;
  afterMs?: number;
  speedup: number;
  f1?: number;
  verdict?: RoundVerdict;
}

export interface LoopResult<S> {
  rows: LoopRound[];
  verdict: RoundVerdict;
  /** The result: the last round that was not below --min-f1 (0 = the original). */
  chosen: number;
  state: S;
  /** Speed-up the loop aimed at in the end. */
  wantSpeedup: number;
}

/** Run the loop from `initial` (the original model; its dev F1 is measured first when there is dev data). */
export async function runTargetLoop<S>(initial: S, steps: LoopSteps<S>, opts: LoopOptions): Promise<LoopResult<S>> {
  if (!(opts.rounds >= 1 && opts.maxRounds >= opts.rounds)) throw new RangeError('need 1 <= rounds <= maxRounds');
  const want = (beforeMs: number) => ('speedup' in opts.target ? opts.target.speedup : beforeMs / opts.target.latencyMs);
  let wantSpeedup = want(opts.startMs);
  if (!(wantSpeedup > 0) || !Number.isFinite(wantSpeedup)) throw new RangeError(`the wanted speed-up must be > 0, got ${wantSpeedup}`);
  const f0 = await steps.evaluate(initial, 0);
  const rows: LoopRound[] = [{ round: 0, shape: steps.shape(initial), speedup: 1, ...(f0 !== undefined ? { f1: f0 } : {}) }];
  opts.onRound?.(rows[0]);
  let state = initial;
  let chosen = 0;
  let fraction = 1; // current after ÷ before
  let verdict: RoundVerdict = 'continue';
  if (f0 !== undefined && opts.minF1 !== undefined && f0 < opts.minF1) {
    verdict = 'below-min-f1';
    rows[0].verdict = verdict;
    return { rows, verdict, chosen, state, wantSpeedup };
  }
  if (wantSpeedup <= 1) {
    verdict = 'target-met';
    rows[0].verdict = verdict;
    return { rows, verdict, chosen, state, wantSpeedup };
  }
  for (let r = 1; r <= opts.maxRounds; r++) {
    const goalFraction = Math.pow(1 / wantSpeedup, Math.min(r, opts.rounds) / opts.rounds);
    const predicted = predictLatency(opts.cost, steps.shape(state));
    const askedMs = savingFor(fraction, predicted, goalFraction);
    const scores = await steps.score(state, r);
    const sel = selectForSaving(scores, opts.cost, askedMs, opts.select);
    if (sel.steps.length === 0) {
      verdict = 'nothing-left';
      rows[rows.length - 1].verdict = verdict;
      break;
    }
    const next = await steps.apply(state, sel, r);
    const m = await steps.measure(next, r);
    wantSpeedup = want(m.beforeMs);
    const f1 = await steps.evaluate(next, r);
    const speedup = m.beforeMs / m.afterMs;
    verdict = roundVerdict({ speedup, wantSpeedup, f1, minF1: opts.minF1, round: r, maxRounds: opts.maxRounds, exhausted: sel.exhausted });
    const row: LoopRound = { round: r, selection: sel, goalFraction, askedMs, shape: steps.shape(next), beforeMs: m.beforeMs, afterMs: m.afterMs, speedup, ...(f1 !== undefined ? { f1 } : {}), verdict };
    rows.push(row);
    opts.onRound?.(row);
    if (verdict === 'below-min-f1') break;
    state = next;
    chosen = r;
    fraction = m.afterMs / m.beforeMs;
    if (verdict !== 'continue') break;
  }
  return { rows, verdict, chosen, state, wantSpeedup };
}
