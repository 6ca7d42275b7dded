/**
 * How a profile reads (`ranerc bench --profile`, the quantize report): time per op type of the float
 * model and its INT8 version side by side, then the GEMM share, the int8/float GEMM speed ratio k, the
 * bound 1 / (non-GEMM share + GEMM share / k) and the speed-ups measured. Pure: text from report JSON.
 */
import type { ProfileDetails } from '../runtime/profile.js';
import type { OpTimeTable } from '../runtime/profile-table.js';
import { mdTable } from './markdown.js';
import { fmt, renderTable } from './table.js';

interface Grid {
  header: string[];
  rows: string[][];
  align: Array<'l' | 'r'>;
}

const CATEGORY: Record<string, string> = { 'gemm-float': 'GEMM', 'gemm-int8': 'GEMM int8', quantize: 'Q/DQ', other: '' };

function ms(us: number): string {
  return (us / 1000).toFixed(us >= 100_000 ? 1 : us >= 1000 ? 2 : 3);
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}`;
}

/** Op-type rows: float (and INT8) time per run and share; op types under `minShare` of both are summed as "(rest)". */
export function profileGrid(p: ProfileDetails, minShare = 0.005): Grid {
  const f = p.float;
  const q = p.int8;
  const ops = new Map<string, { cat: string; f?: OpTimeTable['rows'][number]; q?: OpTimeTable['rows'][number] }>();
  for (const r of f.rows) ops.set(r.opType, { cat: r.category, f: r });
  for (const r of q?.rows ?? []) ops.set(r.opType, { ...(ops.get(r.opType) ?? { cat: r.category }), q: r });
  const sorted = [...ops].sort((a, b) => (b[1].f?.usPerRun ?? 0) + (b[1].q?.usPerRun ?? 0) - ((a[1].f?.usPerRun ?? 0) + (a[1].q?.usPerRun ?? 0)));
  const rows: string[][] = [];
  const rest = { n: 0, fUs: 0, fShare: 0, qUs: 0, qShare: 0 };
  const cell = (r: OpTimeTable['rows'][number] | undefined): string[] => (r ? [fmt.rate(r.callsPerRun), ms(r.usPerRun), pct(r.share)] : ['', '', '']);
  for (const [op, v] of sorted) {
    if ((v.f?.share ?? 0) < minShare && (v.q?.share ?? 0) < minShare) {
      rest.n++;
      rest.fUs += v.f?.usPerRun ?? 0;
      rest.fShare += v.f?.share ?? 0;
      rest.qUs += v.q?.usPerRun ?? 0;
      rest.qShare += v.q?.share ?? 0;
      continue;
    }
    rows.push([op, CATEGORY[v.cat] ?? '', ...cell(v.f), ...(q ? cell(v.q) : [])]);
  }
  if (rest.n > 0) rows.push([`(${rest.n} more op types)`, '', '', ms(rest.fUs), pct(rest.fShare), ...(q ? ['', ms(rest.qUs), pct(rest.qShare)] : [])]);
  rows.push(['**kernels total**', '', '', ms(f.kernelUs), '100.0', ...(q ? ['', ms(q.kernelUs), '100.0'] : [])]);
  rows.push(['model_run (incl. session)', '', '', ms(f.runUs), '', ...(q ? ['', ms(q.runUs), ''] : [])]);
  const header = ['op type', 'kind', 'float nodes/run', 'float ms/run', 'float %', ...(q ? ['int8 nodes/run', 'int8 ms/run', 'int8 %'] : [])];
  return { header, rows, align: header.map((_, i) => (i < 2 ? 'l' : 'r')) };
}

/** The summary lines under the table: GEMM share, k, the bound and the measured speed-ups. */
export function profileSummary(p: ProfileDetails): string[] {
  const out = [
    `seq ${p.seqLen} × batch ${p.batch}: ${p.runs} profiled runs per model in ${p.rounds} interleaved rounds, ${p.warmup} uncounted runs before each block`,
    `float: GEMM share ${pct(p.float.gemmShare)} % of kernel time (${ms(p.float.gemmUs)} ms/run), the rest ${pct(1 - p.float.gemmShare)} %`,
  ];
  if (p.int8 && p.comparison) {
    const c = p.comparison;
    out.push(
      `int8: GEMM share ${pct(p.int8.gemmShare)} % (${ms(p.int8.gemmUs)} ms/run), QuantizeLinear/DequantizeLinear ${pct(p.int8.quantizeShare)} %`,
      `int8/float GEMM speed ratio k = ${c.gemmSpeedRatio.toFixed(2)} (float GEMM time / int8 GEMM time at the model's own shapes)`,
      `bound 1 / (float share + GEMM share / k) = 1 / (${(1 - p.float.gemmShare).toFixed(3)} + ${p.float.gemmShare.toFixed(3)} / ${c.gemmSpeedRatio.toFixed(2)}) = ${c.bound.toFixed(2)}×`,
      `profiled speed-up (kernel time) ${c.profiledSpeedup.toFixed(2)}×` +
        (p.measuredSpeedup !== undefined ? `, measured (p50, interleaved, no profiler) ${p.measuredSpeedup.toFixed(2)}× = ${((p.measuredSpeedup / c.bound) * 100).toFixed(0)} % of the bound` : ''),
    );
  }
  return out;
}

/** GEMM shapes of both profiles: float and int8 ms/run and their ratio (the 8 costliest). */
export function shapeGrid(p: ProfileDetails, limit = 8): Grid | undefined {
  if (!p.comparison || p.comparison.byShape.length === 0) return undefined;
  const rows = p.comparison.byShape.slice(0, limit).map((r) => [r.shape, r.int8Ops.join(', '), ms(r.floatUs), ms(r.int8Us), `${r.ratio.toFixed(2)}×`]);
  const header = ['GEMM operand shapes', 'int8 kernel', 'float ms/run', 'int8 ms/run', 'k'];
  return { header, rows, align: ['l', 'l', 'r', 'r', 'r'] };
}

/** Plain text for the terminal. */
export function profileText(p: ProfileDetails): string {
  const g = profileGrid(p);
  const parts = [renderTable(g.header, g.rows.map((r) => r.map((c) => c.replace(/\*\*/g, ''))), { align: g.align.map((a) => (a === 'l' ? 'left' : 'right')) })];
  const s = shapeGrid(p);
  if (s) parts.push(renderTable(s.header, s.rows, { align: s.align.map((a) => (a === 'l' ? 'left' : 'right')) }));
  parts.push(profileSummary(p).join('\n') + '\n');
  return parts.join('\n');
}

/** Markdown section body. */
export function profileMarkdown(p: ProfileDetails): string {
  const g = profileGrid(p);
  const parts = [mdTable(g.header, g.rows, g.align)];
  const s = shapeGrid(p);
  if (s) parts.push(mdTable(s.header, s.rows, s.align));
  parts.push(profileSummary(p).map((l) => `- ${l}`).join('\n'));
  const files = [p.float.trace, p.float.optimized, p.int8?.trace, p.int8?.optimized].filter((x): x is string => x !== undefined);
  parts.push(`Files: ${files.map((f) => `\`${f}\``).join(', ')}`);
  return parts.join('\n\n');
}
