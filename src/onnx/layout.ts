/**
 * Output layouts: where a written model folder puts its ONNX file, so that other loaders find it.
 *
 * - `ranerc` (default): `model.onnx` at the top (what ranerc and Hugging Face's ONNX exports use).
 * - `transformers.js`: `onnx/model.onnx`, or `onnx/model_quantized.onnx` for an INT8 graph — the
 *   file transformers.js 4.x opens for `dtype: 'fp32'` (its Node default) and `dtype: 'q8'` (its
 *   browser/wasm default); config.json, tokenizer.json and tokenizer_config.json stay at the top.
 * - `optimum`: `model.onnx` at the top, or `model_quantized.onnx` plus `ort_config.json` for an
 *   INT8 graph — what Optimum's `ORTQuantizer.quantize(save_dir=...)` writes and
 *   `ORTModelForTokenClassification.from_pretrained(dir, file_name=...)` reads.
 *
 * Reading needs nothing from here: loadModelFolder finds `model.onnx`, `onnx/model.onnx` or the one
 * `.onnx` file at the top or in `onnx/`.
 */
import type { onnx } from './codec.js';

export const LAYOUTS = ['ranerc', 'optimum', 'transformers.js'] as const;
export type Layout = (typeof LAYOUTS)[number];

/** Operators that only an INT8-quantized graph contains (ONNX and com.microsoft domains). */
const INT8_OPS = new Set([
  'MatMulInteger',
  'ConvInteger',
  'DynamicQuantizeLinear',
  'QuantizeLinear',
  'DequantizeLinear',
  'QLinearMatMul',
  'QLinearConv',
  'QLinearAdd',
  'QLinearMul',
  'QAttention',
  'QEmbedLayerNormalization',
  'DynamicQuantizeMatMul',
  'QGemm',
  'MatMulIntegerToFloat',
]);

/** The INT8 operators a graph uses (empty for a float graph). */
export function quantizedOps(model: onnx.IModelProto): string[] {
  const found = new Set<string>();
  for (const n of model.graph?.node ?? []) if (n.opType && INT8_OPS.has(n.opType)) found.add(n.opType);
  return [...found].sort();
}

/** Path of the ONNX file inside the folder, relative to it, for `layout`. */
export function onnxRelPath(layout: Layout, quantized: boolean): string {
  switch (layout) {
    case 'ranerc':
      return 'model.onnx';
    case 'transformers.js':
      return quantized ? 'onnx/model_quantized.onnx' : 'onnx/model.onnx';
    case 'optimum':
      return quantized ? 'model_quantized.onnx' : 'model.onnx';
  }
}

/**
 * Optimum's `ort_config.json` for an INT8 graph (the keys of optimum's
 * `ORTConfig.to_dict()`: `QuantizationConfig` fields under "quantization"), filled from the graph
 * itself: QOperator/IntegerOps when it has MatMulInteger, QDQ when it has DequantizeLinear.
 */
export function ortConfig(model: onnx.IModelProto, ops: string[]): Record<string, unknown> {
  const qdq = ops.includes('DequantizeLinear') && !ops.includes('MatMulInteger');
  const isStatic = ops.includes('QuantizeLinear') || ops.includes('QLinearMatMul');
  const inits = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const elements = (name: string | undefined): number => {
    const t = name === undefined ? undefined : inits.get(name);
    return t ? (t.dims ?? []).reduce<number>((a, d) => a * Number(d.toString()), 1) : 0;
  };
  let perChannel = false;
  const quantizedTypes = new Set<string>();
  const nodes: string[] = [];
  for (const n of model.graph?.node ?? []) {
    if (!n.opType || !INT8_OPS.has(n.opType)) continue;
    if (n.name) nodes.push(n.name);
    // a weight scale / zero point with more than one element is per-channel quantization
    if (n.opType === 'MatMulInteger' && elements(n.input?.[3]) > 1) perChannel = true;
    if (n.opType === 'DequantizeLinear' && elements(n.input?.[1]) > 1) perChannel = true;
    if (n.opType === 'MatMulInteger' || n.opType === 'QLinearMatMul' || n.opType === 'DynamicQuantizeMatMul') quantizedTypes.add('MatMul');
    if (n.opType === 'ConvInteger' || n.opType === 'QLinearConv') quantizedTypes.add('Conv');
    if (n.opType === 'QGemm') quantizedTypes.add('Gemm');
    if (n.opType === 'QAttention') quantizedTypes.add('Attention');
  }
  const opset = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')?.version;
  return {
    opset: opset === undefined || opset === null ? null : Number(opset.toString()),
    use_external_data_format: false,
    one_external_file: true,
    optimization: {},
    quantization: {
      is_static: isStatic,
      format: qdq ? 'QDQ' : 'QOperator',
      mode: isStatic ? 'QLinearOps' : 'IntegerOps',
      activations_dtype: 'QUInt8',
      activations_symmetric: false,
      weights_dtype: 'QInt8',
      weights_symmetric: true,
      per_channel: perChannel,
      reduce_range: false,
      nodes_to_quantize: [],
      nodes_to_exclude: [],
      operators_to_quantize: [...quantizedTypes].sort(),
    },
    ranerc: { int8_ops: ops, quantized_nodes: nodes.length, note: 'written by ranerc --layout optimum from the graph' },
  };
}

// The layout a command's output folder uses: set from `--layout` by the CLI (src/cli/layout.ts)
// for the duration of one command, read by writeModelFolder when its caller passes none.
let current: Layout = 'ranerc';

export function setDefaultLayout(layout: Layout): void {
  current = layout;
}

export function defaultLayout(): Layout {
  return current;
}
