/**
 * `kind: quantize` — INT8 quantization of a model folder with `quantizeModelFolder` (src/quantize/):
 * static (calibration set) or dynamic, QDQ or QOperator, per-tensor or per-channel weights, with the
 * optional accuracy guard (`eval` + `max-f1-drop`). Output: `${name.model}`, a complete model folder.
 * Latency is not measured here: the run times every variant the same way (`measure.bench`).
 */
import { join } from 'node:path';
import { DEFAULT_PERCENTILE } from '../../quantize/calibrate.js';
import { autoQuantizeModelFolder } from '../../quantize/auto.js';
import { quantizeModelFolder, type CalibrationMethod, type QuantFormat } from '../../quantize/index.js';
import { setting, type StepContext, type StepDefinition, type StepOutcome, type StepSettings } from './types.js';

async function runQuantize(ctx: StepContext, s: StepSettings): Promise<StepOutcome> {
  const model = setting.str(s, 'model');
  const settings: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) if (v !== undefined) settings[k] = v;
  const auto = setting.optStr(s, 'format') === 'auto';
  const result = await (auto ? autoQuantizeModelFolder : quantizeModelFolder)({
    model,
    out: join(ctx.dir, 'model'),
    calib: setting.optStr(s, 'calib'),
    calibSize: setting.optNum(s, 'calib-size'),
    method: setting.str(s, 'method') as CalibrationMethod,
    percentile: setting.num(s, 'percentile'),
    format: auto ? undefined : (setting.optStr(s, 'format') as QuantFormat | undefined),
    perChannel: setting.bool(s, 'per-channel'),
    exclude: setting.strs(s, 'exclude'),
    dynamic: setting.bool(s, 'dynamic'),
    eval: setting.optStr(s, 'eval'),
    maxF1Drop: setting.optNum(s, 'max-f1-drop'),
    maxTries: setting.optNum(s, 'max-tries'),
    threads: setting.optNum(s, 'threads'),
    // auto times the candidates against the float input (that is how it chooses); otherwise the run's
    // `measure.bench` times every variant the same way.
    bench: auto,
    profile: false,
    seqLens: auto ? setting.ints(s, 'bench-seq') : undefined,
    batchSizes: auto ? setting.ints(s, 'bench-batch') : undefined,
    benchSeconds: auto ? setting.num(s, 'bench-seconds') : undefined,
    progress: (title, total) => ctx.progress(`${ctx.name}: ${title}`, total),
    settings,
  });
  const d = result.report.details;
  const warnings = [...result.report.warnings];
  if (result.budgetMet === false) {
    const msg = `the F1 budget of ${setting.optNum(s, 'max-f1-drop')} points was not met; the best model found was kept`;
    warnings.push(msg);
    ctx.log(msg);
  }
  const facts: StepOutcome['facts'] = {
    mode: d.mode,
    format: d.format,
    perChannel: d.perChannel,
    quantizedNodes: d.nodes.quantized,
    nodesLeftInFloat: d.nodes.leftInFloat,
    bytesBefore: result.before.bytes,
    bytesAfter: result.after.bytes,
  };
  if (d.auto) {
    facts.autoChosen = d.auto.chosen;
    facts.autoReason = d.auto.reason;
    facts.weightsOnly = d.auto.chosen === 'weights-only';
    if (d.auto.chosen === 'float') {
      warnings.push(d.auto.reason);
      ctx.log(d.auto.reason);
    }
  }
  if (result.budgetMet !== undefined) facts.budgetMet = result.budgetMet;
  if (result.before.f1 !== undefined) facts.f1Before = result.before.f1;
  if (result.after.f1 !== undefined) facts.f1After = result.after.f1;
  return { outputs: { model: 'model' }, report: result.report, facts, warnings };
}

export const quantizeStep: StepDefinition = {
  kind: 'quantize',
  summary: 'INT8 quantization (static with a calibration set, or dynamic) that rewrites the ONNX graph, as `ranerc quantize`',
  version: 2,
  inherits: ['threads'],
  outputs: ['model'],
  fields: {
    model: { type: 'model', required: true, doc: 'the float model folder' },
    calib: { type: 'file', doc: 'calibration texts (JSONL/CoNLL, or .txt one sentence a line); required unless dynamic' },
    'calib-size': { type: 'integer', min: 1, doc: 'use at most this many calibration sentences' },
    method: { type: 'enum', values: ['minmax', 'percentile', 'entropy'], default: 'minmax', doc: 'activation range calibrator' },
    percentile: { type: 'number', min: 0, max: 100, default: DEFAULT_PERCENTILE, doc: 'percentile for method: percentile' },
    format: {
      type: 'enum',
      values: ['qdq', 'qoperator', 'auto'],
      doc: 'QuantizeLinear/DequantizeLinear pairs (static default), QLinear*/MatMulInteger operators (dynamic), or auto: build QDQ, QOperator, dynamic and weights-only, time them against the float model (bench-seq × bench-batch) and keep the fastest not slower than it (else the float graph)',
    },
    'bench-seq': { type: 'int-list', min: 3, default: [64], doc: 'format auto: sequence lengths the candidates are timed at' },
    'bench-batch': { type: 'int-list', min: 1, default: [1], doc: 'format auto: batch sizes the candidates are timed at' },
    'bench-seconds': { type: 'number', min: 0.1, default: 2, doc: 'format auto: timed seconds per model and point' },
    'per-channel': { type: 'boolean', default: false, doc: 'one weight scale per output channel' },
    exclude: { type: 'string-list', default: [], doc: 'node names or op types to leave in float' },
    dynamic: { type: 'boolean', default: false, doc: 'dynamic quantization (no calibration)' },
    eval: { type: 'file', doc: 'labelled data for F1 before/after and the accuracy guard' },
    'max-f1-drop': { type: 'number', min: 0, doc: 'accuracy guard: return the worst nodes to float until F1 drops at most this many points (needs eval)' },
    'max-tries': { type: 'integer', min: 1, max: 100, doc: 'accuracy guard tries at most' },
    threads: { type: 'integer', min: 1, max: 1024, nullable: true, doc: "onnxruntime intra-op threads (default: the recipe's threads)" },
  },
  validate(f) {
    if (!f.dynamic && f.calib === undefined) {
      return { field: 'calib', message: 'is required for static quantization', hint: 'add calib: ${inputs.calib}, or dynamic: true' };
    }
    if (f.dynamic && f.format === 'auto') {
      return { field: 'format', message: 'auto builds the dynamic candidate itself', hint: 'drop dynamic: true with format: auto' };
    }
    if (f.dynamic && f.format === 'qdq') {
      return { field: 'format', message: 'dynamic quantization writes DynamicQuantizeLinear + MatMulInteger, not QDQ', hint: 'leave format out with dynamic: true' };
    }
    if (f['max-f1-drop'] !== undefined && f['max-f1-drop'] !== null && f.eval === undefined) {
      return { field: 'max-f1-drop', message: 'needs eval: labelled data to measure the F1 drop on', hint: 'add eval: ${inputs.dev}, or drop max-f1-drop' };
    }
    return undefined;
  },
  run: runQuantize,
};
