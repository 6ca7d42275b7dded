/**
 * LSTM, as onnxruntime's dynamic quantizer does it (`quantization/operators/lstm.py`, `LSTMQuant`): the
 * input and recurrent weights W [dirs, 4·hidden, input] and R [dirs, 4·hidden, hidden] become symmetric
 * int8 initializers transposed to [dirs, input, 4·hidden] / [dirs, hidden, 4·hidden], with one scale per
 * direction (per tensor) or per direction and gate row (per channel, [dirs, 4·hidden]), and the node
 * becomes `com.microsoft.DynamicQuantizeLSTM` (bias, sequence_lens, initial states and peepholes kept in
 * float; the activations are quantized inside the kernel at run time). onnxruntime's static quantizer
 * has no LSTM operator, so in static mode the LSTM stays float with that reason in the report.
 */
import type { onnx } from '../../onnx/codec.js';
import { DataType } from '../../onnx/tensor.js';
import type { Emitter, OpQuantizer, PlanContext, PlanOutcome } from '../registry.js';
import type { NodePlan } from '../types.js';

/** The contrib domain DynamicQuantizeLSTM lives in. */
export const MS_DOMAIN = 'com.microsoft';

function planLstm(node: onnx.INodeProto, ctx: PlanContext): PlanOutcome {
  if (ctx.mode !== 'dynamic') {
    return {
      reason:
        'LSTM stays float in static mode: onnxruntime quantizes LSTM only dynamically (com.microsoft.DynamicQuantizeLSTM); pass --dynamic to quantize its weights',
    };
  }
  const layout = (node.attribute ?? []).find((a) => a.name === 'layout');
  if (layout && Number(layout.i ?? 0) !== 0) return { reason: 'LSTM with layout=1 (batch-major) has no DynamicQuantizeLSTM form' };
  const input = node.input ?? [];
  const output = (node.output ?? []).find((o) => o !== '');
  if (!output) return { reason: 'the node has no output' };
  const inputs = [];
  for (const index of [1, 2]) {
    const tensor = input[index];
    const c = tensor ? ctx.constant(tensor) : undefined;
    if (!c || c.dataType !== DataType.FLOAT) return { reason: `${index === 1 ? 'W' : 'R'} ("${tensor ?? ''}") is not a float32 constant` };
    if (c.dims.length !== 3) return { reason: `${index === 1 ? 'W' : 'R'} ("${tensor}") has rank ${c.dims.length}, expected 3` };
    for (let i = 0; i < c.data.length; i++) {
      if (!Number.isFinite((c.data as Float32Array)[i])) return { reason: `weight "${tensor}" holds NaN or infinite values` };
    }
    // channelAxis marks per channel (the gate rows, axis 1 of [dirs, 4·hidden, k]); per tensor is per direction
    inputs.push({ index, tensor, kind: 'weight' as const, channelAxis: ctx.perChannel ? 1 : undefined });
  }
  return { inputs, output, calibrateOutputs: [] };
}

function rewriteLstm(node: onnx.INodeProto, plan: NodePlan, em: Emitter): void {
  const [w, r] = plan.inputs.map((p) => em.lstmWeight(p.tensor, p.channelAxis !== undefined));
  const input = node.input ?? [];
  const at = (i: number): string => input[i] ?? '';
  em.domain(MS_DOMAIN, 1);
  em.node({
    opType: 'DynamicQuantizeLSTM',
    domain: MS_DOMAIN,
    name: node.name ? `${node.name}_quant` : '',
    input: [at(0), w.q, r.q, at(3), at(4), at(5), at(6), at(7), w.scale, w.zeroPoint, r.scale, r.zeroPoint],
    output: node.output,
    attribute: (node.attribute ?? []).filter((a) => a.name !== 'layout'),
  });
}

export const lstmQuantizer: OpQuantizer = {
  opTypes: ['LSTM'],
  plan: planLstm,
  rewrite: rewriteLstm,
};
