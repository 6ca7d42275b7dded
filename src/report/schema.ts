/**
 * The versioned report every ranerc command writes (report.json, rendered as report.md).
 *
 * One report can hold several models (`models[]`, each with a role such as "before"/"after" or
 * "teacher"/"student"), so prune, quantize, distill and run put every model they compare in one place.
 * Command-specific content goes in `details`, typed per command (`Report<'eval', EvalDetails>`).
 * Compatible additions (new optional fields) keep the schema id; anything else bumps it.
 */
import type { F1Scores } from '../ner/types.js';
import type { BenchRow } from '../runtime/bench.js';
import type { CpuFeatures } from '../runtime/cpu.js';
import type { ProfileDetails } from '../runtime/profile.js';

export const REPORT_SCHEMA = 'ranerc.report/1' as const;

/** Where and with what ranerc ran. */
export interface ReportEnvironment {
  /** Node.js version (process.version). */
  node: string;
  /** onnxruntime-node version. */
  onnxruntime: string;
  /** "<platform> <release> <arch>". */
  os: string;
  /** CPU model name of the first core. */
  cpu: string;
  /** Logical cores (os.availableParallelism). */
  cores: number;
  /** Intra-op threads asked for, or "default" when onnxruntime chose. */
  threads: number | 'default';
  /** Other runtime facts a command wants recorded (e.g. the tfjs backend). */
  [key: string]: unknown;
}

/** Well-known model roles; commands may use others. */
export type KnownModelRole = 'model' | 'before' | 'after' | 'teacher' | 'student' | 'baseline';
export type ModelRole = KnownModelRole | (string & {});

/** One model a report is about. */
export interface ModelSummary {
  role: ModelRole;
  /** The model path as the user gave it (folder or .onnx). */
  path: string;
  /** The ONNX file. */
  onnxPath: string;
  /** SHA-256 of the ONNX file. */
  sha256: string;
  /** Bytes of the ONNX file plus its external data. */
  bytes: number;
  /** Bytes of the whole folder (tokenizer, config, ...), when known. */
  folderBytes?: number;
  /** Float parameters (initializer elements), when counted. */
  parameters?: number;
  /** Label names in id order. */
  labels?: string[];
  /** Entity scores on `data`, when evaluated. */
  f1?: F1Scores;
  /** Latency rows, when benchmarked. */
  latency?: BenchRow[];
  /** Milliseconds onnxruntime took to load the model. */
  loadMs?: number;
  /** Set when the model was converted at load ("converted from a CRF-in-graph export: ..."). */
  convertedFrom?: string;
}

/** One data file a report used. */
export interface DataFileSummary {
  path: string;
  sha256: string;
  format: string;
  sentences: number;
  /** Gold entities kept for scoring. */
  entities: number;
  /** Gold entities or lines skipped (e.g. a type the model lacks, with --skip-unknown-types). */
  skipped: number;
  /** Gold entities whose boundaries fall inside a token (they cannot be predicted exactly). */
  unalignedGold?: number;
}

export interface DataSummary {
  files: DataFileSummary[];
}

/** A ranerc report. `D` is the command-specific `details` type. */
export interface Report<D = unknown, C extends string = string> {
  schema: typeof REPORT_SCHEMA;
  command: C;
  /** ISO 8601 UTC time the report was made. */
  createdAt: string;
  /** ranerc version. */
  ranerc: string;
  environment: ReportEnvironment;
  /** The command's effective settings (flags after defaults). */
  settings: Record<string, unknown>;
  models: ModelSummary[];
  data?: DataSummary;
  details: D;
  warnings: string[];
}

/** `ranerc eval` details. */
export interface EvalDetails {
  mode: 'default' | 'strict';
  subword: 'first' | 'all';
  decoder: 'crf' | 'argmax';
  /** Tokens per window without [CLS]/[SEP], and the overlap between consecutive windows. */
  windowSize: number;
  overlap: number;
  /** Sentences longer than one window. */
  windowedSentences: number;
  batchSize: number;
  /** Wall time of prediction (tokenize + run + decode), ms. */
  predictMs: number;
  sentencesPerSec: number;
}

/** `ranerc bench` details. */
export interface BenchDetails {
  inputs: 'data' | 'synthetic';
  seqLens: number[];
  batchSizes: number[];
  warmup: number;
  /** Timed runs per point: at least this many... */
  iterations?: number;
  /** ...and at least this many seconds of timed runs. */
  seconds?: number;
  /** Peak resident set size of the process after benchmarking, bytes. */
  peakRssBytes: number;
  /** Milliseconds onnxruntime took to load the model. */
  loadMs: number;
  /** `--int8`: the second model, timed in interleaved rounds with the first. */
  compared?: { model: string; loadMs: number; rounds: number };
  /** The CPU's int8-relevant features (VNNI, AVX-512, AVX2), where /proc/cpuinfo is readable. */
  cpu?: CpuFeatures;
  /** `--profile`: onnxruntime's per-node profile at each point. */
  profile?: ProfileDetails[];
}

/** Details of commands this module renders specially, by command name. */
export interface DetailsByCommand {
  eval: EvalDetails;
  bench: BenchDetails;
}

/** Check the shape of parsed report JSON; returns a message describing the first problem, or undefined. */
export function reportProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const r = value as Record<string, unknown>;
  if (r.schema !== REPORT_SCHEMA) return `schema is ${JSON.stringify(r.schema)}, expected "${REPORT_SCHEMA}"`;
  if (typeof r.command !== 'string') return 'command is not a string';
  if (typeof r.createdAt !== 'string' || Number.isNaN(Date.parse(r.createdAt))) return 'createdAt is not a date';
  if (typeof r.ranerc !== 'string') return 'ranerc (version) is not a string';
  if (typeof r.environment !== 'object' || r.environment === null) return 'environment is missing';
  if (typeof r.settings !== 'object' || r.settings === null) return 'settings is missing';
  if (!Array.isArray(r.models)) return 'models is not an array';
  for (const [i, m] of r.models.entries()) {
    if (typeof m !== 'object' || m === null) return `models[${i}] is not an object`;
    const mm = m as Record<string, unknown>;
    for (const k of ['role', 'path', 'onnxPath', 'sha256'] as const) {
      if (typeof mm[k] !== 'string') return `models[${i}].${k} is not a string`;
    }
    if (typeof mm.bytes !== 'number') return `models[${i}].bytes is not a number`;
  }
  if (!('details' in r)) return 'details is missing';
  if (!Array.isArray(r.warnings) || r.warnings.some((w) => typeof w !== 'string')) return 'warnings is not a list of strings';
  return undefined;
}
