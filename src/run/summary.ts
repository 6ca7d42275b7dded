/**
 * The run summary: one row per variant (F1, F1 drop, size, latency, speed-up, gates) built from the
 * measured step results, and its renderings — summary.json (the numbers), summary.md and the terminal
 * table. summary.html (src/run/html.ts) formats its numbers with the same `cell` functions, so every
 * rendering shows the same digits as summary.json rounded the same way.
 */
import type { F1Scores, Prf } from '../ner/types.js';
import { mdTable } from '../report/markdown.js';
import type { DataFileSummary, ReportEnvironment } from '../report/schema.js';
import { fmt, renderTable } from '../report/table.js';
import type { BenchRow } from '../runtime/bench.js';
import { effectiveLimits, gateFailureText, judgeGates, sizeMB, type GateResult } from './gates.js';
import type { GateLimits, Recipe } from './recipe.js';

export const SUMMARY_SCHEMA = 'ranerc.run-summary/1' as const;

/** The latency row a variant is compared on: batch 1 at the smallest sequence length. */
export interface LatencyHeadline {
  seqLen: number;
  batch: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  meanMs: number;
  iterations: number;
}

export interface VariantSummary {
  name: string;
  description?: string;
  /** Whether this is the baseline the others are compared with. */
  baseline: boolean;
  /** The artifact model folder, relative to the run folder. */
  model: string;
  /** SHA-256 of the ONNX file. */
  onnxSha256: string;
  /** The recipe steps the model came out of, oldest first (empty for an input model). */
  steps: string[];
  /** ONNX file + external data, bytes. */
  sizeBytes: number;
  /** sizeBytes / 10^6. */
  sizeMB: number;
  /** The whole model folder, bytes. */
  folderBytes?: number;
  parameters?: number;
  /** Micro precision/recall/F1 (fractions) with counts. */
  f1: Prf;
  perType: F1Scores['perType'];
  /** (baseline F1 − this F1) × 100. */
  f1Drop: number;
  /** Batch-1 latency at the first sequence length; null when not measured. */
  latency: LatencyHeadline | null;
  /** Every bench row. */
  latencyRows: BenchRow[];
  /** Baseline p50 / this p50 (same sequence length and batch); null when not comparable. */
  speedup: number | null;
  /** sizeBytes / baseline sizeBytes. */
  sizeRatio: number;
  gates: GateResult[];
  passed: boolean;
}

export interface StepSummary {
  name: string;
  kind: string;
  /** Taken from the cache (not run). */
  cached: boolean;
  /** Seconds the step took (when it ran) or took when it was cached. */
  seconds: number;
  key: string;
  /** For eval@/bench@ steps: the variant they measure. */
  variant?: string;
}

export interface RunSummary {
  schema: typeof SUMMARY_SCHEMA;
  createdAt: string;
  ranerc: string;
  environment: ReportEnvironment;
  recipe: { name: string; file: string; sha256: string; description?: string };
  baseline: string;
  measure: {
    data: DataFileSummary | null;
    eval: Record<string, unknown>;
    bench: Record<string, unknown>;
  };
  variants: VariantSummary[];
  gates: { passed: boolean; failures: string[] };
  steps: StepSummary[];
  /** Wall time of the whole run, seconds. */
  seconds: number;
}

/** What the runner measured for one variant. */
export interface VariantMeasurement {
  name: string;
  model: string;
  onnxSha256: string;
  steps: string[];
  sizeBytes: number;
  folderBytes?: number;
  parameters?: number;
  f1: F1Scores;
  latency: BenchRow[];
}

/** The row gates and tables compare: batch 1 at the smallest sequence length (else the first row). */
export function headline(rows: readonly BenchRow[]): LatencyHeadline | null {
  const b1 = rows.filter((r) => r.batch === 1);
  const pick = (b1.length ? b1 : [...rows]).slice().sort((a, b) => a.seqLen - b.seqLen || a.batch - b.batch)[0];
  if (!pick) return null;
  return { seqLen: pick.seqLen, batch: pick.batch, p50Ms: pick.p50Ms, p95Ms: pick.p95Ms, p99Ms: pick.p99Ms, meanMs: pick.meanMs, iterations: pick.iterations };
}

/** Build the variant rows and judge their gates (pure). */
export function summarizeVariants(recipe: Pick<Recipe, 'variants' | 'baseline' | 'gates'>, measured: readonly VariantMeasurement[], flags: GateLimits): { variants: VariantSummary[]; failures: string[] } {
  const base = measured.find((m) => m.name === recipe.baseline);
  if (!base) throw new Error(`baseline variant ${recipe.baseline} was not measured`);
  const baseLat = headline(base.latency);
  const failures: string[] = [];
  const variants = measured.map((m): VariantSummary => {
    const spec = recipe.variants.find((v) => v.name === m.name);
    const lat = headline(m.latency);
    const comparable = lat && baseLat && lat.seqLen === baseLat.seqLen && lat.batch === baseLat.batch;
    const gates = judgeGates(
      { f1: m.f1.micro.f1, baselineF1: base.f1.micro.f1, p50Ms: lat?.p50Ms, sizeBytes: m.sizeBytes },
      effectiveLimits(spec?.gates ?? {}, flags, recipe.gates),
    );
    for (const g of gates) {
      if (!g.passed) failures.push(gateFailureText(m.name, g, { f1: m.f1.micro.f1, baselineF1: base.f1.micro.f1, baseline: base.name }));
    }
    const row: VariantSummary = {
      name: m.name,
      baseline: m.name === base.name,
      model: m.model,
      onnxSha256: m.onnxSha256,
      steps: m.steps,
      sizeBytes: m.sizeBytes,
      sizeMB: sizeMB(m.sizeBytes),
      f1: m.f1.micro,
      perType: m.f1.perType,
      f1Drop: (base.f1.micro.f1 - m.f1.micro.f1) * 100,
      latency: lat,
      latencyRows: m.latency,
      speedup: comparable && lat.p50Ms > 0 ? baseLat.p50Ms / lat.p50Ms : null,
      sizeRatio: base.sizeBytes > 0 ? m.sizeBytes / base.sizeBytes : 1,
      gates,
      passed: gates.every((g) => g.passed),
    };
    if (spec?.description !== undefined) row.description = spec.description;
    if (m.folderBytes !== undefined) row.folderBytes = m.folderBytes;
    if (m.parameters !== undefined) row.parameters = m.parameters;
    return row;
  });
  return { variants, failures };
}

/** How each rendering formats a variant's numbers (summary.md, the terminal table and summary.html). */
export const cell = {
  f1: (v: VariantSummary): string => fmt.pct(v.f1.f1),
  precision: (v: VariantSummary): string => fmt.pct(v.f1.precision),
  recall: (v: VariantSummary): string => fmt.pct(v.f1.recall),
  /** Δ F1 in points against the baseline (variant − baseline), signed; empty for the baseline. */
  deltaF1: (v: VariantSummary): string => (v.baseline ? '' : signed(-v.f1Drop, 2)),
  sizeMB: (v: VariantSummary): string => mb(v.sizeMB),
  parameters: (v: VariantSummary): string => (v.parameters === undefined ? '' : fmt.int(v.parameters)),
  p50: (v: VariantSummary): string => (v.latency ? fmt.ms(v.latency.p50Ms) : ''),
  p95: (v: VariantSummary): string => (v.latency ? fmt.ms(v.latency.p95Ms) : ''),
  speedup: (v: VariantSummary): string => (v.baseline || v.speedup === null ? '' : `${v.speedup.toFixed(2)}×`),
  gates: (v: VariantSummary): string =>
    v.gates.length === 0 ? '—' : v.passed ? 'pass' : `FAIL ${v.gates.filter((g) => !g.passed).map((g) => g.gate).join(', ')}`,
};

/** MB with 2 decimals below 100, else 1. */
export function mb(x: number): string {
  return x < 100 ? x.toFixed(2) : x.toFixed(1);
}

function signed(x: number, digits: number): string {
  const t = x.toFixed(digits);
  return Number(t) === 0 ? (0).toFixed(digits) : `${x > 0 ? '+' : ''}${t}`;
}

/** The column headers (latency labelled with its sequence length and batch). */
export function tableHeader(s: RunSummary): string[] {
  const lat = s.variants.find((v) => v.latency)?.latency;
  const latLabel = lat ? `p50 ms (seq ${lat.seqLen}, batch ${lat.batch})` : 'p50 ms';
  return ['variant', 'F1 %', 'Δ F1', 'size MB', latLabel, 'speed-up', 'gates'];
}

function tableRows(s: RunSummary): string[][] {
  return s.variants.map((v) => [v.baseline ? `${v.name} (baseline)` : v.name, cell.f1(v), cell.deltaF1(v), cell.sizeMB(v), cell.p50(v), cell.speedup(v), cell.gates(v)]);
}

/** The table printed on stdout. */
export function terminalTable(s: RunSummary): string {
  return renderTable(tableHeader(s), tableRows(s), { align: ['left', 'right', 'right', 'right', 'right', 'right', 'left'] });
}

/** summary.md. */
export function summaryMarkdown(s: RunSummary): string {
  const env = s.environment;
  const out: string[] = [
    `# ranerc run: ${s.recipe.name}`,
    '',
    ...(s.recipe.description ? [s.recipe.description, ''] : []),
    `- created: ${s.createdAt} · ranerc ${s.ranerc} · recipe \`${s.recipe.file}\` (sha256 \`${s.recipe.sha256.slice(0, 16)}…\`)`,
    `- environment: Node ${env.node}, onnxruntime-node ${env.onnxruntime}, ${env.os}; CPU ${env.cpu} (${env.cores} logical cores), threads ${env.threads}`,
    `- baseline: \`${s.baseline}\`; F1 on \`${s.measure.data?.path ?? '?'}\`${s.measure.data ? ` (${fmt.int(s.measure.data.sentences)} sentences, ${fmt.int(s.measure.data.entities)} entities)` : ''}; ` +
      `latency: onnxruntime p50 at batch 1; size: ONNX file + external data in MB (10^6 bytes)`,
    '',
    '## Variants',
    '',
    mdTable(tableHeader(s), tableRows(s), ['l', 'r', 'r', 'r', 'r', 'r', 'l']),
    '',
    '## Gates',
    '',
  ];
  const gateRows = s.variants.flatMap((v) =>
    v.gates.map((g) => [v.name, g.gate, `${g.value.toFixed(2)} ${g.unit}`, `${g.limit} ${g.unit}`, g.source, g.passed ? 'pass' : '**FAIL**']),
  );
  if (gateRows.length === 0) out.push('No gates were set.');
  else out.push(mdTable(['variant', 'gate', 'measured', 'limit', 'limit from', 'result'], gateRows, ['l', 'l', 'r', 'r', 'l', 'l']));
  if (s.gates.failures.length) out.push('', ...s.gates.failures.map((f) => `- ${f}`));
  out.push(
    '',
    '## Details',
    '',
    mdTable(
      ['variant', 'precision %', 'recall %', 'F1 %', 'p95 ms', 'parameters', 'size ratio', 'model', 'made by'],
      s.variants.map((v) => [
        v.name,
        cell.precision(v),
        cell.recall(v),
        cell.f1(v),
        cell.p95(v),
        cell.parameters(v),
        `${v.sizeRatio.toFixed(3)}`,
        `\`${v.model}\``,
        v.steps.length ? v.steps.join(' → ') : 'input',
      ]),
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'l'],
    ),
    '',
    '## Steps',
    '',
    mdTable(
      ['step', 'kind', 'result', 'seconds', 'key'],
      s.steps.map((st) => [st.name, st.kind, st.cached ? 'cached' : 'ran', st.seconds.toFixed(1), `\`${st.key.slice(0, 12)}\``]),
      ['l', 'l', 'l', 'r', 'l'],
    ),
    '',
    `Total: ${s.seconds.toFixed(1)} s. Per-variant model folders, reports and SHA256SUMS are in \`artifacts/<variant>/\`.`,
  );
  return `${out.join('\n')}\n`;
}

/** summary.json text. */
export function summaryJson(s: RunSummary): string {
  return `${JSON.stringify(s, null, 2)}\n`;
}
