/**
 * Names of the tensors and nodes the quantizer adds, derived from the float tensor they stand for with
 * onnxruntime's suffixes, so a quantized tensor can always be paired with its float original:
 *
 * | float tensor `t` | name |
 * |---|---|
 * | quantized data (int8 weight initializer, uint8 activation, int32 accumulator) | `t_quantized` |
 * | scale / zero point | `t_scale` / `t_zero_point` |
 * | QuantizeLinear / DynamicQuantizeLinear node | `t_QuantizeLinear` |
 * | DequantizeLinear node | `t_DequantizeLinear` |
 * | DequantizeLinear output standing in for `t` (QDQ) | `t_DequantizeLinear_Output` |
 *
 * Rewritten nodes keep their output names, so the quantized model's node outputs pair with the float
 * model's by name; a node replaced by an integer operator gets `<node>_quant`.
 */
export const SUFFIX = {
  quantized: '_quantized',
  scale: '_scale',
  zeroPoint: '_zero_point',
  quantizeNode: '_QuantizeLinear',
  dequantizeNode: '_DequantizeLinear',
  dequantizedOutput: '_DequantizeLinear_Output',
  quantNode: '_quant',
} as const;

export const quantizedName = (t: string): string => `${t}${SUFFIX.quantized}`;
export const scaleName = (t: string): string => `${t}${SUFFIX.scale}`;
export const zeroPointName = (t: string): string => `${t}${SUFFIX.zeroPoint}`;
export const quantizeNodeName = (t: string): string => `${t}${SUFFIX.quantizeNode}`;
export const dequantizeNodeName = (t: string): string => `${t}${SUFFIX.dequantizeNode}`;
export const dequantizedName = (t: string): string => `${t}${SUFFIX.dequantizedOutput}`;
export const quantNodeName = (node: string): string => `${node}${SUFFIX.quantNode}`;

/** The float tensor a quantizer-made name stands for, or undefined for other names. */
export function floatTensorOf(name: string): string | undefined {
  for (const s of [SUFFIX.dequantizedOutput, SUFFIX.quantized, SUFFIX.scale, SUFFIX.zeroPoint]) {
    if (name.endsWith(s) && name.length > s.length) return name.slice(0, -s.length);
  }
  return undefined;
}
