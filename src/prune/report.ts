/**
 * The `prune` report: its `details` type and how report.md renders them (heat map, heads kept per
 * layer, parameters, the equivalence check, latency). Importing this module registers the renderer.
 */
import { mdTable, registerDetailsRenderer } from '../report/markdown.js';
import type { Report } from '../report/schema.js';
import { fmt } from '../report/table.js';
import { renderTargetDetails } from './target-report.js';

/** One pruning round's scores, on the original (layer, head) grid; null = already removed. */
export interface PruneRound {
  round: number;
  /** Raw importance Σ|∂L/∂ξ| ÷ tokens, per original layer and head. */
  heads: Array<Array<number | null>>;
  /** Per-layer L2-normalised importance (what the ranking uses). */
  headsNormalized: Array<Array<number | null>>;
  /** Heads removed in this round, as [layer, head] (original numbering). */
  removedHeads: Array<[number, number]>;
  /** FFN neurons removed in this round, per original layer. */
  removedNeurons?: number[];
  /** Tokens in the loss, model input rows, mean token cross-entropy, backend, time. */
  tokens: number;
  rows: number;
  loss: number;
  backend: string;
  ms: number;
  /** Scores came from the on-disk cache. */
  cached: boolean;
}

export interface PruneLayer {
  layer: number;
  headsBefore: number;
  /** Original indices of the heads kept / removed. */
  keptHeads: number[];
  removedHeads: number[];
  /** FFN intermediate size before / after (undefined when the FFN was not matched). */
  ffnBefore?: number;
  ffnAfter?: number;
}

export interface PruneLatency {
  seqLen: number;
  batch: number;
  /** Timed runs per model (interleaved blocks of before/after, same input; the pruned graph timed
   * before any fine-tuning, which changes weights only). */
  iterations: number;
  beforeP50Ms: number;
  afterP50Ms: number;
  /** 1 − after/before p50. */
  reduction: number;
  /** os.loadavg() (1, 5, 15 min) when timing started and ended (the machine may be shared). */
  loadAvgStart: number[];
  loadAvgEnd: number[];
}

export interface PruneDetails {
  ratio: number;
  ffnRatio: number;
  iterations: number;
  target: 'gold' | 'predicted';
  /** Importance loss (absent in reports before it existed: cross-entropy). */
  importanceLoss?: 'ce' | 'crf' | 'kl';
  allowEmptyLayers: boolean;
  heads: { before: number; removed: number; after: number };
  neurons?: { before: number; removed: number; after: number };
  layers: PruneLayer[];
  emptiedLayers: number[];
  rounds: PruneRound[];
  parameters: {
    before: number;
    after: number;
    attentionBefore: number;
    attentionAfter: number;
    ffnBefore: number;
    ffnAfter: number;
  };
  /** max |pruned − gated| logits (onnxruntime), the gated model being the original with the removed
   *  heads' output-projection rows (and removed neurons' output rows) set to zero. */
  equivalence?: { maxAbsDiff: number; shapes: Array<[number, number]> };
  latency?: PruneLatency;
  /** File name of the heat map next to report.md. */
  heatmap: string;
  /** Recovery fine-tuning of the pruned model (with --finetune). */
  finetune?: PruneFinetune;
}

export interface PruneFinetune {
  train: string;
  dev: string;
  epochs: number;
  epochsRun: number;
  steps: number;
  loss: 'ce' | 'crf';
  backend: string;
  trainSeconds: number;
  tokensPerSec: number;
  /** Dev micro F1 of the pruned model and of the written (best) checkpoint. */
  devF1Before: number;
  devF1After: number;
  best: { step: number; epoch: number; f1: number };
  /** File name of the training curve next to report.md. */
  curve: string;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

export function renderPruneDetails(report: Report): string {
  if ((report.details as { mode?: unknown }).mode === 'target') return renderTargetDetails(report);
  const d = report.details as PruneDetails;
  const out: string[] = ['## Pruning', ''];
  out.push(
    `Removed ${d.heads.removed} of ${d.heads.before} attention heads (ratio ${d.ratio}, ${d.iterations} round${d.iterations === 1 ? '' : 's'}, ` +
      (d.importanceLoss === 'kl'
        ? "importance by KL to the original model's logits (round 1: cross-entropy to its predictions))"
        : `importance by ${d.importanceLoss === 'crf' ? 'CRF negative log-likelihood' : 'token cross-entropy'} to ${d.target === 'gold' ? 'gold labels' : "the model's own predictions"})`) +
      (d.neurons ? ` and ${d.neurons.removed} of ${d.neurons.before} FFN neurons (ratio ${d.ffnRatio})` : '') +
      '.',
  );
  if (d.emptiedLayers.length) out.push('', `Layers without attention (output = output-projection bias): ${d.emptiedLayers.join(', ')}.`);
  out.push('', `![head importance](${d.heatmap})`, '');
  out.push(
    mdTable(
      ['layer', 'heads before', 'heads kept', 'kept', 'removed', ...(d.neurons ? ['FFN before', 'FFN after'] : [])],
      d.layers.map((l) => [
        String(l.layer),
        String(l.headsBefore),
        String(l.keptHeads.length),
        l.keptHeads.join(' '),
        l.removedHeads.join(' '),
        ...(d.neurons ? [l.ffnBefore === undefined ? '' : String(l.ffnBefore), l.ffnAfter === undefined ? '' : String(l.ffnAfter)] : []),
      ]),
      ['r', 'r', 'r', 'l', 'l', ...(d.neurons ? (['r', 'r'] as Array<'r'>) : [])],
    ),
  );
  const p = d.parameters;
  out.push(
    '',
    '**Parameters**',
    '',
    mdTable(
      ['group', 'before', 'after', 'change'],
      [
        ['attention (Q/K/V/output projections)', fmt.int(p.attentionBefore), fmt.int(p.attentionAfter), pct(p.attentionAfter / p.attentionBefore - 1)],
        ['FFN (intermediate/output dense)', fmt.int(p.ffnBefore), fmt.int(p.ffnAfter), p.ffnBefore > 0 ? pct(p.ffnAfter / p.ffnBefore - 1) : ''],
        ['all float parameters', fmt.int(p.before), fmt.int(p.after), pct(p.after / p.before - 1)],
      ],
      ['l', 'r', 'r', 'r'],
    ),
  );
  if (d.equivalence) {
    out.push(
      '',
      `**Equivalence check**: max |pruned − gated| logits = ${d.equivalence.maxAbsDiff.toExponential(2)} over batch × sequence ` +
        `${d.equivalence.shapes.map(([b, t]) => `${b}×${t}`).join(', ')} (onnxruntime; gated = original with the removed heads' output rows zeroed).`,
    );
  }
  if (d.latency) {
    const l = d.latency;
    out.push(
      '',
      `**Latency** (batch ${l.batch}, sequence ${l.seqLen}, ${l.iterations} timed runs each in interleaved blocks, same process; the pruned graph, timed before fine-tuning, which changes weights only): ` +
        `p50 ${fmt.ms(l.beforeP50Ms)} → ${fmt.ms(l.afterP50Ms)} ms (${pct(-l.reduction)}); load average ` +
        `${l.loadAvgStart.map((x) => x.toFixed(2)).join(' ')} → ${l.loadAvgEnd.map((x) => x.toFixed(2)).join(' ')}.`,
    );
  }
  out.push('', '**Importance rounds**', '');
  out.push(
    mdTable(
      ['round', 'rows', 'tokens', 'mean loss', 'backend', 'time', 'cached', 'heads removed'],
      d.rounds.map((r) => [
        String(r.round),
        fmt.int(r.rows),
        fmt.int(r.tokens),
        r.loss.toFixed(4),
        r.backend,
        `${(r.ms / 1000).toFixed(1)} s`,
        r.cached ? 'yes' : 'no',
        r.removedHeads.map(([l, h]) => `${l}.${h}`).join(' '),
      ]),
      ['r', 'r', 'r', 'r', 'l', 'r', 'l', 'l'],
    ),
  );
  if (d.finetune) {
    const f = d.finetune;
    out.push(
      '',
      '**Recovery fine-tuning**',
      '',
      `${f.steps} steps (${f.epochsRun.toFixed(2)} of ${f.epochs} epochs) on \`${f.train}\` with ${f.loss === 'crf' ? 'the CRF negative log-likelihood' : 'token cross-entropy'} ` +
        `on tfjs ${f.backend}, ${(f.trainSeconds / 60).toFixed(1)} min (${fmt.rate(f.tokensPerSec)} tokens/s); dev F1 (\`${f.dev}\`) ` +
        `${fmt.pct(f.devF1Before)} → ${fmt.pct(f.devF1After)} (best: step ${f.best.step}).`,
      '',
      `![training curve](${f.curve})`,
    );
  } else {
    out.push('', 'No recovery fine-tuning (run with --finetune TRAIN --dev DEV to recover accuracy).');
  }
  return out.join('\n');
}

registerDetailsRenderer('prune', renderPruneDetails);
