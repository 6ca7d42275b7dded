/**
 * The report of `ranerc prune --target-speedup/--target-latency-ms`: its `details` (mode 'target'),
 * the per-round table (terminal and report.md) and the F1-against-latency chart (SVG).
 */
import { lineChartSvg, type Series } from '../distill/chart.js';
import { mdTable } from '../report/markdown.js';
import type { Report } from '../report/schema.js';
import { fmt, renderTable } from '../report/table.js';
import type { CostMeasurement } from './latency.js';
import type { RoundVerdict } from './target.js';

/** File name of the chart written next to report.md. */
export const TARGET_CHART_FILE = 'f1-latency.svg';

export interface TargetRoundRow {
  round: number;
  /** Removed in this round (original numbering): heads as [layer, head], neurons per layer, whole layers, layers left with FFN only. */
  removedHeads: Array<[number, number]>;
  removedNeurons: number;
  removedLayers: number[];
  attentionRemoved: number[];
  /** After the round: heads, FFN neurons, layers present, float parameters. */
  heads: number;
  neurons: number;
  layers: number;
  parameters: number;
  /** Goal (fraction of the original p50) and the cost model's predicted saving of the selection, ms. */
  goalFraction?: number;
  predictedSavingMs?: number;
  /** One interleaved run of the original and this round's model (ms) and their ratio. */
  beforeP50Ms?: number;
  afterP50Ms?: number;
  speedup: number;
  /** Dev micro F1 in [0, 1] (after recovery when fine-tuning); pruned-only F1 before recovery. */
  devF1?: number;
  devF1Pruned?: number;
  /** max |pruned − gated| logits of this round's surgery (before recovery). */
  maxAbsDiff?: number;
  importanceSeconds?: number;
  finetuneSeconds?: number;
  loadAvg?: number[];
  verdict?: RoundVerdict;
}

export interface TargetLayerRow {
  layer: number;
  headsBefore: number;
  keptHeads: number[];
  ffnBefore: number;
  ffnAfter: number;
  /** Original indices of the FFN neurons removed. */
  removedNeurons: number[];
  /** 'layer': gone (residual path only); 'attention': no heads, FFN kept; '' kept. */
  removed: 'layer' | 'attention' | '';
}

export interface PruneTargetDetails {
  mode: 'target';
  target: { speedup?: number; latencyMs?: number; seqLen: number; batch: number };
  /** The speed-up aimed at in the end (for --target-latency-ms: the last run's original p50 ÷ target). */
  wantSpeedup: number;
  minF1?: number;
  importanceLoss: 'ce' | 'crf' | 'kl';
  neuronBlock: number;
  rounds: number;
  maxRounds: number;
  costModel: CostMeasurement;
  roundsRun: TargetRoundRow[];
  verdict: RoundVerdict;
  /** The round written to --out (0: the original; the round before one under --min-f1). */
  chosenRound: number;
  layers: TargetLayerRow[];
  parameters: { before: number; after: number };
  recovery?: { train: string; dev: string; epochs?: number; maxMinutes?: number; lr?: number };
  chart: string;
}

const VERDICT: Record<RoundVerdict, string> = {
  'target-met': 'target met',
  'below-min-f1': 'stopped: dev F1 fell below --min-f1 (the round before is the result)',
  continue: 'continue',
  'out-of-rounds': 'stopped: out of rounds before the target',
  'nothing-left': 'stopped: nothing left to remove',
};

export function verdictText(v: RoundVerdict): string {
  return VERDICT[v];
}

function removedText(r: TargetRoundRow): string {
  const parts: string[] = [];
  if (r.removedLayers.length) parts.push(`layer ${r.removedLayers.join(',')}`);
  if (r.attentionRemoved.length) parts.push(`attention ${r.attentionRemoved.join(',')}`);
  const heads = r.removedHeads.filter(([l]) => !r.removedLayers.includes(l) && !r.attentionRemoved.includes(l)).length;
  if (heads) parts.push(`${heads} head${heads === 1 ? '' : 's'}`);
  if (r.removedNeurons) parts.push(`${r.removedNeurons} neurons`);
  return r.round === 0 ? '(original)' : parts.join(', ') || '(none)';
}

/** Rows of the per-round table: round, removed, heads, FFN, layers, params, p50 before/after, speed-up, dev F1. */
export function roundTableRows(d: PruneTargetDetails): string[][] {
  return d.roundsRun.map((r) => [
    String(r.round),
    removedText(r),
    String(r.heads),
    fmt.int(r.neurons),
    String(r.layers),
    fmt.int(r.parameters),
    r.beforeP50Ms === undefined ? '' : fmt.ms(r.beforeP50Ms),
    r.afterP50Ms === undefined ? fmt.ms(d.costModel.samples[0]?.ms ?? NaN) : fmt.ms(r.afterP50Ms),
    `${r.speedup.toFixed(2)}×`,
    r.devF1 === undefined ? '' : fmt.pct(r.devF1) + (r.devF1Pruned !== undefined ? ` (${fmt.pct(r.devF1Pruned)})` : ''),
    r.round === d.chosenRound ? '◀' : '',
  ]);
}

const HEADER = ['round', 'removed', 'heads', 'FFN', 'layers', 'params', 'orig p50', 'p50 ms', 'speed-up', 'dev F1', 'out'];

/** The terminal table. */
export function targetSummary(d: PruneTargetDetails): string {
  return renderTable(HEADER, roundTableRows(d), { align: ['right', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'left'] });
}

/** Dev F1 (or, without dev data, parameters in millions) against p50 latency, one point per round. */
export function targetChartSvg(d: PruneTargetDetails): string {
  const start = d.costModel.samples[0]?.ms;
  const x = (r: TargetRoundRow) => r.afterP50Ms ?? start ?? 0;
  const withF1 = d.roundsRun.some((r) => r.devF1 !== undefined);
  const series: Series[] = withF1
    ? [
        { name: 'dev F1 (after recovery)', points: d.roundsRun.filter((r) => r.devF1 !== undefined).map((r) => [x(r), r.devF1! * 100]), markers: true },
        ...(d.roundsRun.some((r) => r.devF1Pruned !== undefined)
          ? [{ name: 'dev F1 (pruned, before recovery)', points: d.roundsRun.filter((r) => r.devF1Pruned !== undefined).map((r) => [x(r), r.devF1Pruned! * 100] as [number, number]), markers: true }]
          : []),
      ]
    : [{ name: 'parameters (M)', points: d.roundsRun.map((r) => [x(r), r.parameters / 1e6]), markers: true }];
  return lineChartSvg([
    {
      title: `Pruning to ${d.target.speedup !== undefined ? `${d.target.speedup}× speed-up` : `${d.target.latencyMs} ms`} (batch ${d.target.batch}, sequence ${d.target.seqLen}), one point per round`,
      xLabel: 'p50 latency, ms (this round’s run)',
      yLabel: withF1 ? 'dev F1 %' : 'parameters, millions',
      series,
    },
  ]);
}

/** report.md section. */
export function renderTargetDetails(report: Report): string {
  const d = report.details as PruneTargetDetails;
  const c = d.costModel;
  const out: string[] = ['## Pruning to a latency target', ''];
  out.push(
    `Target: ${d.target.speedup !== undefined ? `${d.target.speedup}× speed-up` : `p50 ≤ ${d.target.latencyMs} ms (${d.wantSpeedup.toFixed(3)}× of the last run's original p50)`} at batch ${d.target.batch}, sequence ${d.target.seqLen}` +
      `${d.minF1 !== undefined ? `, dev F1 at least ${fmt.pct(d.minF1)}` : ''}; ${d.rounds} planned rounds (at most ${d.maxRounds}), importance by ${d.importanceLoss === 'kl' ? 'KL to the original logits' : d.importanceLoss === 'crf' ? 'CRF NLL' : 'token cross-entropy'}, ` +
      `units chosen by importance lost per millisecond saved (heads, blocks of ${d.neuronBlock} FFN neurons, a layer's attention, whole layers)` +
      `${d.recovery ? `, recovery fine-tuning after every round on \`${d.recovery.train}\`` : ', no recovery fine-tuning'}.`,
    '',
    `**Result**: ${verdictText(d.verdict)}; round ${d.chosenRound} written.`,
    '',
    `![dev F1 against latency](${d.chart})`,
    '',
    mdTable(HEADER, roundTableRows(d), ['r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l']),
    '',
    'Speed-up = original p50 ÷ this round\'s p50, both timed in one run (interleaved blocks, same input). Dev F1 in parentheses: the pruned model before recovery.',
    '',
    `**Cost model** (${c.cached ? 'from the cache, measured' : 'measured'} ${c.measuredAt} on ${c.cpus} × ${c.cpu}, threads ${c.threads}, load average ${c.loadAvgStart.map((x) => x.toFixed(2)).join(' ')} → ${c.loadAvgEnd.map((x) => x.toFixed(2)).join(' ')}): ` +
      `p50 ≈ ${c.model.base.toFixed(3)} + ${c.model.perHead.toFixed(4)}·heads + ${c.model.perNeuron.toExponential(3)}·neurons + ${c.model.perLayer.toFixed(4)}·layers ms (rms residual ${c.model.rmse.toFixed(3)} ms), fitted to:`,
    '',
    mdTable(
      ['variant', 'heads', 'FFN neurons', 'layers', 'p50 ms', 'timed runs'],
      c.samples.map((s) => [s.name, String(s.shape.heads), fmt.int(s.shape.neurons), String(s.shape.layers), fmt.ms(s.ms), String(s.iterations)]),
      ['l', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
    mdTable(
      ['layer', 'heads kept', 'kept', 'FFN', 'removed'],
      d.layers.map((l) => [String(l.layer), `${l.keptHeads.length}/${l.headsBefore}`, l.keptHeads.join(' '), `${l.ffnAfter}/${l.ffnBefore}`, l.removed === 'layer' ? 'whole layer' : l.removed === 'attention' ? 'attention (FFN kept)' : '']),
      ['r', 'r', 'l', 'r', 'l'],
    ),
    '',
    `Parameters ${fmt.int(d.parameters.before)} → ${fmt.int(d.parameters.after)} (${(((d.parameters.after - d.parameters.before) / d.parameters.before) * 100).toFixed(1)}%).`,
  );
  return out.join('\n');
}
