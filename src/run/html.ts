/**
 * summary.html: one self-contained page (no scripts, no network — a Content-Security-Policy forbids
 * any fetch) with the comparison table, an F1-vs-latency scatter and size bars as hand-written inline
 * SVG. Numbers are formatted with the same `cell` functions as summary.md and the terminal table; each
 * table cell, point and bar also carries the exact summary.json value in a data- attribute.
 */
import { fmt } from '../report/table.js';
import { cell, mb, tableHeader, type RunSummary, type VariantSummary } from './summary.js';

/** Escape text for HTML content and attribute values. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A "nice" tick step (1, 2 or 5 × 10^k) so that about `count` steps cover `range`. */
export function niceStep(range: number, count: number): number {
  if (!(range > 0) || !Number.isFinite(range)) return 1;
  const raw = range / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
}

/** Axis domain widened to multiples of a nice step, and its ticks. */
export function niceDomain(lo: number, hi: number, count = 5): { lo: number; hi: number; ticks: number[] } {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return { lo: 0, hi: 1, ticks: [0, 1] };
  if (hi - lo < 1e-9) {
    const pad = Math.abs(hi) > 0 ? Math.abs(hi) * 0.05 : 1;
    lo -= pad;
    hi += pad;
  }
  const step = niceStep(hi - lo, count);
  const a = Math.floor(lo / step + 1e-9) * step;
  const b = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let t = a; t <= b + step * 1e-6; t += step) ticks.push(Number(t.toFixed(10)));
  return { lo: a, hi: b, ticks };
}

function tickText(t: number): string {
  return Number(t.toFixed(6)).toString();
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];

/** F1 (%) against p50 latency (ms): one point per measured variant. */
export function scatterSvg(variants: readonly VariantSummary[]): string {
  const W = 640;
  const H = 380;
  const m = { l: 64, r: 24, t: 20, b: 52 };
  const pts = variants.filter((v) => v.latency);
  const lats = pts.map((v) => v.latency!.p50Ms);
  const f1s = pts.map((v) => v.f1.f1 * 100);
  const x = niceDomain(0, Math.max(1e-6, ...lats) * 1.08);
  const spread = f1s.length ? Math.max(...f1s) - Math.min(...f1s) : 0;
  const pad = Math.max(0.5, spread * 0.15);
  const y = niceDomain(Math.max(0, Math.min(100, ...f1s) - pad), Math.min(100, Math.max(0, ...f1s) + pad));
  const sx = (v: number) => m.l + ((v - x.lo) / (x.hi - x.lo)) * (W - m.l - m.r);
  const sy = (v: number) => H - m.b - ((v - y.lo) / (y.hi - y.lo)) * (H - m.t - m.b);
  const parts: string[] = [
    `<svg id="scatter" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="F1 against p50 latency">`,
    `<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="#fafafa" stroke="#ccc"/>`,
  ];
  for (const t of x.ticks) {
    const px = sx(t).toFixed(1);
    parts.push(`<line x1="${px}" y1="${m.t}" x2="${px}" y2="${H - m.b}" stroke="#e5e5e5"/>`);
    parts.push(`<text class="tick" x="${px}" y="${H - m.b + 16}" text-anchor="middle">${tickText(t)}</text>`);
  }
  for (const t of y.ticks) {
    const py = sy(t).toFixed(1);
    parts.push(`<line x1="${m.l}" y1="${py}" x2="${W - m.r}" y2="${py}" stroke="#e5e5e5"/>`);
    parts.push(`<text class="tick" x="${m.l - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">${tickText(t)}</text>`);
  }
  parts.push(`<text class="axis" x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">p50 latency (ms) — lower is better</text>`);
  parts.push(`<text class="axis" transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">micro F1 (%) — higher is better</text>`);
  pts.forEach((v, i) => {
    const cx = sx(v.latency!.p50Ms).toFixed(1);
    const cy = sy(v.f1.f1 * 100).toFixed(1);
    const color = PALETTE[variants.indexOf(v) % PALETTE.length];
    parts.push(
      `<g class="point" data-variant="${esc(v.name)}" data-p50-ms="${v.latency!.p50Ms}" data-f1="${v.f1.f1}">` +
        `<title>${esc(v.name)}: F1 ${cell.f1(v)} %, p50 ${cell.p50(v)} ms</title>` +
        `<circle cx="${cx}" cy="${cy}" r="${v.baseline ? 7 : 6}" fill="${color}" stroke="#222" stroke-width="${v.baseline ? 2 : 1}"/>` +
        `<text class="label" x="${(Number(cx) + 10).toFixed(1)}" y="${(Number(cy) - 8 - (i % 2) * 10).toFixed(1)}">${esc(v.name)}</text></g>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Horizontal bars of model size (MB). */
export function sizeBarsSvg(variants: readonly VariantSummary[]): string {
  const W = 640;
  const rowH = 30;
  const m = { l: 150, r: 90, t: 10, b: 10 };
  const H = m.t + m.b + rowH * variants.length;
  const max = Math.max(1e-9, ...variants.map((v) => v.sizeMB));
  const parts: string[] = [
    `<svg id="sizes" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="model size in MB">`,
  ];
  variants.forEach((v, i) => {
    const y = m.t + i * rowH;
    const w = ((W - m.l - m.r) * v.sizeMB) / max;
    const color = PALETTE[i % PALETTE.length];
    parts.push(
      `<g class="bar" data-variant="${esc(v.name)}" data-size-mb="${v.sizeMB}">` +
        `<text class="label" x="${m.l - 8}" y="${y + rowH / 2}" text-anchor="end" dominant-baseline="middle">${esc(v.name)}</text>` +
        `<rect x="${m.l}" y="${y + 5}" width="${Math.max(1, w).toFixed(1)}" height="${rowH - 10}" fill="${color}"/>` +
        `<text class="value" x="${(m.l + Math.max(1, w) + 6).toFixed(1)}" y="${y + rowH / 2}" dominant-baseline="middle">${mb(v.sizeMB)} MB</text></g>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function td(field: string, text: string, value?: number | string | null, cls = 'num'): string {
  const data = value === undefined || value === null ? '' : ` data-value="${esc(String(value))}"`;
  return `<td class="${cls}" data-field="${field}"${data}>${esc(text)}</td>`;
}

/** The whole page. */
export function summaryHtml(s: RunSummary): string {
  const header = tableHeader(s);
  const rows = s.variants.map(
    (v) =>
      `<tr data-variant="${esc(v.name)}"${v.passed ? '' : ' class="failed"'}>` +
      td('name', v.baseline ? `${v.name} (baseline)` : v.name, v.name, 'name') +
      td('f1', cell.f1(v), v.f1.f1) +
      td('delta-f1', cell.deltaF1(v), v.baseline ? null : -v.f1Drop) +
      td('size-mb', cell.sizeMB(v), v.sizeMB) +
      td('p50', cell.p50(v), v.latency?.p50Ms ?? null) +
      td('speedup', cell.speedup(v), v.baseline ? null : v.speedup) +
      td('gates', cell.gates(v), v.passed ? 'pass' : 'fail', 'gates') +
      '</tr>',
  );
  const detailRows = s.variants.map(
    (v) =>
      `<tr data-variant="${esc(v.name)}">` +
      td('name', v.name, v.name, 'name') +
      td('precision', cell.precision(v), v.f1.precision) +
      td('recall', cell.recall(v), v.f1.recall) +
      td('p95', cell.p95(v), v.latency?.p95Ms ?? null) +
      td('parameters', cell.parameters(v), v.parameters ?? null) +
      td('model', v.model, v.model, 'path') +
      td('made-by', v.steps.length ? v.steps.join(' → ') : 'input', null, 'path') +
      '</tr>',
  );
  const gateRows = s.variants.flatMap((v) =>
    v.gates.map(
      (g) =>
        `<tr data-variant="${esc(v.name)}" data-gate="${g.gate}" class="${g.passed ? 'pass' : 'failed'}">` +
        `<td>${esc(v.name)}</td><td>${g.gate}</td>${td('measured', `${g.value.toFixed(2)} ${g.unit}`, g.value)}${td('limit', `${g.limit} ${g.unit}`, g.limit)}<td>${g.source}</td><td>${g.passed ? 'pass' : 'FAIL'}</td></tr>`,
    ),
  );
  const env = s.environment;
  const status = s.gates.passed
    ? `<p id="status" class="ok">All gates passed${s.variants.some((v) => v.gates.length) ? '' : ' (none were set)'}.</p>`
    : `<div id="status" class="bad"><p>Gates failed:</p><ul>${s.gates.failures.map((f) => `<li>${esc(f)}</li>`).join('')}</ul></div>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ranerc run: ${esc(s.recipe.name)}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans", "Noto Sans CJK SC", sans-serif; margin: 24px auto; max-width: 980px; color: #222; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
.meta { color: #555; margin: 2px 0; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.path { font-family: ui-monospace, monospace; font-size: 12px; }
tr.failed td { background: #fde8e8; }
.ok { color: #1a7f37; font-weight: 600; } .bad { color: #b42318; font-weight: 600; }
svg text { font: 12px system-ui, sans-serif; fill: #333; } svg text.axis { font-size: 13px; }
.charts { display: flex; flex-direction: column; gap: 16px; }
</style>
</head>
<body>
<h1>ranerc run: ${esc(s.recipe.name)}</h1>
${s.recipe.description ? `<p>${esc(s.recipe.description)}</p>` : ''}
<p class="meta">created ${esc(s.createdAt)} · ranerc ${esc(s.ranerc)} · recipe <code>${esc(s.recipe.file)}</code></p>
<p class="meta">Node ${esc(env.node)}, onnxruntime-node ${esc(env.onnxruntime)}, ${esc(env.os)}; ${esc(env.cpu)} (${env.cores} logical cores), threads ${esc(String(env.threads))}</p>
<p class="meta">baseline <b>${esc(s.baseline)}</b>; F1 on <code>${esc(s.measure.data?.path ?? '?')}</code>${s.measure.data ? ` (${fmt.int(s.measure.data.sentences)} sentences, ${fmt.int(s.measure.data.entities)} entities)` : ''}; latency: onnxruntime p50 at batch 1; size: ONNX file + external data, MB = 10<sup>6</sup> bytes</p>
${status}
<h2>Variants</h2>
<table id="variants">
<thead><tr>${header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
<div class="charts">
<div><h2>F1 against latency</h2>
${scatterSvg(s.variants)}
</div>
<div><h2>Model size</h2>
${sizeBarsSvg(s.variants)}
</div>
</div>
<h2>Gates</h2>
${gateRows.length ? `<table id="gates"><thead><tr><th>variant</th><th>gate</th><th>measured</th><th>limit</th><th>limit from</th><th>result</th></tr></thead><tbody>\n${gateRows.join('\n')}\n</tbody></table>` : '<p>No gates were set.</p>'}
<h2>Details</h2>
<table id="details">
<thead><tr><th>variant</th><th>precision %</th><th>recall %</th><th>p95 ms</th><th>parameters</th><th>model</th><th>made by</th></tr></thead>
<tbody>
${detailRows.join('\n')}
</tbody>
</table>
<h2>Steps</h2>
<table id="steps">
<thead><tr><th>step</th><th>kind</th><th>result</th><th>seconds</th></tr></thead>
<tbody>
${s.steps.map((st) => `<tr><td>${esc(st.name)}</td><td>${esc(st.kind)}</td><td>${st.cached ? 'cached' : 'ran'}</td><td class="num">${st.seconds.toFixed(1)}</td></tr>`).join('\n')}
</tbody>
</table>
<p class="meta">Total ${s.seconds.toFixed(1)} s. Model folders, reports and SHA256SUMS: <code>artifacts/&lt;variant&gt;/</code>.</p>
</body>
</html>
`;
}
