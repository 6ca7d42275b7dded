/** The distill report: its Markdown details section, the terminal summary, and writing report + curves. */
import { join } from 'node:path';
import type { F1Scores } from '../ner/types.js';
import { keyValueTable, mdTable, registerDetailsRenderer, renderMarkdown } from '../report/markdown.js';
import type { Report } from '../report/schema.js';
import { fmt, renderTable } from '../report/table.js';
import { writeReport } from '../report/write.js';
import { atomicWriteFile } from '../util/fs.js';
import type { DistillDetails, DistillResult } from './index.js';

function perTypeRows(a: F1Scores, b: F1Scores, c?: F1Scores): string[][] {
  const types = [...new Set([...Object.keys(a.perType), ...Object.keys(b.perType)])].sort();
  const cell = (s: F1Scores | undefined, t: string) => (s?.perType[t] ? fmt.pct(s.perType[t].f1) : s ? '0.00' : '');
  const rows = types.map((t) => [t, cell(a, t), cell(b, t), ...(c ? [cell(c, t)] : [])]);
  rows.push(['micro', fmt.pct(a.micro.f1), fmt.pct(b.micro.f1), ...(c ? [fmt.pct(c.micro.f1)] : [])]);
  return rows;
}

function perTypeHeader(d: DistillDetails): string[] {
  return ['type', 'teacher F1 %', 'student F1 %', ...(d.hardOnly ? ['hard-only F1 %'] : [])];
}

function trainingFacts(d: DistillDetails): Record<string, unknown> {
  const t = d.training;
  return {
    'tfjs backend': `${d.backend.name}${d.backend.reason ? ` (${d.backend.reason})` : ''}`,
    student: `${d.student.kind}: embeddings ${d.student.vocabSize}×${d.student.embeddingDim}, ${d.student.layers} layer(s) of ${d.student.hidden}${d.student.kind === 'transformer' ? ` (heads ${d.student.heads}, FFN ${d.student.ffn})` : ' units per direction'}, ${fmt.int(d.student.parameters)} parameters`,
    loss: `${d.loss.alpha} · T² · ${d.loss.kd === 'marginal' ? 'KL(teacher posteriors ‖ student marginals)' : `${d.loss.kd.toUpperCase()}(emissions)`} + ${(1 - d.loss.alpha).toFixed(2)} · ${d.loss.hard === 'crf' ? 'CRF NLL' : 'token cross-entropy'}; T = ${d.loss.temperature} (${d.loss.temperatureSchedule})`,
    'initialisation': `embeddings: ${d.init.embeddings}; CRF: ${d.init.crf}`,
    'transfer texts': `${fmt.int(d.transfer.usedTexts)} of ${fmt.int(d.transfer.availableTexts)}${d.transfer.subsampled ? ' (time budget: seeded sample)' : ''} — used: ${fmt.int(d.transfer.usedByKind.labelled)} labelled, ${fmt.int(d.transfer.usedByKind.unlabelled)} unlabelled, ${fmt.int(d.transfer.usedByKind.augmented)} augmented (made: ${fmt.int(d.transfer.augmented.substitution)} by entity substitution, ${fmt.int(d.transfer.augmented.mixing)} by span-preserving mixing)`,
    'training sequences / tokens': `${fmt.int(d.transfer.sequences)} / ${fmt.int(d.transfer.tokens)} (windows of ≤ ${d.transfer.windowSize} tokens)`,
    'teacher logits': `${(d.transfer.teacherMs / 1000).toFixed(1)} s computed${d.transfer.teacherTokensPerSec ? ` (${fmt.rate(d.transfer.teacherTokensPerSec)} tokens/s)` : ''}, ${fmt.int(d.transfer.fromCache)} texts from the cache, cache ${d.transfer.cacheBytes !== undefined ? fmt.bytes(d.transfer.cacheBytes) : 'off'} (${d.transfer.cacheDtype})`,
    steps: `${fmt.int(t.steps)} of ${fmt.int(t.plannedSteps)} planned (${t.epochs.toFixed(2)} epochs), stopped by ${t.stoppedBy}`,
    'best dev F1': t.bestF1 === undefined ? '' : `${fmt.pct(t.bestF1)} at step ${t.bestStep}`,
    'training throughput': `${fmt.rate(t.tokensPerSec)} tokens/s (${(t.stepMs / 1000).toFixed(1)} s in optimizer steps, ${(t.totalMs / 1000).toFixed(1)} s with evaluations)`,
    time: `${(d.timing.totalMs / 1000).toFixed(1)} s${d.timing.budgetMs ? ` of a ${(d.timing.budgetMs / 60000).toFixed(1)}-minute budget` : ''} (teacher ${(d.timing.teacherMs / 1000).toFixed(1)} s, training ${(d.timing.trainMs / 1000).toFixed(1)} s${d.timing.hardTrainMs !== undefined ? `, hard-only ${(d.timing.hardTrainMs / 1000).toFixed(1)} s` : ''}, evaluation ${(d.timing.evaluateMs / 1000).toFixed(1)} s, latency ${(d.timing.benchMs / 1000).toFixed(1)} s)`,
    reproduce: d.reproduce,
  };
}

registerDetailsRenderer('distill', (report) => {
  const d = report.details as DistillDetails;
  const teacher = report.models.find((m) => m.role === 'teacher');
  const student = report.models.find((m) => m.role === 'student');
  const out = ['## Distillation', ''];
  out.push(
    mdTable(
      ['goal', 'met', 'value'],
      d.comparison.goals.map((g) => [g.goal, g.met ? 'yes' : 'no', g.value]),
      ['l', 'l', 'r'],
    ),
  );
  if (teacher?.f1 && student?.f1) {
    out.push('', `**Entity F1 on \`${d.evaluation.data}\`${d.evaluation.set === 'dev' ? ' (the early-stopping set: optimistic)' : ' (test)'}**`, '', mdTable(perTypeHeader(d), perTypeRows(teacher.f1, student.f1, d.hardOnly?.f1), ['l', 'r', 'r', 'r']));
  }
  if (d.hardOnly) {
    const diff = d.comparison.distillMinusHard ?? 0;
    out.push(
      '',
      diff > 0
        ? `Distillation beats the hard-label-only student by ${diff.toFixed(2)} F1 points.`
        : `Distillation does **not** beat the hard-label-only student here (${diff.toFixed(2)} F1 points).`,
    );
  }
  out.push('', '## Training', '', keyValueTable(trainingFacts(d), ['item', 'value']));
  out.push('', `![loss and dev-F1 curves](${d.curvesFile})`);
  return out.join('\n');
});

/** The terminal summary: goals, teacher vs student, per-type F1. */
export function distillTable(report: Report<DistillDetails>): string {
  const d = report.details;
  const t = report.models.find((m) => m.role === 'teacher')!;
  const s = report.models.find((m) => m.role === 'student')!;
  const lat = (m: typeof t) => m.latency?.[0];
  const head = renderTable(
    ['model', 'F1 %', 'p50 ms', 'p95 ms', 'folder', 'parameters'],
    [t, s].map((m) => [
      m.role,
      m.f1 ? fmt.pct(m.f1.micro.f1) : '',
      lat(m) ? fmt.ms(lat(m)!.p50Ms) : '',
      lat(m) ? fmt.ms(lat(m)!.p95Ms) : '',
      fmt.bytes(m.folderBytes ?? m.bytes),
      m.parameters === undefined ? '' : fmt.int(m.parameters),
    ]),
    { align: ['left', 'right', 'right', 'right', 'right', 'right'] },
  );
  const goals = renderTable(
    ['goal', 'met', 'value'],
    d.comparison.goals.map((g) => [g.goal, g.met ? 'yes' : 'NO', g.value]),
    { align: ['left', 'left', 'right'] },
  );
  const types = t.f1 && s.f1 ? renderTable(perTypeHeader(d), perTypeRows(t.f1, s.f1, d.hardOnly?.f1), { align: ['left', 'right', 'right', 'right'] }) : '';
  return `${head}\n${types}\n${goals}`;
}

/** Write report.json, report.md and curves.svg into `dir` (report files atomically, then the picture). */
export async function writeDistillReport(dir: string, result: DistillResult): Promise<void> {
  await writeReport(dir, result.report, renderMarkdown(result.report));
  await atomicWriteFile(join(dir, result.report.details.curvesFile), result.curvesSvg);
}
