/**
 * The op-type → quantizer registry (as onnxruntime's `quantization/registry.py` maps op types to the
 * classes in `operators/*.py`). Each quantizer decides whether a node can be quantized and which of its
 * inputs are activations or weights (`plan`), and rewrites it through an {@link Emitter} (`rewrite`) in
 * the chosen format. Adding an op family = one file under `ops/` plus one line in {@link QUANTIZERS}.
 */
import type { onnx } from '../onnx/codec.js';
import type { GraphIndex } from '../onnx/graph.js';
import type { TensorData } from '../onnx/tensor.js';
import { gatherQuantizer } from './ops/gather.js';
import { lstmQuantizer } from './ops/lstm.js';
import { gemmQuantizer, matMulQuantizer } from './ops/matmul.js';
import type { QParams } from './qparams.js';
import type { NodePlan, PlannedInput, QuantFormat, QuantMode } from './types.js';

/** What a quantizer may ask about the float graph while planning. */
export interface PlanContext {
  index: GraphIndex;
  opset: number;
  mode: QuantMode;
  format: QuantFormat;
  perChannel: boolean;
  /** ONNX element type of a tensor when it can be told from the graph (undefined: unknown). */
  elemType(tensor: string): number | undefined;
  /** The value of a constant tensor (initializer or Constant node); undefined for computed tensors. */
  constant(tensor: string): TensorData | undefined;
}

/** A planning decision: the inputs to quantize, or why the node stays float. */
export type PlanOutcome =
  | { inputs: PlannedInput[]; calibrateOutputs?: string[]; output: string }
  | { reason: string };

/** Names of a quantized tensor with its scale and zero point. */
export interface QuantizedRef {
  /** The integer tensor. */
  q: string;
  scale: string;
  zeroPoint: string;
}

/** A quantized weight: names and the parameters chosen. */
export interface WeightRef extends QuantizedRef {
  params: QParams;
  dims: number[];
}

/** The rewrite helpers a quantizer uses (implemented in rewrite.ts). Shared tensors are made once. */
export interface Emitter {
  readonly format: QuantFormat;
  readonly mode: QuantMode;
  readonly opset: number;
  /** QDQ: the DequantizeLinear output standing in for activation `tensor` (one Q/DQ pair per tensor). */
  qdqActivation(tensor: string): string;
  /** QOperator static: `tensor` quantized to uint8 by one shared QuantizeLinear. */
  quantizeActivation(tensor: string): QuantizedRef;
  /** Dynamic: `tensor` quantized to uint8 by one shared DynamicQuantizeLinear. */
  dynamicQuantize(tensor: string): QuantizedRef;
  /** A constant quantized to a symmetric int8 initializer (per channel along `axis` when given). */
  weight(tensor: string, axis: number | undefined, opts?: { transpose2d?: boolean }): WeightRef;
  /** QDQ: the DequantizeLinear output of a quantized weight. */
  qdqWeight(tensor: string, axis: number | undefined): string;
  /** QOperator: scale and zero point initializers of a calibrated tensor (e.g. a QLinearMatMul output). */
  calibratedParams(tensor: string): { scale: string; zeroPoint: string; params: QParams };
  /** The static parameters of a calibrated activation (undefined in dynamic mode or when uncalibrated). */
  activationParams(tensor: string): QParams | undefined;
  /** The values of a float32 constant, or undefined. */
  floatConstant(tensor: string): Float32Array | undefined;
  /** The dims of a constant, or undefined. */
  floatConstantDims(tensor: string): number[] | undefined;
  /**
   * An LSTM weight [dirs, 4·hidden, k] as DynamicQuantizeLSTM takes it: symmetric int8 transposed to
   * [dirs, k, 4·hidden], scales and int8 zero points [dirs] (per direction) or [dirs, 4·hidden] (per channel).
   */
  lstmWeight(tensor: string, perChannel: boolean): QuantizedRef;
  /** Import an operator-set domain into the model (once). */
  domain(domain: string, version: number): void;
  /** Add an initializer (once per name). */
  initializer(t: onnx.ITensorProto): string;
  /** Emit a node (placed where the rewritten node was). */
  node(node: onnx.INodeProto): void;
}

/** One op family's quantizer. */
export interface OpQuantizer {
  /** Op types (default ONNX domain) it handles. */
  readonly opTypes: readonly string[];
  plan(node: onnx.INodeProto, ctx: PlanContext): PlanOutcome;
  /** Replace `node` (emit its quantized form; the original is dropped). */
  rewrite(node: onnx.INodeProto, plan: NodePlan, em: Emitter): void;
}

/** Every quantizer ranerc knows. */
export const QUANTIZERS: readonly OpQuantizer[] = [matMulQuantizer, gemmQuantizer, gatherQuantizer, lstmQuantizer];

const BY_OP = new Map<string, OpQuantizer>();
for (const q of QUANTIZERS) for (const op of q.opTypes) BY_OP.set(op, q);

/** The quantizer of a node's op type (default domain only), if any. */
export function quantizerFor(node: onnx.INodeProto): OpQuantizer | undefined {
  const domain = node.domain ?? '';
  if (domain !== '' && domain !== 'ai.onnx') return undefined;
  return BY_OP.get(node.opType ?? '');
}

/** Op types the registry can quantize. */
export function quantizableOpTypes(): string[] {
  return [...BY_OP.keys()];
}
