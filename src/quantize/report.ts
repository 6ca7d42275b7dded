/**
 * How a quantize report reads: the Markdown `details` sections (registered with the report renderer on
 * import) and the plain-text summary the CLI prints.
 */
import { keyValueTable, mdTable, registerDetailsRenderer } from '../report/markdown.js';
import type { ModelSummary, Report } from '../report/schema.js';
import { profileMarkdown } from '../report/profile.js';
import { fmt, renderTable } from '../report/table.js';
import { autoTable } from './auto-select.js';
import type { NodeSqnr, QuantizeDetails } from './types.js';

function dbText(x: number | null): string {
  return x === null ? 'exact' : x.toFixed(1);
}

function scaleText(s: NodeSqnr['inputs'][number]['scale']): string {
  if (typeof s === 'number') return Number.isFinite(s) ? s.toPrecision(4) : '';
  return `${s.min.toPrecision(3)}…${s.max.toPrecision(3)} (${s.channels} ch)`;
}

/** The per-node SQNR table rows (Markdown), worst local SQNR first. */
export function sqnrTableMarkdown(rows: readonly NodeSqnr[], floatNodes: ReadonlySet<string>): string {
  const sorted = [...rows].sort((a, b) => (a.localSqnrDb ?? Infinity) - (b.localSqnrDb ?? Infinity));
  return mdTable(
    ['node', 'op', 'inputs (SQNR dB, scale)', 'local SQNR dB', 'output SQNR dB', 'in output model'],
    sorted.map((r) => [
      `\`${r.node}\``,
      r.opType,
      r.inputs.map((i) => `${i.kind === 'weight' ? 'W' : 'A'} \`${i.tensor}\`: ${dbText(i.sqnrDb)} (${scaleText(i.scale)}${i.zeroPoint !== undefined && i.kind === 'activation' ? `, zp ${i.zeroPoint}` : ''})`).join('<br>'),
      dbText(r.localSqnrDb),
      dbText(r.outputSqnrDb),
      floatNodes.has(r.node) ? 'float' : 'int8',
    ]),
    ['l', 'l', 'l', 'r', 'r', 'l'],
  );
}

registerDetailsRenderer('quantize', (report) => {
  const d = report.details as QuantizeDetails;
  const out: string[] = ['## Quantization', ''];
  if (d.auto) {
    const a = d.auto;
    const t = autoTable(a);
    out.push(
      '### --format auto',
      '',
      `Written: **${a.chosen === 'float' ? 'the float graph, unchanged' : a.chosen}** — ${a.reason}. Every candidate and the float input were timed in one process, ` +
        `interleaved (${a.timing.rounds} rounds, ${a.timing.seconds} s per model and point, threads ${a.timing.threads}, ${a.timing.inputs} inputs). ` +
        `A candidate slower than the input at any point is never chosen. The tables below describe ${a.detailsOf === a.chosen ? 'the written model' : `the ${a.detailsOf} candidate (not written)`}.`,
      '',
      mdTable(t.header, t.rows, t.header.map((_, i) => (i === 0 || i >= t.header.length - 2 ? 'l' : 'r'))),
      '',
    );
  }
  out.push(
    keyValueTable(
      {
        mode: d.mode === 'static' ? 'static (calibrated activation ranges)' : 'dynamic (activation ranges per batch at run time)',
        format: d.format === 'qdq' ? 'QDQ (QuantizeLinear/DequantizeLinear around float ops)' : 'QOperator (integer operators)',
        weights: `int8 symmetric, ${d.perChannel ? 'per channel (output axis)' : 'per tensor'}${d.perChannelDowngraded ? ' — per-channel asked, opset too old' : ''}`,
        activations: d.mode === 'static' ? 'uint8 asymmetric' : 'uint8 (DynamicQuantizeLinear)',
        opset: d.opset,
        'quantized nodes': d.nodes.quantized,
        'candidates left in float': d.nodes.leftInFloat,
        'SQNR sentences': d.sqnrSentences,
        'CPU int8 features': d.cpu ? `${d.cpu.flags.join(', ') || 'none'}${d.cpu.vnni ? ' (VNNI)' : ' (no VNNI)'}` : undefined,
        'peak RSS': fmt.bytes(d.peakRssBytes),
        'total time': `${(d.timingsMs.total / 1000).toFixed(1)} s`,
      },
      ['item', 'value'],
    ),
  );
  if (d.calibration) {
    const c = d.calibration;
    out.push(
      '',
      '### Calibration',
      '',
      keyValueTable(
        {
          file: `\`${c.file}\``,
          sha256: `\`${c.sha256.slice(0, 16)}…\``,
          method: c.method,
          percentile: c.percentile,
          'histogram bins': c.numBins,
          'quantized bins (KL search)': c.numQuantizedBins,
          sentences: c.sentences,
          windows: c.windows,
          tokens: c.tokens,
          'window / overlap': `${c.windowSize} / ${c.overlap}`,
          'batch (windows / padded tokens)': `${c.batchSize} / ${c.maxBatchTokens}`,
          'tensors calibrated': c.tensors,
          statistics: c.collection === 'reduce-in-graph' ? 'ReduceMin/ReduceMax inside the graph' : 'full tensors as extra outputs, histograms per batch',
          time: `${(c.ms / 1000).toFixed(1)} s`,
        },
        ['item', 'value'],
      ),
    );
  }
  const byOp = Object.entries(d.nodes.byOpType).sort(([a], [b]) => a.localeCompare(b));
  if (byOp.length) {
    out.push('', '### Nodes by op type', '', mdTable(['op', 'int8', 'float'], byOp.map(([op, c]) => [op, String(c.quantized), String(c.float)]), ['l', 'r', 'r']));
  }
  if (d.guard) {
    const g = d.guard;
    out.push(
      '',
      '### Accuracy guard',
      '',
      `Budget: F1 drop ≤ ${g.maxF1DropPoints} points; ${g.met ? '**met**' : '**NOT met** — the best model found was written'} (try ${g.tries[g.chosen].try} chosen).` +
        (g.inSample ? ' The guard chose on the --eval data, so the F1 after is in-sample (score a separate test file with `ranerc eval` for an unbiased figure).' : ''),
      '',
      mdTable(
        ['try', 'nodes in float', 'F1 %', 'drop (points)', 'size', 'within budget'],
        g.tries.map((t) => [String(t.try), t.floatNodes.length ? t.floatNodes.map((n) => `\`${n}\``).join(', ') : '—', fmt.pct(t.f1), t.dropPoints.toFixed(2), fmt.bytes(t.bytes), t.withinBudget ? 'yes' : 'no']),
        ['r', 'l', 'r', 'r', 'r', 'l'],
      ),
    );
  }
  if (d.profile) {
    out.push('', `### Where the time goes (onnxruntime profile, seq ${d.profile.seqLen} × batch ${d.profile.batch})`, '', profileMarkdown(d.profile));
  }
  const floatSet = new Set(d.leftInFloat.map((f) => f.node));
  if (d.sqnr.length) {
    out.push(
      '',
      '### Per-node SQNR',
      '',
      `Local SQNR: the node's own quantization noise (its quantized inputs vs float, noise powers added). Output SQNR: the node's output in the int8 model vs the float model (error accumulated from upstream). Measured on ${d.sqnrSentences} ${d.sqnrSource === 'held-out' ? 'calibration-file sentences after --calib-size (not used for calibration)' : 'calibration sentences (in-sample: pass a --calib-size below the file size to hold sentences out)'}.`,
      '',
      sqnrTableMarkdown(d.sqnr, floatSet),
    );
  }
  out.push('', '### Left in float', '');
  if (d.leftInFloat.length) {
    out.push(mdTable(['node', 'op', 'why'], d.leftInFloat.map((f) => [`\`${f.node}\``, f.opType, f.reason]), ['l', 'l', 'l']));
  } else out.push('Every MatMul, Gemm and embedding Gather was quantized.');
  const design = Object.entries(d.floatByDesign).sort(([a], [b]) => a.localeCompare(b));
  if (design.length) {
    out.push(
      '',
      'Kept in float by design (normalization, Softmax, activations, elementwise and shape ops are not quantized):',
      '',
      mdTable(['op', 'nodes'], design.map(([op, n]) => [op, String(n)]), ['l', 'r']),
    );
  }
  return out.join('\n');
});

function latencyP50(m: ModelSummary): number | undefined {
  return m.latency?.[0]?.p50Ms;
}

/** The terminal summary: before/after size, F1, latency and the guard outcome. */
export function quantizeSummary(report: Report<QuantizeDetails>): string {
  const [before, after] = report.models;
  const d = report.details;
  const rows = [before, after].map((m) => [
    m.role,
    fmt.bytes(m.bytes),
    m.parameters === undefined ? '' : fmt.int(m.parameters),
    m.f1 ? fmt.pct(m.f1.micro.f1) : '',
    latencyP50(m) === undefined ? '' : fmt.ms(latencyP50(m)!),
  ]);
  const lat = before.latency?.[0];
  const auto = d.auto ? autoTable(d.auto) : undefined;
  const autoText = auto
    ? `--format auto: wrote ${d.auto!.chosen === 'float' ? 'the float graph unchanged' : d.auto!.chosen} (${d.auto!.reason})\n` +
      renderTable(auto.header, auto.rows, { align: auto.header.map((_, i) => (i === 0 || i >= auto.header.length - 2 ? 'left' : 'right')) }) + '\n\n'
    : '';
  const head =
    autoText +
    (d.auto && d.auto.detailsOf !== d.auto.chosen ? `below: the ${d.auto.detailsOf} candidate, NOT written ("after" is the float graph written)\n` : '') +
    `${d.weightsOnly ? 'weights-only' : d.mode} ${d.format.toUpperCase()} int8${d.perChannel ? ', per-channel weights' : ''}: ${d.nodes.quantized} nodes quantized, ` +
    `${d.nodes.leftInFloat} candidates left in float\n\n`;
  let table = renderTable(['model', 'size', 'params', 'F1 %', lat ? `p50 ms (seq ${lat.seqLen}, batch ${lat.batch})` : 'p50 ms'], rows, {
    align: ['left', 'right', 'right', 'right', 'right'],
  });
  const lines: string[] = [];
  lines.push(`size: ${(after.bytes / before.bytes).toFixed(3)}× the float file`);
  if (before.f1 && after.f1) lines.push(`F1 drop: ${((before.f1.micro.f1 - after.f1.micro.f1) * 100).toFixed(2)} points`);
  const pb = latencyP50(before);
  const pa = latencyP50(after);
  if (pb !== undefined && pa !== undefined) lines.push(`speed-up (p50): ${(pb / pa).toFixed(2)}×`);
  if (d.guard) {
    lines.push(
      d.guard.met
        ? `F1 budget ${d.guard.maxF1DropPoints} points: met (try ${d.guard.tries[d.guard.chosen].try}, ${d.guard.tries[d.guard.chosen].floatNodes.length} nodes returned to float)`
        : `F1 budget ${d.guard.maxF1DropPoints} points: NOT MET after ${d.guard.tries.length - 1} tries; best model written (drop ${d.guard.tries[d.guard.chosen].dropPoints.toFixed(2)} points)`,
    );
  }
  if (d.profile?.comparison) {
    const c = d.profile.comparison;
    lines.push(
      `profile: GEMM share ${(d.profile.float.gemmShare * 100).toFixed(1)} % of float kernel time, int8/float GEMM ratio k ${c.gemmSpeedRatio.toFixed(2)}, ` +
        `bound ${c.bound.toFixed(2)}×${d.profile.measuredSpeedup !== undefined ? ` (measured ${d.profile.measuredSpeedup.toFixed(2)}× = ${((d.profile.measuredSpeedup / c.bound) * 100).toFixed(0)} % of it)` : ''}`,
    );
  }
  const worst = [...d.sqnr].sort((a, b) => (a.localSqnrDb ?? Infinity) - (b.localSqnrDb ?? Infinity)).slice(0, 5);
  if (worst.length) {
    table += `\n${lines.join('\n')}\n\nlowest local SQNR:\n`;
    table += renderTable(
      ['node', 'op', 'local dB', 'output dB'],
      worst.map((r) => [r.node, r.opType, dbText(r.localSqnrDb), dbText(r.outputSqnrDb)]),
      { align: ['left', 'left', 'right', 'right'] },
    );
  } else table += `\n${lines.join('\n')}\n`;
  return head + table;
}
