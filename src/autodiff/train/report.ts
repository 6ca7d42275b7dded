/**
 * `ranerc finetune` report details, their Markdown section and the training-curve picture.
 */
import { mdTable, registerDetailsRenderer } from '../../report/markdown.js';
import type { Report } from '../../report/schema.js';
import { fmt } from '../../report/table.js';
import { lineChartSvg } from '../../distill/chart.js';

/** One optimizer step. */
export interface FinetunePoint {
  step: number;
  epoch: number;
  /** The batch's per-token loss (before its update). */
  loss: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Real tokens (attention mask 1) in the batch. */
  tokens: number;
  /** Wall time of the step, ms. */
  ms: number;
}

/** One dev evaluation (step 0 = the starting model). */
export interface FinetuneEval {
  step: number;
  epoch: number;
  f1: number;
  precision: number;
  recall: number;
  /** Wall time of writing the checkpoint and scoring it, s. */
  seconds: number;
}

export interface FinetuneDetails {
  /** The tfjs backend that trained. */
  backend: string;
  /** Why it differs from the one asked for. */
  backendReason?: string;
  loss: 'ce' | 'crf';
  /** Whether the CRF scores were trained (and written to crf.json). */
  crfTrained: boolean;
  epochs: number;
  /** Epochs actually run (steps / steps per epoch). */
  epochsRun: number;
  steps: number;
  plannedSteps: number;
  warmupSteps: number;
  stoppedBy: 'epochs' | 'max-minutes';
  /** Model input rows (sentence windows) per epoch. */
  trainRows: number;
  trainSentences: number;
  /** Training sentences longer than one window. */
  windowedSentences: number;
  maxBatchTokens: number;
  /** Wall time of the optimizer steps (forward, backward, update), s. */
  trainSeconds: number;
  /** Wall time of the dev evaluations (checkpoints written and scored by onnxruntime), s. */
  evalSeconds: number;
  /** Real tokens (attention mask 1, [CLS]/[SEP] included) trained on, and padded positions run. */
  tokens: number;
  paddedTokens: number;
  /** tokens / trainSeconds: training throughput on `backend`. */
  tokensPerSec: number;
  paddedTokensPerSec: number;
  parameters: { trainable: number; frozen: number; tensors: number };
  /** Initializers kept fixed (--freeze, and scalar constants). */
  frozen: string[];
  /** The checkpoint written (step 0: the starting weights). */
  best: { step: number; epoch: number; f1: number };
  evals: FinetuneEval[];
  curve: FinetunePoint[];
  /** os.loadavg() when fine-tuning started and ended (the machine may be shared). */
  loadAverage: { start: number[]; end: number[] };
  /** The training-curve picture beside report.md. */
  curveFile: string;
}

/** Mean of each window of `k` consecutive points (the smoothed loss line). */
export function movingAverage(points: ReadonlyArray<readonly [number, number]>, k: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let sum = 0;
  for (let i = 0; i < points.length; i++) {
    sum += points[i][1];
    if (i >= k) sum -= points[i - k][1];
    out.push([points[i][0], sum / Math.min(i + 1, k)]);
  }
  return out;
}

/**
 * The training curve (src/distill/chart.ts): loss per step (raw and smoothed) and dev F1 per
 * evaluation, with the backend, throughput and load average in the titles.
 */
export function curveSvg(d: FinetuneDetails, title: string): string {
  const loss = d.curve.map((p) => [p.step, p.loss] as [number, number]);
  const k = Math.max(5, Math.round(d.curve.length / 25));
  return lineChartSvg([
    {
      title: `${title}: training loss (${fmt.rate(d.tokensPerSec)} tokens/s, load ${d.loadAverage.start[0].toFixed(1)})`,
      xLabel: 'optimizer step',
      yLabel: d.loss === 'crf' ? 'CRF NLL per token' : 'cross-entropy per token',
      series: [
        { name: 'loss', points: loss, color: '#9ecae1' },
        { name: `mean of ${k} steps`, points: movingAverage(loss, k), color: '#1f77b4' },
      ],
    },
    {
      title: `dev entity F1 (onnxruntime, as ranerc eval); best: step ${d.best.step}`,
      xLabel: 'optimizer step',
      yLabel: 'micro F1 %',
      series: [{ name: 'dev F1', points: d.evals.map((e) => [e.step, e.f1 * 100] as [number, number]), color: '#d62728', markers: true }],
    },
  ]);
}

function renderFinetuneDetails(report: Report): string {
  const d = report.details as FinetuneDetails;
  const out = ['## Fine-tuning', ''];
  out.push(
    mdTable(
      ['item', 'value'],
      [
        ['tfjs backend', `${d.backend}${d.backendReason ? ` (${d.backendReason})` : ''}`],
        ['objective', d.loss === 'crf' ? 'CRF negative log-likelihood (CRF scores trained too)' : 'token cross-entropy (first piece of each word)'],
        ['steps', `${fmt.int(d.steps)} of ${fmt.int(d.plannedSteps)} planned (warm-up ${fmt.int(d.warmupSteps)}), ${d.epochsRun.toFixed(2)} of ${d.epochs} epochs, stopped by ${d.stoppedBy}`],
        ['training rows', `${fmt.int(d.trainRows)} (${fmt.int(d.trainSentences)} sentences, ${fmt.int(d.windowedSentences)} longer than one window)`],
        ['micro-batches', `at most ${fmt.int(d.maxBatchTokens)} padded tokens`],
        ['trainable parameters', `${fmt.int(d.parameters.trainable)} in ${d.parameters.tensors} tensors (${fmt.int(d.parameters.frozen)} frozen)`],
        ['training time', `${d.trainSeconds.toFixed(1)} s (evaluations ${d.evalSeconds.toFixed(1)} s)`],
        ['throughput', `${fmt.rate(d.tokensPerSec)} tokens/s (${fmt.rate(d.paddedTokensPerSec)} padded positions/s)`],
        ['best checkpoint', d.best.step === 0 ? `step 0 (the starting model), dev F1 ${fmt.pct(d.best.f1)}` : `step ${d.best.step} (epoch ${d.best.epoch}), dev F1 ${fmt.pct(d.best.f1)}`],
        ['load average', `${d.loadAverage.start.map((l) => l.toFixed(2)).join(' ')} → ${d.loadAverage.end.map((l) => l.toFixed(2)).join(' ')}`],
      ],
    ),
  );
  out.push('', `![training curve](${d.curveFile})`);
  const [before, after] = report.models;
  if (before?.f1 && after?.f1) {
    const types = [...new Set([...Object.keys(before.f1.perType), ...Object.keys(after.f1.perType)])].sort();
    const row = (name: string, a: { f1: number } | undefined, b: { f1: number } | undefined) => [
      name,
      a ? fmt.pct(a.f1) : '',
      b ? fmt.pct(b.f1) : '',
      a && b ? `${((b.f1 - a.f1) * 100).toFixed(2)} pt` : '',
    ];
    out.push(
      '',
      '### Dev F1 before → after',
      '',
      mdTable(
        ['type', 'before %', 'after %', 'change'],
        [...types.map((t) => row(t, before.f1!.perType[t], after.f1!.perType[t])), row('**micro**', before.f1.micro, after.f1.micro)],
        ['l', 'r', 'r', 'r'],
      ),
    );
  }
  out.push(
    '',
    '### Evaluations',
    '',
    mdTable(
      ['step', 'epoch', 'precision %', 'recall %', 'F1 %', 'seconds'],
      d.evals.map((e) => [String(e.step), String(e.epoch), fmt.pct(e.precision), fmt.pct(e.recall), fmt.pct(e.f1), e.seconds.toFixed(1)]),
      ['r', 'r', 'r', 'r', 'r', 'r'],
    ),
  );
  if (d.frozen.length > 0) out.push('', `Frozen initializers (${d.frozen.length}): ${d.frozen.map((n) => `\`${n}\``).join(', ')}`);
  return out.join('\n');
}

registerDetailsRenderer('finetune', renderFinetuneDetails);
