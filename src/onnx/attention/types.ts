/**
 * The shapes of what the attention finder reports (see {@link ./index.ts}).
 * Pure data: every reference is by tensor name or {@link NodeRef}.
 */


/**
 * How a node is referred to: its `name`, or `#<index>:<opType>` (index in `graph.node`) when the
 * exporter left it unnamed or gave the name to several nodes. {@link findNode} resolves either form.
 */
export type NodeRef = string;

/** Where a small constant (a shape, a scale) lives: an initializer, or a Constant node's output. */
export interface ConstantRef {
  /** Tensor name (initializer name, or the Constant node's output). */
  tensor: string;
  source: 'initializer' | 'Constant';
  /** The Constant node, when source is 'Constant'. */
  node?: NodeRef;
  /** Its values (flattened). */
  value: number[];
  /** How many node inputs read this tensor (> 1: shared, e.g. exporters deduplicate equal constants across layers). */
  users: number;
}

/** Weight layout: `in_out` = stored [in, out] (MatMul); `out_in` = stored [out, in] (PyTorch / Gemm transB=1). */
export type WeightLayout = 'in_out' | 'out_in';

/**
 * A dense layer: MatMul (+ Add bias) or Gemm, possibly with a Reshape to 2-D before and back after;
 * or ONNX Runtime's dynamic quantization of one (DynamicQuantizeLinear → MatMulInteger → Cast → Mul).
 */
export interface LinearRef {
  node: NodeRef;
  op: 'MatMul' | 'Gemm' | 'MatMulInteger';
  /** Initializer holding the weight (for QDQ models: the quantized data initializer). */
  weight: string;
  /** Layout of the stored initializer, taking transB and any weight Transpose into account. */
  layout: WeightLayout;
  /** Transpose (perm [1,0]) between the weight initializer and the MatMul/Gemm (unfolded exports). */
  weightTranspose?: NodeRef;
  /** DequantizeLinear between the weight initializer and the MatMul/Gemm (QDQ models). */
  weightDequantize?: NodeRef;
  /** MatMulInteger only: the DynamicQuantizeLinear of the input and the Cast + Mul (by the scales) after. */
  dynamicQuant?: { quantize?: NodeRef; dequantize: NodeRef[] };
  inFeatures: number;
  outFeatures: number;
  /** The bias: an Add node with a 1-D initializer, or the Gemm's C input (then `node` is the Gemm). */
  bias?: { node: NodeRef; initializer: string };
  /** Reshapes around a Gemm/MatMul applied to a 2-D view of a 3-D input. */
  flatten?: { before?: NodeRef; after?: NodeRef; afterShape?: ShapeSpec };
  /** The tensor entering the layer (before any flatten Reshape). */
  input: string;
  /** The tensor leaving the layer (after bias and any un-flatten Reshape). */
  output: string;
}

/** A Reshape target shape: a constant, or a Concat of pieces (PyTorch's Shape→Gather→Unsqueeze→Concat). */
export type ShapeSpec =
  | { kind: 'constant'; constant: ConstantRef }
  | { kind: 'concat'; concat: NodeRef; parts: ShapePart[] };

/** One input of a shape Concat. */
export interface ShapePart {
  /** Input index on the Concat. */
  input: number;
  tensor: string;
  /** Number of elements it contributes, when known. */
  length?: number;
  /** The constant behind it (through `via`), when it is one. */
  constant?: ConstantRef;
  /** Shape-preserving nodes (Unsqueeze, Cast, ...) between the constant and the Concat input. */
  via: NodeRef[];
}

/** One element of a Reshape target shape and where to change it. */
export interface ShapeElementRef {
  /** The value written in the graph (0 = copy input dim, -1 = inferred). */
  value: number;
  /** The constant holding it, and the element index inside that constant. */
  constant: ConstantRef;
  index: number;
  /** For a Concat target: the Concat and its input index carrying this element. */
  concat?: NodeRef;
  concatInput?: number;
  via?: NodeRef[];
}

/** The Reshape [.., all] → [.., heads, headSize] of Q, K or V. */
export interface HeadSplit {
  node: NodeRef;
  shape: ShapeSpec;
  heads: ShapeElementRef;
  headSize: ShapeElementRef;
}

/** The Reshape [.., heads, headSize] → [.., all] after the context MatMul. */
export interface HeadMerge {
  node: NodeRef;
  shape: ShapeSpec;
  allHeadSize: ShapeElementRef;
}

export interface TransposeRef {
  node: NodeRef;
  perm: number[];
}

/** The path from a projection to the QKᵀ / context MatMul. */
export interface HeadBranch {
  split: HeadSplit;
  /** Transposes between the split Reshape and the MatMul, in graph order. */
  transposes: TransposeRef[];
  /** Their composition ([0,2,1,3] for Q and V, [0,2,3,1] for Kᵀ). */
  perm: number[];
  /** For fused QKV: the Split/Slice node and output index producing this part. */
  part?: { node: NodeRef; output: number };
}

/** One multiplication/division by a constant on the attention path. */
export interface ScaleOp {
  node: NodeRef;
  op: 'Div' | 'Mul';
  on: 'q' | 'k' | 'scores';
  /** 'projection' = before the head split, 'heads' = after it (Q/K only). */
  stage?: 'projection' | 'heads';
  /** The scale operand (the input that is not the attention data). */
  tensor: string;
  /** Set when the operand is a plain constant (initializer or Constant node). */
  constant?: ConstantRef;
  /**
   * Set when the operand is computed from constants and tensor shapes (torch's SDPA export:
   * Shape → Slice → Cast → Sqrt → Div → Sqrt): the nodes computing it.
   */
  computedBy?: NodeRef[];
  /** The operand's value (evaluated when computed). */
  value: number;
  /** What the op multiplies by (1/value for Div). */
  factor: number;
}

export type ScalePlacement = 'scores' | 'q' | 'k' | 'qk' | 'none' | 'mixed';

export interface ScaleInfo {
  placement: ScalePlacement;
  ops: ScaleOp[];
  /** Product of the factors: the total multiplier the scores get. */
  factor: number;
  /** factor equals 1/√headSize (relative tolerance 1e-4). */
  standard: boolean;
}

export interface MaskRef {
  node: NodeRef;
  op: 'Add' | 'Sub' | 'Where';
  /** The non-score input (the extended attention mask, or Where's condition). */
  input: string;
}

export interface LayerNormRef {
  kind: 'LayerNormalization' | 'decomposed';
  /** The LayerNormalization node, or the decomposed chain (ReduceMean, Sub, Pow, ..., Mul, Add). */
  nodes: NodeRef[];
  input: string;
  output: string;
  /** γ and β initializers. */
  scale: string;
  bias?: string;
  epsilon: number;
}

export type ActivationKind = 'gelu-erf' | 'gelu-tanh' | 'gelu' | 'gelu-fast' | 'quick-gelu' | 'silu' | 'relu' | 'unknown';

export interface FfnBlock {
  intermediate: LinearRef;
  activation: { kind: ActivationKind; nodes: NodeRef[]; output: string };
  output: LinearRef;
  residual?: { node: NodeRef; skip: string };
  layerNorm?: LayerNormRef;
}

export interface SeparateQkv {
  kind: 'separate';
  q: LinearRef;
  k: LinearRef;
  v: LinearRef;
}

export interface SliceRef {
  node: NodeRef;
  axis: number;
  start: number;
  end: number;
  /** Constants holding starts/ends (absent when given as attributes, opset < 10). */
  starts?: ConstantRef;
  ends?: ConstantRef;
}

/** One projection to 3×all split into Q, K, V by a Split or three Slices. */
export interface FusedQkv {
  kind: 'fused';
  linear: LinearRef;
  splitter:
    | {
        op: 'Split';
        node: NodeRef;
        axis: number;
        sizes: number[];
        sizesFrom: 'input' | 'attribute' | 'equal';
        sizesConstant?: ConstantRef;
      }
    | { op: 'Slice'; slices: { q: SliceRef; k: SliceRef; v: SliceRef } };
  /** Column range [start, end) of Q, K and V in the fused output. */
  ranges: { q: [number, number]; k: [number, number]; v: [number, number] };
}

export interface AttentionBlock {
  /** Index in graph order (of the attention Softmax nodes). */
  layer: number;
  numHeads: number;
  headSize: number;
  /** numHeads × headSize. */
  allHeadSize: number;
  /** Model width (input features of the Q projection). */
  hidden: number;
  /** Hidden states entering Q/K/V. */
  input: string;
  qkv: SeparateQkv | FusedQkv;
  q: HeadBranch;
  k: HeadBranch;
  v: HeadBranch;
  /** The QKᵀ MatMul. `swapped`: it computes K·Qᵀ and `transpose` turns the scores back. */
  scores: { matmul: NodeRef; swapped: boolean; transposes: NodeRef[] };
  scale: ScaleInfo;
  masks: MaskRef[];
  softmax: { node: NodeRef; axis: number };
  context: { matmul: NodeRef };
  merge: { transposes: TransposeRef[]; perm: number[]; reshape: HeadMerge };
  output: LinearRef;
  residual?: { node: NodeRef; skip: string };
  layerNorm?: LayerNormRef;
  ffn?: FfnBlock;
}

/** Where matching stopped, for one attention candidate (or the whole graph). */
export interface AttentionFailure {
  /** Layer index (graph order) when the failure is about one block. */
  layer?: number;
  /** The node where matching failed. */
  node: NodeRef;
  /** What could not be matched: a whole attention block, only its FFN (the block is still returned), or the graph. */
  part: 'attention' | 'ffn' | 'graph';
  message: string;
}

export interface AttentionReport {
  blocks: AttentionBlock[];
  /** One human line per failure. */
  problems: string[];
  /** The same, structured. */
  failures: AttentionFailure[];
}
