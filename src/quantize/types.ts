/**
 * Types shared by the quantizer: options, the per-node plan, calibration statistics, and the report
 * `details` of `ranerc quantize` ({@link QuantizeDetails}).
 */
import type { onnx } from '../onnx/codec.js';
import type { ModelFolder } from '../onnx/types.js';
import type { Progress } from '../report/progress.js';
import type { Report } from '../report/schema.js';
import type { BenchRow } from '../runtime/bench.js';
import type { CpuFeatures } from '../runtime/cpu.js';
import type { ProfileDetails } from '../runtime/profile.js';
import type { AutoDetails } from './auto-select.js';
import type { QParams } from './qparams.js';

/** Where the quantized model's integer arithmetic is expressed. */
export type QuantFormat = 'qdq' | 'qoperator';
/** Static: activation ranges calibrated ahead of time; dynamic: computed per batch at run time. */
export type QuantMode = 'static' | 'dynamic';
/** How activation ranges are chosen from calibration data. */
export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';

/** What a quantizable input is. */
export type InputKind = 'activation' | 'weight';

/** One input of a node that the quantizer replaces by its quantized form. */
export interface PlannedInput {
  /** Position among the node's inputs. */
  index: number;
  /** The float tensor. */
  tensor: string;
  kind: InputKind;
  /** Weights: the axis per-channel scales run along (the output axis), when per-channel applies. */
  channelAxis?: number;
}

/** One node the quantizer will rewrite. */
export interface NodePlan {
  /** The node's label: its name, or `<opType>#<index>` when unnamed. */
  label: string;
  opType: string;
  /** Position in the (topologically sorted) float graph. */
  index: number;
  inputs: PlannedInput[];
  /** Tensors whose ranges must be calibrated besides the activation inputs (QOperator outputs). */
  calibrateOutputs: string[];
  /** The node's output whose error the report measures. */
  output: string;
}

/** A candidate node left in float, and why. */
export interface FloatNode {
  node: string;
  opType: string;
  reason: string;
}

/** The plan: which nodes are quantized, which candidates stay float. */
export interface QuantPlan {
  nodes: NodePlan[];
  leftInFloat: FloatNode[];
  /** Op types never quantized by design, with node counts (LayerNorm parts, Softmax, GELU, Add, ...). */
  floatByDesign: Record<string, number>;
  /** Per-channel weights were asked for but the opset cannot express them (DequantizeLinear axis needs opset 13). */
  perChannel: boolean;
  opset: number;
}

/** Calibration statistics of one activation tensor. */
export interface TensorRange {
  tensor: string;
  /** The range the quantization parameters were computed from. */
  min: number;
  max: number;
  /** The observed range (min/max of every finite value seen). */
  observedMin: number;
  observedMax: number;
  /** NaN/±Inf values skipped. */
  nonFinite: number;
}

/** Options of {@link quantizeModel} (the graph-level entry point, no files). */
export interface RewriteOptions {
  format: QuantFormat;
  mode: QuantMode;
  /** Per-channel weight scales (along each weight's output axis). */
  perChannel: boolean;
}

/** Result of rewriting one graph. */
export interface RewriteResult {
  model: onnx.ModelProto;
  /** Quantization parameters chosen per quantized float tensor (activations and weights). */
  params: Map<string, QParams>;
  /** Nodes that were planned but could not be rewritten (left in float). */
  leftInFloat: FloatNode[];
  /** Labels of the nodes actually quantized. */
  quantized: string[];
  /** SQNR (dB) of each quantized weight vs its dequantized int8 values (Infinity: exact). */
  weightSqnrDb: Map<string, number>;
}

/** Settings of a calibration run (recorded in the report and the output folder's provenance). */
export interface CalibrationSettings {
  file: string;
  sha256: string;
  method: CalibrationMethod;
  /** Percentile kept (method percentile). */
  percentile?: number;
  /** Histogram bins (percentile/entropy). */
  numBins?: number;
  /** Quantized levels compared in the KL search (entropy). */
  numQuantizedBins?: number;
  /** Sentences used (after --calib-size). */
  sentences: number;
  /** Model inputs (windows) run. */
  windows: number;
  /** Real tokens in those windows (incl. [CLS]/[SEP]). */
  tokens: number;
  /** Windows per onnxruntime run at most, and padded tokens per run at most. */
  batchSize: number;
  maxBatchTokens: number;
  windowSize: number;
  overlap: number;
  /** Activation tensors calibrated. */
  tensors: number;
  /** Wall time of the calibration pass, ms. */
  ms: number;
  /** How statistics were gathered: in-graph ReduceMin/ReduceMax, or full tensors as extra outputs. */
  collection: 'reduce-in-graph' | 'extra-outputs';
}

/** One quantized input of a node in the SQNR table. */
export interface SqnrInput {
  tensor: string;
  kind: InputKind;
  /** Per-tensor scale, or the smallest and largest of the per-channel scales. */
  scale: number | { min: number; max: number; channels: number };
  /** Per-tensor zero point (per-channel weights have zero points 0). */
  zeroPoint?: number;
  /** Calibrated range (static activations). */
  range?: { min: number; max: number };
  /** SQNR of the tensor vs its quantize-dequantize, dB (null: no error at all, or no data). */
  sqnrDb: number | null;
}

/** One row of the per-node SQNR table. */
export interface NodeSqnr {
  node: string;
  opType: string;
  inputs: SqnrInput[];
  /** The node's own quantization error: its inputs' noise powers combined, dB. */
  localSqnrDb: number | null;
  /** The node's output in the quantized model vs the float model (error accumulated from upstream), dB. */
  output: string;
  outputSqnrDb: number | null;
}

/** One try of the accuracy guard. */
export interface GuardTry {
  try: number;
  /** Nodes returned to float in this try (cumulative), worst local SQNR first. */
  floatNodes: string[];
  f1: number;
  /** F1 drop vs float, in points (percentage points). */
  dropPoints: number;
  bytes: number;
  withinBudget: boolean;
}

/** `details` of the quantize report. */
export interface QuantizeDetails {
  mode: QuantMode;
  format: QuantFormat;
  perChannel: boolean;
  /** Weights-only: int8 weight storage, DequantizeLinear on the weights, float compute (no activation Q/DQ). */
  weightsOnly?: true;
  /** `--format auto`: the candidates timed and which one was written (src/quantize/auto.ts). */
  auto?: AutoDetails;
  /** Per-channel was asked for but the model's opset forced per-tensor weights. */
  perChannelDowngraded?: boolean;
  opset: number;
  calibration?: CalibrationSettings;
  /** Sentences the SQNR pass ran on. */
  sqnrSentences: number;
  /** Where they came from: calibration-file sentences after --calib-size (held out), or the calibration sentences themselves (in-sample). */
  sqnrSource?: 'held-out' | 'calibration';
  nodes: {
    quantized: number;
    /** Candidates (MatMul/Gemm/Gather) left in float. */
    leftInFloat: number;
    byOpType: Record<string, { quantized: number; float: number }>;
  };
  sqnr: NodeSqnr[];
  leftInFloat: FloatNode[];
  floatByDesign: Record<string, number>;
  guard?: {
    maxF1DropPoints: number;
    maxTries: number;
    tries: GuardTry[];
    /** Index into `tries` of the model written. */
    chosen: number;
    met: boolean;
    /** The guard chose on the same labelled data the reported F1 is measured on (in-sample F1). */
    inSample?: boolean;
  };
  ranges?: TensorRange[];
  bench?: { seqLens: number[]; batchSizes: number[]; rounds: number; seconds: number; inputs: 'data' | 'synthetic' };
  /** The CPU's int8-relevant features (VNNI decides how fast u8×s8 GEMMs run); absent where unknown. */
  cpu?: CpuFeatures;
  /** onnxruntime's profile of the float and the quantized model at the first latency point. */
  profile?: ProfileDetails;
  timingsMs: { load: number; calibrate: number; rewrite: number; sqnr: number; eval: number; bench: number; write: number; total: number };
  peakRssBytes: number;
}

/** Options of {@link quantizeModelFolder}. */
export interface QuantizeOptions {
  /** The float model folder (or a resolved folder). */
  model: string | ModelFolder;
  /** Bare .onnx: labels and vocab files. */
  labels?: string;
  vocab?: string;
  out: string;
  /** Calibration texts (JSONL/CoNLL with text; .txt one sentence per line). Required for static mode. */
  calib?: string;
  /** Use at most this many calibration sentences (the first N). */
  calibSize?: number;
  method?: CalibrationMethod;
  percentile?: number;
  format?: QuantFormat;
  perChannel?: boolean;
  /** Node names or op types to leave in float. */
  exclude?: string[];
  dynamic?: boolean;
  /** Weights-only: int8 weights behind DequantizeLinear, float activations and compute (no calibration). */
  weightsOnly?: boolean;
  /** Activation ranges already calibrated (shared between `--format auto` candidates): skips calibration. */
  calibrated?: { ranges: TensorRange[]; calibration: CalibrationSettings };
  /** Labelled data for F1 before/after. */
  eval?: string;
  /** F1 budget in points; needs `eval`. */
  maxF1Drop?: number;
  /** Guard tries at most (default 5). */
  maxTries?: number;
  /** Calibration sentences for the SQNR table (default min(16, calibration size)). */
  sqnrSize?: number;
  threads?: number;
  /** Latency grid; `bench: false` skips latency. */
  bench?: boolean;
  /** Profile both models under onnxruntime after the latency comparison (default: true when benchmarking). */
  profile?: boolean;
  seqLens?: number[];
  batchSizes?: number[];
  /** Seconds of timed runs per model and grid point (split over alternating rounds). */
  benchSeconds?: number;
  /** Windows per onnxruntime run (calibration and eval; default 32 like `ranerc eval`). */
  batchSize?: number;
  maxLength?: number;
  overlap?: number;
  /** Progress bars (default: none). */
  progress?: (title: string, total: number) => Progress;
  /** Settings recorded in the report (the CLI passes its effective flags). */
  settings?: Record<string, unknown>;
}

/** What {@link quantizeModelFolder} returns. */
export interface QuantizeResult {
  report: Report<QuantizeDetails, 'quantize'>;
  outDir: string;
  onnxPath: string;
  /** False when `maxF1Drop` was given and no try met it (the best model was still written). */
  budgetMet: boolean | undefined;
  before: { bytes: number; f1?: number; latency?: BenchRow[] };
  after: { bytes: number; f1?: number; latency?: BenchRow[] };
}
