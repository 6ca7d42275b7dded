/**
 * `kind: prune` — gradient-based attention-head (and optional FFN-neuron) pruning with physical removal
 * from the ONNX graph, with `pruneModelFolder` (src/prune/). Output: `${name.model}`, a complete model
 * folder; the head-importance heat map is kept beside the step's report. Importance scores are cached
 * in the run folder (`cache/prune/`), so changing only the ratio does not score the heads again. Latency is not measured here:
 * the run times every variant the same way (`measure.bench`).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BackendPreference } from '../../autodiff/backend.js';
import { HEATMAP_FILE, pruneModelFolder } from '../../prune/prune.js';
import { setting, type StepContext, type StepDefinition, type StepOutcome, type StepSettings } from './types.js';

async function runPrune(ctx: StepContext, s: StepSettings): Promise<StepOutcome> {
  const result = await pruneModelFolder({
    model: setting.str(s, 'model'),
    data: setting.str(s, 'data'),
    out: join(ctx.dir, 'model'),
    ratio: setting.num(s, 'ratio'),
    ffnRatio: setting.num(s, 'ffn-ratio'),
    iterations: setting.num(s, 'iterations'),
    allowEmptyLayers: setting.bool(s, 'allow-empty-layers'),
    target: setting.bool(s, 'labels') ? 'gold' : 'predicted',
    skipUnknownTypes: setting.bool(s, 'skip-unknown-types'),
    maxSentences: setting.optNum(s, 'max-sentences'),
    eval: setting.optStr(s, 'eval'),
    maxLength: setting.optNum(s, 'max-length'),
    overlap: setting.optNum(s, 'overlap'),
    backend: setting.str(s, 'backend') as BackendPreference,
    threads: setting.optNum(s, 'threads'),
    bench: false,
    verify: setting.bool(s, 'verify'),
    cacheDir: ctx.cacheDir,
    progress: (title, total) => ctx.progress(`${ctx.name}: ${title}`, total),
    log: (line) => ctx.log(line),
  });
  await writeFile(join(ctx.dir, HEATMAP_FILE), result.heatmapSvg);
  const d = result.details;
  const facts: StepOutcome['facts'] = {
    headsBefore: d.heads.before,
    headsAfter: d.heads.after,
    parametersBefore: d.parameters.before,
    parametersAfter: d.parameters.after,
  };
  if (d.equivalence) facts.maxAbsLogitDiff = d.equivalence.maxAbsDiff;
  if (result.f1) {
    facts.f1Before = result.f1.before.micro.f1;
    facts.f1Pruned = result.f1.pruned.micro.f1;
  }
  return { outputs: { model: 'model' }, report: result.report, facts, warnings: [...result.report.warnings] };
}

export const pruneStep: StepDefinition = {
  kind: 'prune',
  summary: 'gradient-based attention-head pruning (Michel et al. 2019) with physical head removal, as `ranerc prune`',
  version: 1,
  inherits: ['threads'],
  outputs: ['model'],
  fields: {
    model: { type: 'model', required: true, doc: 'the model folder to prune' },
    data: { type: 'file', required: true, doc: 'data the head importance is measured on (JSONL or CoNLL)' },
    ratio: { type: 'number', min: 0, max: 1, required: true, doc: 'fraction of all heads to remove (round(ratio × heads))' },
    'ffn-ratio': { type: 'number', min: 0, max: 1, default: 0, doc: 'fraction of FFN intermediate neurons to remove' },
    iterations: { type: 'integer', min: 1, max: 1000, default: 1, doc: 'prune in this many rounds, rescoring between them' },
    'allow-empty-layers': { type: 'boolean', default: false, doc: 'allow removing every head of a layer' },
    labels: { type: 'boolean', default: true, doc: "loss to the gold labels (true) or to the model's own predictions (false)" },
    'skip-unknown-types': { type: 'boolean', default: false, doc: 'skip gold entities of types the model lacks' },
    'max-sentences': { type: 'integer', min: 1, doc: 'score at most this many sentences of data' },
    eval: { type: 'file', doc: 'labelled data for F1 before → after (in the step report)' },
    'max-length': { type: 'integer', min: 3, doc: "tokens per model input incl. [CLS]/[SEP] (default: the folder's maximum)" },
    overlap: { type: 'integer', min: 0, doc: 'window overlap for long texts' },
    backend: { type: 'enum', values: ['auto', 'tensorflow', 'wasm', 'cpu'], default: 'auto', doc: 'tfjs backend for the gradients' },
    verify: { type: 'boolean', default: true, doc: 'check pruned logits against the gated model in onnxruntime' },
    threads: { type: 'integer', min: 1, max: 1024, nullable: true, doc: "onnxruntime intra-op threads (default: the recipe's threads)" },
  },
  run: runPrune,
};
