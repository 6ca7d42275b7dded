/**
 * `ranerc inspect --model DIR|FILE.onnx` — what is inside an ONNX token classifier: IR/opsets, inputs and
 * outputs, op histogram, parameters by group, bytes by dtype, size on disk, attention blocks
 * (layers × heads). Tables on stdout, or the report JSON with `--json`; a report folder only with
 * `--report-dir`.
 */
import type { Command } from 'commander';
import { loadModel } from '../onnx/external.js';
import { inspectModel, PARAM_GROUPS, type InspectResult } from '../onnx/inspect.js';
import { newReport } from '../report/environment.js';
import { keyValueTable, mdTable, registerDetailsRenderer, renderMarkdown } from '../report/markdown.js';
import type { Report } from '../report/schema.js';
import { fmt, renderTable } from '../report/table.js';
import { resolveReportDir, reportJson, writeReport } from '../report/write.js';
import { resolveOnnxPath } from '../runtime/session.js';
import { sha256File } from '../util/fs.js';
import { action, type CliContext } from './context.js';

interface InspectFlags {
  model: string;
  reportDir?: string;
  json?: boolean;
}

function shapeText(shape: Array<number | string | null> | null): string {
  if (shape === null) return '?';
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

function pctOf(n: number, total: number): string {
  return total > 0 ? `${((n / total) * 100).toFixed(1)}%` : '';
}

/** The terminal rendering of an inspection. */
export function inspectText(r: InspectResult): string {
  const out: string[] = [];
  const opsets = r.opsets.map((o) => `${o.domain} ${o.version}`).join(', ');
  out.push(
    renderTable(
      ['model', ''],
      [
        ['file', r.path ?? ''],
        ['IR version', String(r.irVersion)],
        ['producer', `${r.producer.name} ${r.producer.version}`.trim()],
        ['opsets', opsets],
        ['nodes', fmt.int(r.nodes)],
        ['parameters', fmt.int(r.parameters.total)],
        ['size on disk', r.size.totalBytes === undefined ? '' : `${fmt.bytes(r.size.totalBytes)} (${fmt.int(r.size.totalBytes)} bytes)`],
        ['attention', `${r.attention.shape} (layers × heads)${r.attention.headSize ? `, head size ${r.attention.headSize}` : ''}${r.attention.hidden ? `, hidden ${r.attention.hidden}` : ''}`],
      ],
      { rule: true },
    ),
  );
  out.push(
    renderTable(
      ['input', 'type', 'shape'],
      r.inputs.map((i) => [i.name, i.elemType, shapeText(i.shape)]),
    ),
  );
  out.push(
    renderTable(
      ['output', 'type', 'shape'],
      r.outputs.map((i) => [i.name, i.elemType, shapeText(i.shape)]),
    ),
  );
  out.push(
    renderTable(
      ['parameter group', 'parameters', 'share'],
      PARAM_GROUPS.filter((g) => r.parameters.groups[g] > 0).map((g) => [g, fmt.int(r.parameters.groups[g]), pctOf(r.parameters.groups[g], r.parameters.total)]),
      { align: ['left', 'right', 'right'] },
    ),
  );
  out.push(
    renderTable(
      ['dtype', 'tensors', 'elements', 'bytes'],
      r.initializers.byDtype.map((d) => [d.dtype, fmt.int(d.tensors), fmt.int(d.elements), fmt.bytes(d.bytes)]),
      { align: ['left', 'right', 'right', 'right'] },
    ),
  );
  if (r.attention.perLayer.length > 0) {
    out.push(
      renderTable(
        ['layer', 'heads', 'head size', 'hidden', 'FFN', 'QKV', 'scale on', 'activation', 'LayerNorm'],
        r.attention.perLayer.map((l) => [
          String(l.layer),
          String(l.heads),
          String(l.headSize),
          String(l.hidden),
          l.intermediate === null ? '' : String(l.intermediate),
          l.qkv,
          l.scale,
          l.activation ?? '',
          l.layerNorm ?? '',
        ]),
        { align: ['right', 'right', 'right', 'right', 'right', 'left', 'left', 'left', 'left'] },
      ),
    );
  }
  out.push(
    renderTable(
      ['op', 'count'],
      r.ops.map((o) => [o.domain ? `${o.domain}.${o.op}` : o.op, String(o.count)]),
      { align: ['left', 'right'] },
    ),
  );
  if (r.attention.problems.length > 0) {
    out.push(`attention matching problems:\n${r.attention.problems.map((p) => `  - ${p}`).join('\n')}\n`);
  }
  return out.join('\n');
}

registerDetailsRenderer('inspect', (report) => {
  const r = report.details as InspectResult;
  const parts = [
    '## Graph',
    '',
    keyValueTable(
      {
        'IR version': r.irVersion,
        producer: `${r.producer.name} ${r.producer.version}`.trim(),
        opsets: r.opsets.map((o) => `${o.domain} ${o.version}`).join(', '),
        nodes: r.nodes,
        parameters: fmt.int(r.parameters.total),
        'initializer bytes': fmt.bytes(r.initializers.bytes),
        'attention (layers × heads)': r.attention.shape,
      },
      ['item', 'value'],
    ),
    '',
    '**Inputs and outputs**',
    '',
    mdTable(
      ['', 'name', 'type', 'shape'],
      [
        ...r.inputs.map((i) => ['input', i.name, i.elemType, shapeText(i.shape)]),
        ...r.outputs.map((i) => ['output', i.name, i.elemType, shapeText(i.shape)]),
      ],
    ),
    '',
    '**Parameters by group**',
    '',
    mdTable(
      ['group', 'parameters', 'share'],
      PARAM_GROUPS.filter((g) => r.parameters.groups[g] > 0).map((g) => [g, fmt.int(r.parameters.groups[g]), pctOf(r.parameters.groups[g], r.parameters.total)]),
      ['l', 'r', 'r'],
    ),
    '',
    '**Operators**',
    '',
    mdTable(['op', 'count'], r.ops.map((o) => [o.domain ? `${o.domain}.${o.op}` : o.op, String(o.count)]), ['l', 'r']),
  ];
  if (r.attention.perLayer.length > 0) {
    parts.push(
      '',
      '**Attention blocks**',
      '',
      mdTable(
        ['layer', 'heads', 'head size', 'hidden', 'FFN', 'QKV', 'scale on', 'activation', 'LayerNorm'],
        r.attention.perLayer.map((l) => [
          String(l.layer),
          String(l.heads),
          String(l.headSize),
          String(l.hidden),
          l.intermediate === null ? '' : String(l.intermediate),
          l.qkv,
          l.scale,
          l.activation ?? '',
          l.layerNorm ?? '',
        ]),
      ),
    );
  }
  if (r.attention.problems.length > 0) parts.push('', '**Attention matching problems**', '', ...r.attention.problems.map((p) => `- ${p}`));
  return parts.join('\n');
});

async function runInspect(ctx: CliContext, flags: InspectFlags): Promise<number> {
  const onnxPath = await resolveOnnxPath(flags.model);
  const loaded = await loadModel(onnxPath);
  const result = inspectModel(loaded.model, { onnxPath, fileBytes: loaded.fileBytes, externalBytes: loaded.externalBytes });
  const report: Report<InspectResult, 'inspect'> = newReport('inspect', { model: flags.model }, result);
  report.models.push({
    role: 'model',
    path: flags.model,
    onnxPath,
    sha256: await sha256File(onnxPath),
    bytes: loaded.fileBytes + loaded.externalBytes,
    parameters: result.parameters.total,
  });
  for (const p of result.attention.problems) report.warnings.push(`attention: ${p}`);
  if (flags.reportDir !== undefined) {
    const dir = await resolveReportDir('inspect', flags.reportDir);
    await writeReport(dir, report, renderMarkdown(report));
    ctx.err(`report: ${dir}\n`);
  }
  ctx.out(flags.json ? reportJson(report) : inspectText(result));
  return 0;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('inspect')
    .description('show what an ONNX token classifier contains: opsets, inputs/outputs, ops, parameters, attention blocks')
    .requiredOption('-m, --model <path>', 'model folder (model.onnx or onnx/model.onnx) or an .onnx file')
    .option('--report-dir <dir>', 'also write report.json and report.md there')
    .option('--json', 'print the report JSON on stdout instead of tables')
    .action(action(ctx, 'inspect', (opts: InspectFlags) => runInspect(ctx, opts)));
}
