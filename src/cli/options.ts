/**
 * Option helpers shared by the model commands: `--model DIR` (a model folder, or a bare .onnx with
 * `--labels`/`--vocab`), `--report-dir`, `--json`, `--threads`; plus writing a command's report.
 */
import type { Command } from 'commander';
import { loadModelFolder } from '../onnx/folder.js';
import type { ModelFolder } from '../onnx/types.js';
import { renderMarkdown } from '../report/markdown.js';
import type { Report } from '../report/schema.js';
import { reportJson, resolveReportDir, writeReport } from '../report/write.js';
import { intOption, type CliContext } from './context.js';

/** Flags every model command accepts. */
export interface ModelFlags {
  model: string;
  labels?: string;
  vocab?: string;
  threads?: number;
}

/** Flags of commands that write a report. */
export interface ReportFlags {
  reportDir?: string;
  json?: boolean;
}

/** Add `--model` (required), `--labels`, `--vocab`. */
export function addModelOptions(cmd: Command): Command {
  return cmd
    .requiredOption('-m, --model <path>', 'model folder (model.onnx + config.json + vocab.txt), or a bare .onnx file')
    .option('--labels <file>', 'labels for a bare .onnx: one per line, or a JSON file with id2label')
    .option('--vocab <file>', 'vocab.txt for a bare .onnx');
}

/** Add `--threads N`. */
export function addThreadsOption(cmd: Command): Command {
  return cmd.option(
    '--threads <n>',
    "onnxruntime intra-op threads (default: onnxruntime's choice, one per physical core)",
    intOption('--threads', 1, 1024),
  );
}

/** Flags that shape the sliding windows. */
export interface WindowFlags {
  maxLength?: number;
  overlap?: number;
}

/** Add `--max-length N` and `--overlap N`. */
export function addWindowOptions(cmd: Command): Command {
  return cmd
    .option(
      '--max-length <n>',
      "tokens per model input incl. [CLS]/[SEP] (default: the folder's model_max_length / max_position_embeddings, else 512)",
      intOption('--max-length', 3, 1 << 20),
    )
    .option(
      '--overlap <n>',
      'tokens shared by consecutive windows of a long text (default: min(64, window/2) for windows up to 256 tokens, else 128)',
      intOption('--overlap', 0, 1 << 20),
    );
}

/** Predictor window options from the flags. */
export function windowOptions(flags: WindowFlags): { windowSize?: number; overlap?: number } {
  return {
    windowSize: flags.maxLength === undefined ? undefined : flags.maxLength - 2,
    overlap: flags.overlap,
  };
}

/** Add `--report-dir DIR` and `--json`. */
export function addReportOptions(cmd: Command): Command {
  return cmd
    .option('--report-dir <dir>', 'where to write report.json and report.md (default: reports/<command>-<UTC time>/)')
    .option('--json', 'print the report JSON on stdout instead of tables');
}

/** Resolve `--model` (+ `--labels`/`--vocab`) to a validated model folder. */
export async function openModelFolder(flags: ModelFlags): Promise<ModelFolder> {
  return loadModelFolder({ model: flags.model, labels: flags.labels, vocab: flags.vocab });
}

/**
 * Write the report (report.json + report.md) and print it: the JSON on stdout with `--json`, else
 * `table` on stdout; the folder it went to is noted on stderr. Returns the folder.
 */
export async function emitReport(
  ctx: CliContext,
  report: Report,
  flags: ReportFlags,
  table: string,
): Promise<string> {
  const dir = await resolveReportDir(report.command, flags.reportDir);
  await writeReport(dir, report, renderMarkdown(report));
  if (flags.json) ctx.out(reportJson(report));
  else ctx.out(table);
  for (const w of report.warnings) ctx.err(`warning: ${w}\n`);
  ctx.err(`report: ${dir}\n`);
  return dir;
}
