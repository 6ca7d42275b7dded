/**
 * Gather of a float embedding table (onnxruntime `operators/gather.py`), in every format: the table is
 * stored as a symmetric int8 initializer, the Gather picks int8 rows, and a DequantizeLinear turns only the
 * gathered rows back to float, so no run dequantizes the whole table. Per channel, the scales run along the
 * table's columns (the hidden dimension): DequantizeLinear with axis −1 on the gathered rows.
 *
 * Only row lookups are candidates: axis 0, a 2-D float constant table and computed indices. Gathers over
 * shapes and indices (integer data) are index arithmetic, not parameters, and are not candidates.
 */
import type { onnx } from '../../onnx/codec.js';
import { attrInt } from '../../onnx/graph.js';
import { DataType } from '../../onnx/tensor.js';
import { dequantizeNodeName, quantizedName } from '../naming.js';
import type { Emitter, OpQuantizer, PlanContext, PlanOutcome } from '../registry.js';
import type { NodePlan } from '../types.js';
import { intAttr, makeNode } from './common.js';

/** Marker in a reason: the node is not a quantization candidate at all (counted, not listed). */
export const NOT_CANDIDATE = 'not a candidate: ';

function planGather(node: onnx.INodeProto, ctx: PlanContext): PlanOutcome {
  const [data, indices] = node.input ?? [];
  const table = data ? ctx.constant(data) : undefined;
  if (!table || table.dataType !== DataType.FLOAT) return { reason: `${NOT_CANDIDATE}the gathered data is not a float constant table` };
  if (table.dims.length !== 2) return { reason: `the table "${data}" has rank ${table.dims.length}; only 2-D embedding tables are quantized` };
  if (attrInt(node, 'axis', 0) !== 0) return { reason: 'only row lookups (axis 0) are quantized' };
  if (!indices) return { reason: 'the node has no indices input' };
  const output = (node.output ?? [])[0];
  if (!output) return { reason: 'the node has no output' };
  for (let i = 0; i < table.data.length; i++) {
    if (!Number.isFinite((table.data as Float32Array)[i])) return { reason: `weight "${data}" holds NaN or infinite values` };
  }
  return { inputs: [{ index: 0, tensor: data, kind: 'weight', channelAxis: ctx.perChannel ? 1 : undefined }], output, calibrateOutputs: [] };
}

function rewriteGather(node: onnx.INodeProto, plan: NodePlan, em: Emitter): void {
  const [p] = plan.inputs;
  const w = em.weight(p.tensor, p.channelAxis);
  const output = plan.output;
  const rows = quantizedName(output);
  em.node({ ...node, input: [w.q, ...(node.input ?? []).slice(1)], output: [rows] });
  em.node(
    makeNode('DequantizeLinear', dequantizeNodeName(output), [rows, w.scale, w.zeroPoint], [output], p.channelAxis !== undefined ? [intAttr('axis', -1)] : []),
  );
}

export const gatherQuantizer: OpQuantizer = {
  opTypes: ['Gather'],
  plan: planGather,
  rewrite: rewriteGather,
};
