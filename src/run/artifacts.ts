/**
 * `artifacts/<variant>/`: the variant's complete model folder (`model/`, loadable by `ranerc eval
 * --model artifacts/<variant>/model`), its report (report.json + report.md: the model with its F1 and
 * latency, beside the baseline, and the steps that made it), and `SHA256SUMS` over every file (the
 * `sha256sum -c` format). The whole `artifacts/` folder is rebuilt atomically on every run.
 */
import { constants } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, sep } from 'node:path';
import { loadModelFolder } from '../onnx/folder.js';
import { registerDetailsRenderer, keyValueTable, mdTable } from '../report/markdown.js';
import { renderMarkdown } from '../report/markdown.js';
import type { DataFileSummary, ModelSummary, Report, ReportEnvironment } from '../report/schema.js';
import { REPORT_SCHEMA } from '../report/schema.js';
import { reportJson } from '../report/write.js';
import { atomicWriteDir } from '../util/fs.js';
import type { GateResult } from './gates.js';
import { treeLines } from './hash.js';

/** Copy the files of a model folder (model, external data, config, tokenizer, CRF, provenance) into `dest`. */
export async function copyModelFolder(src: string, dest: string): Promise<{ files: string[]; onnx: string }> {
  const folder = await loadModelFolder({ model: src });
  const files = new Map<string, string>(); // dest relative → source absolute
  const rel = (p: string) => relative(folder.dir, p).split(sep).join('/');
  const inside = (p: string) => {
    const r = relative(folder.dir, p);
    return r !== '' && !r.startsWith('..') && !isAbsolute(r);
  };
  const add = (p: string, fallbackName: string) => files.set(inside(p) ? rel(p) : fallbackName, p);
  add(folder.onnxPath, basename(folder.onnxPath));
  for (const f of folder.externalDataFiles ?? []) add(f, basename(f));
  for (const f of folder.extraFiles) files.set(f, join(folder.dir, f));
  if (folder.vocabPath) add(folder.vocabPath, 'vocab.txt');
  for (const [r, from] of files) {
    const to = join(dest, r);
    await mkdir(dirname(to), { recursive: true });
    await copyFile(from, to, constants.COPYFILE_FICLONE);
  }
  return { files: [...files.keys()].sort(), onnx: inside(folder.onnxPath) ? rel(folder.onnxPath) : basename(folder.onnxPath) };
}

/** `details` of a variant's report (command "run"). */
export interface RunVariantDetails {
  recipe: { name: string; file: string; sha256: string };
  variant: string;
  baseline: string;
  /** The recipe steps that made the model, oldest first, with their settings and cache keys. */
  steps: Array<{ name: string; kind: string; key: string; cached: boolean; settings: Record<string, unknown> }>;
  gates: GateResult[];
  /** Paths of the measuring steps' own reports, relative to the run folder. */
  measuredBy: { eval: string; bench: string };
}

registerDetailsRenderer('run', (report) => {
  const d = report.details as RunVariantDetails;
  const out = [
    '## Variant',
    '',
    keyValueTable({ recipe: `${d.recipe.name} (${d.recipe.file})`, variant: d.variant, baseline: d.baseline, 'eval report': d.measuredBy.eval, 'bench report': d.measuredBy.bench }, ['item', 'value']),
    '',
    '## Made by',
    '',
  ];
  if (d.steps.length === 0) out.push('The variant is a recipe input (no step changed it).');
  else out.push(mdTable(['step', 'kind', 'settings', 'cache key'], d.steps.map((s) => [s.name, s.kind, JSON.stringify(s.settings), `\`${s.key.slice(0, 12)}\``])));
  out.push('', '## Gates', '');
  if (d.gates.length === 0) out.push('No gates were set for this variant.');
  else out.push(mdTable(['gate', 'measured', 'limit', 'limit from', 'result'], d.gates.map((g) => [g.gate, `${g.value.toFixed(4)} ${g.unit}`, `${g.limit} ${g.unit}`, g.source, g.passed ? 'pass' : 'FAIL'])));
  return out.join('\n');
});

/** One variant's artifact: where its model is now, and what its report says. */
export interface VariantArtifact {
  name: string;
  /** The model folder the run measured (a step output or an input). */
  source: string;
  /** The variant's model summary (F1 and latency attached); its paths are rewritten relative to the artifact. */
  model: ModelSummary;
  /** The baseline variant's name (its summary is put first in every other variant's report). */
  baseline: string;
  data?: DataFileSummary[];
  details: RunVariantDetails;
  warnings: string[];
}

/** Build `outDir/artifacts/` (replacing the old one): per variant model/, report.json, report.md, SHA256SUMS. */
export async function writeArtifacts(
  outDir: string,
  variants: readonly VariantArtifact[],
  meta: { createdAt: string; ranerc: string; environment: ReportEnvironment; settings: Record<string, unknown> },
): Promise<void> {
  await atomicWriteDir(join(outDir, 'artifacts'), async (tmp) => {
    const onnxOf = new Map<string, string>();
    for (const v of variants) onnxOf.set(v.name, (await copyModelFolder(v.source, join(tmp, v.name, 'model'))).onnx);
    const base = variants.find((v) => v.name === variants[0]?.baseline);
    for (const v of variants) {
      const dir = join(tmp, v.name);
      const models: ModelSummary[] = [];
      if (base && base !== v) {
        models.push({ ...base.model, role: 'baseline', path: `../${base.name}/model`, onnxPath: `../${base.name}/model/${onnxOf.get(base.name)}` });
      }
      models.push({ ...v.model, role: v.name, path: 'model', onnxPath: `model/${onnxOf.get(v.name)}` });
      const report: Report<RunVariantDetails, 'run'> = {
        schema: REPORT_SCHEMA,
        command: 'run',
        createdAt: meta.createdAt,
        ranerc: meta.ranerc,
        environment: meta.environment,
        settings: meta.settings,
        models,
        details: v.details,
        warnings: v.warnings,
      };
      if (v.data?.length) report.data = { files: v.data };
      await writeFile(join(dir, 'report.json'), reportJson(report));
      await writeFile(join(dir, 'report.md'), renderMarkdown(report));
      await writeFile(join(dir, 'SHA256SUMS'), await treeLines(dir, { all: true, exclude: (r) => r === 'SHA256SUMS' }));
    }
  });
}
