/**
 * MatMul and Gemm (onnxruntime `operators/matmul.py`, `operators/gemm.py`).
 *
 * - QDQ: each float input is replaced by its DequantizeLinear (activations: one shared Q/DQ pair per
 *   tensor; weights: int8 initializer → DequantizeLinear); the MatMul/Gemm itself stays, and onnxruntime
 *   fuses DQ → MatMul into MatMulIntegerToFloat / QLinearMatMul. A Gemm's constant 1-D bias becomes int32
 *   with scale `a_scale · b_scale` (zero point 0), as onnxruntime's quantizer writes it.
 * - QOperator (static): MatMul → QuantizeLinear inputs → QLinearMatMul (output scale/zero point from its
 *   calibrated range) → DequantizeLinear. Gemm → MatMulInteger path (below) with the weight transposed
 *   offline when transB = 1, then Add of the float bias.
 * - Dynamic: DynamicQuantizeLinear inputs → MatMulInteger → Cast(float) → Mul(Mul(a_scale, b_scale)),
 *   the pattern onnxruntime fuses into DynamicQuantizeMatMul.
 * Activation × activation products (attention scores, context) are quantized the same way with both
 * inputs uint8 activations.
 */
import type { onnx } from '../../onnx/codec.js';
import { attrFloat, attrInt } from '../../onnx/graph.js';
import { DataType, makeTensor } from '../../onnx/tensor.js';
import { dequantizeNodeName, quantizedName, quantNodeName, scaleName, zeroPointName, dequantizedName } from '../naming.js';
import { roundHalfEven, type QParams } from '../qparams.js';
import type { Emitter, OpQuantizer, PlanContext, PlanOutcome, QuantizedRef } from '../registry.js';
import type { NodePlan, PlannedInput } from '../types.js';
import { classifyInput, intAttr, isReason, makeNode, withInputs } from './common.js';

/** Per-channel axis of a MatMul weight: the last axis (output columns) of a 2-D B; none otherwise. */
function matMulWeightAxis(inputIndex: number): (dims: number[]) => number | undefined {
  return (dims) => (inputIndex === 1 && dims.length === 2 ? 1 : undefined);
}

function planMatMul(node: onnx.INodeProto, ctx: PlanContext): PlanOutcome {
  const inputs: PlannedInput[] = [];
  for (const i of [0, 1]) {
    const c = classifyInput(node, i, ctx, matMulWeightAxis(i));
    if (isReason(c)) return c;
    inputs.push(c);
  }
  if (inputs.every((i) => i.kind === 'weight')) return { reason: 'both inputs are constants (nothing to compute at run time)' };
  const output = (node.output ?? [])[0];
  if (!output) return { reason: 'the node has no output' };
  return { inputs, output, calibrateOutputs: ctx.format === 'qoperator' && ctx.mode === 'static' ? [output] : [] };
}

/** Inputs of a MatMulInteger-based product: quantized A and B refs. */
function integerOperand(em: Emitter, p: PlannedInput, transpose2d = false): QuantizedRef {
  if (p.kind === 'weight') return em.weight(p.tensor, p.channelAxis, { transpose2d });
  return em.mode === 'dynamic' ? em.dynamicQuantize(p.tensor) : em.quantizeActivation(p.tensor);
}

/**
 * Emit `output = float(MatMulInteger(a, b)) · (a_scale · b_scale)` (the pattern onnxruntime fuses into
 * MatMulIntegerToFloat / DynamicQuantizeMatMul). Returns nothing; `output` is produced.
 */
function emitMatMulInteger(em: Emitter, label: string, a: QuantizedRef, b: QuantizedRef, output: string): void {
  const acc = quantizedName(output);
  const cast = `${acc}_cast_output`;
  const scales = `${output}_scales_mul`;
  em.node(makeNode('MatMulInteger', quantNodeName(label), [a.q, b.q, a.zeroPoint, b.zeroPoint], [acc]));
  em.node(makeNode('Cast', `${label}_cast`, [acc], [cast], [intAttr('to', DataType.FLOAT)]));
  em.node(makeNode('Mul', `${label}_scales_mul`, [a.scale, b.scale], [scales]));
  em.node(makeNode('Mul', `${label}_output_scale_mul`, [cast, scales], [output]));
}

function rewriteMatMul(node: onnx.INodeProto, plan: NodePlan, em: Emitter): void {
  const [pa, pb] = plan.inputs;
  const output = plan.output;
  if (em.format === 'qdq' && em.mode === 'static') {
    const inputs = [...(node.input ?? [])];
    for (const p of plan.inputs) inputs[p.index] = p.kind === 'weight' ? em.qdqWeight(p.tensor, p.channelAxis) : em.qdqActivation(p.tensor);
    em.node(withInputs(node, inputs));
    return;
  }
  if (em.mode === 'dynamic') {
    emitMatMulInteger(em, plan.label, integerOperand(em, pa), integerOperand(em, pb), output);
    return;
  }
  // QOperator static: QLinearMatMul with a calibrated output.
  const a = integerOperand(em, pa);
  const b = integerOperand(em, pb);
  const y = em.calibratedParams(output);
  const yq = quantizedName(output);
  em.node(
    makeNode('QLinearMatMul', quantNodeName(plan.label), [a.q, a.scale, a.zeroPoint, b.q, b.scale, b.zeroPoint, y.scale, y.zeroPoint], [yq]),
  );
  em.node(makeNode('DequantizeLinear', dequantizeNodeName(output), [yq, y.scale, y.zeroPoint], [output]));
}

export const matMulQuantizer: OpQuantizer = {
  opTypes: ['MatMul'],
  plan: planMatMul,
  rewrite: rewriteMatMul,
};

// ------------------------------------------------------------------------------------ Gemm

function gemmAttrs(node: onnx.INodeProto): { transA: number; transB: number; alpha: number; beta: number } {
  return {
    transA: attrInt(node, 'transA', 0),
    transB: attrInt(node, 'transB', 0),
    alpha: attrFloat(node, 'alpha', 1),
    beta: attrFloat(node, 'beta', 1),
  };
}

function planGemm(node: onnx.INodeProto, ctx: PlanContext): PlanOutcome {
  const { transA, transB, alpha, beta } = gemmAttrs(node);
  const outputAxis = (i: number) => (dims: number[]): number | undefined => {
    if (dims.length !== 2) return undefined;
    if (i === 1) return ctx.format === 'qdq' && ctx.mode === 'static' ? (transB ? 0 : 1) : 1;
    return undefined;
  };
  const inputs: PlannedInput[] = [];
  for (const i of [0, 1]) {
    const c = classifyInput(node, i, ctx, outputAxis(i));
    if (isReason(c)) return c;
    inputs.push(c);
  }
  if (inputs.every((i) => i.kind === 'weight')) return { reason: 'both inputs are constants (nothing to compute at run time)' };
  const output = (node.output ?? [])[0];
  if (!output) return { reason: 'the node has no output' };
  if (!(ctx.format === 'qdq' && ctx.mode === 'static')) {
    if (transA !== 0) return { reason: 'Gemm with transA = 1 is only quantized in QDQ format' };
    if (inputs[0].kind !== 'activation' || inputs[1].kind !== 'weight') {
      return { reason: 'Gemm is quantized with MatMulInteger only for activation × constant weight (use --format qdq)' };
    }
    if (alpha !== 1 || beta !== 1) return { reason: `Gemm with alpha ${alpha} / beta ${beta} ≠ 1 is only quantized in QDQ format` };
  }
  return { inputs, output, calibrateOutputs: [] };
}

/**
 * Bias quantization as onnxruntime writes it for Gemm: `round_half_even(bias / (a_scale · b_scale))` as
 * int32 with zero point 0; one scale per output channel when B is per channel.
 */
export function quantizeBias(bias: ArrayLike<number>, aScale: number, bScale: ArrayLike<number>): { q: Int32Array; scale: Float32Array } {
  const channels = bScale.length;
  const scale = new Float32Array(channels);
  for (let j = 0; j < channels; j++) scale[j] = Math.fround(aScale * bScale[j]);
  const q = new Int32Array(bias.length);
  for (let j = 0; j < bias.length; j++) {
    const s = scale[channels === 1 ? 0 : j];
    const v = roundHalfEven(bias[j] / s);
    q[j] = Math.max(-2147483648, Math.min(2147483647, v));
  }
  return { q, scale };
}

function rewriteGemm(node: onnx.INodeProto, plan: NodePlan, em: Emitter): void {
  const [pa, pb] = plan.inputs;
  const output = plan.output;
  if (em.format === 'qdq' && em.mode === 'static') {
    const inputs = [...(node.input ?? [])];
    let aParams: QParams | undefined;
    let bParams: QParams | undefined;
    let n = 0;
    for (const p of plan.inputs) {
      if (p.kind === 'weight') {
        const w = em.weight(p.tensor, p.channelAxis);
        inputs[p.index] = em.qdqWeight(p.tensor, p.channelAxis);
        if (p.index === 1) {
          bParams = w.params;
          n = w.dims[gemmAttrs(node).transB ? 0 : 1];
        } else aParams = w.params;
      } else {
        inputs[p.index] = em.qdqActivation(p.tensor);
        if (p.index === 0) aParams = em.activationParams(p.tensor);
        else bParams = em.activationParams(p.tensor);
      }
    }
    const c = inputs[2];
    const bias = c ? em.floatConstant(c) : undefined;
    const channels = bParams?.scale.length ?? 0;
    if (
      c && bias && aParams && bParams && pb.kind === 'weight' && aParams.scale.length === 1 && gemmAttrs(node).beta === 1 &&
      (bias.length === n || (bias.length === 1 && channels === 1))
    ) {
      const { q, scale } = quantizeBias(bias, aParams.scale[0], bParams.scale);
      const perChannel = channels > 1;
      const dims = perChannel ? [channels] : [];
      em.initializer(makeTensor(quantizedName(c), DataType.INT32, em.floatConstantDims(c) ?? [bias.length], q));
      em.initializer(makeTensor(scaleName(c), DataType.FLOAT, dims, scale));
      em.initializer(makeTensor(zeroPointName(c), DataType.INT32, dims, new Int32Array(channels)));
      em.node(
        makeNode('DequantizeLinear', dequantizeNodeName(c), [quantizedName(c), scaleName(c), zeroPointName(c)], [dequantizedName(c)], perChannel ? [intAttr('axis', 0)] : []),
      );
      inputs[2] = dequantizedName(c);
    }
    em.node(withInputs(node, inputs));
    return;
  }
  // QOperator static / dynamic: A (activation) × B (weight, transposed to [K, N] when transB) + C.
  const { transB } = gemmAttrs(node);
  const a = integerOperand(em, pa);
  const b = integerOperand(em, pb, transB === 1);
  const c = (node.input ?? [])[2];
  if (!c) {
    emitMatMulInteger(em, plan.label, a, b, output);
    return;
  }
  const product = `${output}_MatMul_output`;
  emitMatMulInteger(em, plan.label, a, b, product);
  em.node(makeNode('Add', `${plan.label}_bias_add`, [product, c], [output]));
}

export const gemmQuantizer: OpQuantizer = {
  opTypes: ['Gemm'],
  plan: planGemm,
  rewrite: rewriteGemm,
};
