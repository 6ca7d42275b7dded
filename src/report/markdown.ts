/**
 * Render a report as Markdown: header and environment, settings, data, a comparison table when the
 * report holds several models, then per model its entity scores (micro + per type), latency, size and
 * parameters, then command-specific details and warnings. Deterministic: the same report gives the
 * same text (no clock, no locale beyond en-US number formatting).
 */
import type { F1Scores, Prf } from '../ner/types.js';
import type { BenchRow } from '../runtime/bench.js';
import type { BenchDetails, EvalDetails, ModelSummary, Report } from './schema.js';
import { profileMarkdown } from './profile.js';
import { fmt } from './table.js';

/** Renders a command's `details` as Markdown sections (without a trailing blank line). */
export type DetailsRenderer = (report: Report) => string;

const renderers = new Map<string, DetailsRenderer>();

/** Register how a command's details render (commands other than eval/bench register their own). */
export function registerDetailsRenderer(command: string, render: DetailsRenderer): void {
  renderers.set(command, render);
}

/** Escape a table cell. */
export function mdCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** A Markdown table; `align` per column ('l' | 'r'). */
export function mdTable(header: string[], rows: string[][], align?: Array<'l' | 'r'>): string {
  const sep = header.map((_, i) => ((align?.[i] ?? 'l') === 'r' ? '---:' : '---'));
  const line = (r: string[]) => `| ${r.map(mdCell).join(' | ')} |`;
  return [line(header), `|${sep.map((s) => ` ${s} `).join('|')}|`, ...rows.map(line)].join('\n');
}

/** Scores table: one row per type (sorted), then the micro average. */
export function f1Table(scores: F1Scores): string {
  const row = (name: string, p: Prf) => [name, fmt.pct(p.precision), fmt.pct(p.recall), fmt.pct(p.f1), String(p.gold), String(p.pred), String(p.tp)];
  const types = Object.keys(scores.perType).sort();
  return mdTable(
    ['type', 'precision %', 'recall %', 'F1 %', 'gold', 'pred', 'tp'],
    [...types.map((t) => row(t, scores.perType[t])), row('**micro**', scores.micro)],
    ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

/** Latency table, one row per (seq, batch). */
export function latencyTable(rows: BenchRow[]): string {
  return mdTable(
    ['seq', 'batch', 'p50 ms', 'p95 ms', 'p99 ms', 'mean ms', 'sentences/s', 'tokens/s', 'iterations'],
    rows.map((r) => [
      String(r.seqLen),
      String(r.batch),
      fmt.ms(r.p50Ms),
      fmt.ms(r.p95Ms),
      fmt.ms(r.p99Ms),
      fmt.ms(r.meanMs),
      fmt.rate(r.sentencesPerSec),
      fmt.rate(r.tokensPerSec),
      String(r.iterations),
    ]),
    ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

function valueText(v: unknown): string {
  if (v === undefined) return '';
  if (v === null) return 'null';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/** A two-column key/value table of an object's fields (nested values as inline JSON). */
export function keyValueTable(obj: Record<string, unknown>, header: [string, string] = ['setting', 'value']): string {
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined);
  return mdTable(header, keys.map((k) => [k, valueText(obj[k])]));
}

function signed(x: number, digits: number): string {
  return `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`;
}

/** The model row used for comparisons: batch 1 at the smallest sequence length. */
function headlineLatency(m: ModelSummary): BenchRow | undefined {
  const rows = m.latency ?? [];
  const b1 = rows.filter((r) => r.batch === 1);
  return (b1.length ? b1 : rows).slice().sort((a, b) => a.seqLen - b.seqLen || a.batch - b.batch)[0];
}

function comparison(models: ModelSummary[]): string {
  const base = models[0];
  const baseLat = headlineLatency(base);
  const rows = models.map((m) => {
    const lat = headlineLatency(m);
    const f1 = m.f1 ? fmt.pct(m.f1.micro.f1) : '';
    const df1 = m !== base && m.f1 && base.f1 ? signed((m.f1.micro.f1 - base.f1.micro.f1) * 100, 2) : '';
    const size = fmt.bytes(m.bytes);
    const dsize = m !== base && base.bytes > 0 ? `${signed(((m.bytes - base.bytes) / base.bytes) * 100, 1)}%` : '';
    const p50 = lat ? `${fmt.ms(lat.p50Ms)} (seq ${lat.seqLen}, batch ${lat.batch})` : '';
    const speed = m !== base && lat && baseLat && lat.seqLen === baseLat.seqLen && lat.batch === baseLat.batch
      ? `${(baseLat.p50Ms / lat.p50Ms).toFixed(2)}×`
      : '';
    return [m.role, m.path, f1, df1, size, dsize, m.parameters === undefined ? '' : fmt.int(m.parameters), p50, speed];
  });
  return mdTable(
    ['role', 'model', 'F1 %', 'Δ F1', 'size', 'Δ size', 'parameters', 'p50 ms', 'speed-up'],
    rows,
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

function modelSection(m: ModelSummary): string {
  const out: string[] = [`### ${m.role}: \`${m.path}\``, ''];
  const facts: Array<[string, string]> = [
    ['ONNX file', `\`${m.onnxPath}\``],
    ['SHA-256', `\`${m.sha256}\``],
    ['size (ONNX + external data)', `${fmt.bytes(m.bytes)} (${fmt.int(m.bytes)} bytes)`],
  ];
  if (m.folderBytes !== undefined) facts.push(['folder size', fmt.bytes(m.folderBytes)]);
  if (m.parameters !== undefined) facts.push(['parameters', fmt.int(m.parameters)]);
  if (m.labels) facts.push(['labels', `${m.labels.length} (${m.labels.join(', ')})`]);
  if (m.loadMs !== undefined) facts.push(['load time', `${fmt.ms(m.loadMs)} ms`]);
  if (m.convertedFrom) facts.push(['converted', m.convertedFrom]);
  out.push(...facts.map(([k, v]) => `- ${k}: ${v}`));
  if (m.f1) out.push('', '**Entity scores** (exact span and type)', '', f1Table(m.f1));
  if (m.latency?.length) out.push('', '**Latency**', '', latencyTable(m.latency));
  return out.join('\n');
}

registerDetailsRenderer('eval', (report) => {
  const d = report.details as EvalDetails;
  return [
    '## Decoding',
    '',
    keyValueTable({
      decoder: d.decoder === 'crf' ? 'CRF Viterbi (crf.json)' : 'argmax',
      'chunk mode': d.mode,
      'sub-word rule': d.subword === 'first' ? 'first piece labels the word' : 'every piece',
      'window (tokens, without [CLS]/[SEP])': d.windowSize,
      overlap: d.overlap,
      'sentences longer than one window': d.windowedSentences,
      'batch size': d.batchSize,
      'prediction time': `${(d.predictMs / 1000).toFixed(2)} s`,
      'sentences/s': fmt.rate(d.sentencesPerSec),
    }, ['item', 'value']),
  ].join('\n');
});

registerDetailsRenderer('bench', (report) => {
  const d = report.details as BenchDetails;
  return [
    '## Benchmark',
    '',
    keyValueTable({
      inputs: d.inputs === 'data' ? 'token ids of real sentences (--data)' : 'synthetic random token ids',
      'sequence lengths': d.seqLens.join(', '),
      'batch sizes': d.batchSizes.join(', '),
      warmup: d.warmup,
      'timed runs per point (at least)': d.iterations,
      'seconds per point (at least)': d.seconds,
      'model load time': `${fmt.ms(d.loadMs)} ms`,
      'peak RSS': fmt.bytes(d.peakRssBytes),
      'CPU int8 features': d.cpu ? `${d.cpu.flags.join(', ') || 'none'}${d.cpu.vnni ? ' (VNNI)' : ' (no VNNI)'}` : undefined,
      'compared with (interleaved rounds)': d.compared ? `\`${d.compared.model}\` (${d.compared.rounds} rounds, load ${fmt.ms(d.compared.loadMs)} ms)` : undefined,
    }, ['item', 'value']),
    ...(d.profile ?? []).flatMap((p) => ['', `### Profile: seq ${p.seqLen} × batch ${p.batch}`, '', profileMarkdown(p)]),
  ].join('\n');
});

function genericDetails(details: unknown): string {
  if (details === undefined || details === null) return '';
  if (typeof details !== 'object' || Array.isArray(details)) return `## Details\n\n\`\`\`json\n${JSON.stringify(details, null, 2)}\n\`\`\``;
  const obj = details as Record<string, unknown>;
  const scalars: Record<string, unknown> = {};
  const nested: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v !== null && typeof v === 'object') nested[k] = v;
    else scalars[k] = v;
  }
  const out = ['## Details'];
  if (Object.keys(scalars).length) out.push('', keyValueTable(scalars, ['item', 'value']));
  for (const [k, v] of Object.entries(nested)) out.push('', `**${k}**`, '', '```json', JSON.stringify(v, null, 2), '```');
  return out.join('\n');
}

/** The whole report as Markdown (ends with a newline). */
export function renderMarkdown(report: Report): string {
  const env = report.environment;
  const parts: string[] = [
    `# ranerc ${report.command} report`,
    '',
    `- created: ${report.createdAt} · ranerc ${report.ranerc} · schema \`${report.schema}\``,
    `- environment: Node ${env.node}, onnxruntime-node ${env.onnxruntime}, ${env.os}`,
    `- CPU: ${env.cpu} (${env.cores} logical cores), onnxruntime intra-op threads: ${env.threads}`,
  ];
  const extraEnv = Object.entries(env).filter(([k]) => !['node', 'onnxruntime', 'os', 'cpu', 'cores', 'threads'].includes(k));
  for (const [k, v] of extraEnv) parts.push(`- ${k}: ${valueText(v)}`);
  if (Object.keys(report.settings).length) parts.push('', '## Settings', '', keyValueTable(report.settings));
  if (report.data?.files.length) {
    parts.push(
      '',
      '## Data',
      '',
      mdTable(
        ['file', 'format', 'sentences', 'entities', 'skipped', 'unaligned gold', 'sha256'],
        report.data.files.map((f) => [
          `\`${f.path}\``,
          f.format,
          fmt.int(f.sentences),
          fmt.int(f.entities),
          fmt.int(f.skipped),
          f.unalignedGold === undefined ? '' : fmt.int(f.unalignedGold),
          `\`${f.sha256.slice(0, 16)}…\``,
        ]),
        ['l', 'l', 'r', 'r', 'r', 'r', 'l'],
      ),
    );
  }
  if (report.models.length) {
    parts.push('', '## Models');
    if (report.models.length > 1) parts.push('', comparison(report.models));
    for (const m of report.models) parts.push('', modelSection(m));
  }
  const details = (renderers.get(report.command) ?? ((r: Report) => genericDetails(r.details)))(report);
  if (details) parts.push('', details);
  if (report.warnings.length) parts.push('', '## Warnings', '', ...report.warnings.map((w) => `- ${w.replace(/\r?\n/g, ' ')}`));
  return `${parts.join('\n')}\n`;
}
