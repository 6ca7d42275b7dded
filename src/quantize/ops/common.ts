/** Small helpers the op quantizers share: node/attribute builders and input classification. */
import { onnx } from '../../onnx/codec.js';
import { DataType } from '../../onnx/tensor.js';
import type { PlanContext } from '../registry.js';
import type { PlannedInput } from '../types.js';

const AT = onnx.AttributeProto.AttributeType;

/** An INT attribute. */
export function intAttr(name: string, value: number): onnx.IAttributeProto {
  return { name, type: AT.INT, i: value };
}

/** A node in the default domain. */
export function makeNode(
  opType: string,
  name: string,
  inputs: string[],
  outputs: string[],
  attributes: onnx.IAttributeProto[] = [],
): onnx.INodeProto {
  return { opType, name, input: inputs, output: outputs, attribute: attributes };
}

/** A copy of `node` with some inputs replaced (attributes, name, outputs and unknown fields kept). */
export function withInputs(node: onnx.INodeProto, inputs: string[]): onnx.INodeProto {
  return { ...node, input: inputs };
}

/** The label ranerc uses for a node: its name, or `<opType>#<index>`. */
export function nodeLabel(node: onnx.INodeProto, index: number): string {
  return node.name ? node.name : `${node.opType ?? '?'}#${index}`;
}

/**
 * Classify input `index` of a float op: a constant float tensor (weight), a computed float tensor
 * (activation), or a reason it cannot be quantized.
 */
export function classifyInput(
  node: onnx.INodeProto,
  index: number,
  ctx: PlanContext,
  channelAxis?: (dims: number[]) => number | undefined,
): PlannedInput | { reason: string } {
  const tensor = (node.input ?? [])[index];
  if (!tensor) return { reason: `input ${index} is missing` };
  const c = ctx.constant(tensor);
  if (c) {
    if (c.dataType !== DataType.FLOAT) return { reason: `constant input "${tensor}" is not float32` };
    for (let i = 0; i < c.data.length; i++) {
      if (!Number.isFinite((c.data as Float32Array)[i])) return { reason: `weight "${tensor}" holds NaN or infinite values` };
    }
    return { index, tensor, kind: 'weight', channelAxis: ctx.perChannel && channelAxis ? channelAxis(c.dims) : undefined };
  }
  const t = ctx.elemType(tensor);
  if (t !== undefined && t !== DataType.FLOAT) return { reason: `input "${tensor}" is not float32` };
  if (t === undefined && ctx.mode === 'dynamic') {
    return { reason: `the element type of input "${tensor}" cannot be told from the graph` };
  }
  return { index, tensor, kind: 'activation' };
}

export function isReason(x: PlannedInput | { reason: string }): x is { reason: string } {
  return 'reason' in x;
}
