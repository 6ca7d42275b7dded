/**
 * Where onnxruntime spends a model's time, from its profiler's chrome-trace JSON (pure functions, no
 * I/O): time per op type per run, the GEMM share, the int8/float GEMM speed ratio of two profiles of the
 * same network at the same shapes, and the speed-up bound 1 / (non-GEMM share + GEMM share / k) that
 * follows when only the GEMMs get k× faster.
 */

/** One complete event ("ph": "X") of onnxruntime's profile, the fields ranerc reads. */
export interface ProfileEvent {
  cat: string;
  name: string;
  /** Start, µs from the profiler's start. */
  ts: number;
  /** Duration, µs. */
  dur: number;
  args?: {
    op_name?: string;
    provider?: string;
    input_type_shape?: Array<Record<string, number[]>>;
    output_type_shape?: Array<Record<string, number[]>>;
  };
}

/** What an op type counts as in the table. */
export type OpCategory = 'gemm-float' | 'gemm-int8' | 'quantize' | 'other';

const FLOAT_GEMM = new Set(['MatMul', 'Gemm', 'FusedMatMul', 'FusedGemm', 'Attention', 'MultiHeadAttention', 'Conv', 'FusedConv']);
const INT8_GEMM = new Set([
  'MatMulInteger',
  'MatMulIntegerToFloat',
  'QLinearMatMul',
  'DynamicQuantizeMatMul',
  'QGemm',
  'QAttention',
  'ConvInteger',
  'QLinearConv',
  'MatMulNBits',
]);
const QUANTIZE = new Set(['QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear']);

/** Integer-kernel op types onnxruntime runs an INT8 matrix product with. */
export const INTEGER_GEMM_OPS: readonly string[] = [...INT8_GEMM];

export function opCategory(opType: string): OpCategory {
  if (FLOAT_GEMM.has(opType)) return 'gemm-float';
  if (INT8_GEMM.has(opType)) return 'gemm-int8';
  if (QUANTIZE.has(opType)) return 'quantize';
  return 'other';
}

export function isGemm(c: OpCategory): boolean {
  return c === 'gemm-float' || c === 'gemm-int8';
}

/** One op type's row. */
export interface OpTimeRow {
  opType: string;
  category: OpCategory;
  /** Nodes of this type run per model run. */
  callsPerRun: number;
  /** Kernel time per model run, µs. */
  usPerRun: number;
  /** Share of all kernel time. */
  share: number;
}

/** Kernel time of one matrix-product shape (the first two inputs' shapes). */
export interface GemmShapeRow {
  /** `first operand dims → output dims`, e.g. `1×64×768 → 1×64×3072`. */
  shape: string;
  opTypes: string[];
  callsPerRun: number;
  usPerRun: number;
}

/** A profile reduced to what the report shows. */
export interface OpTimeTable {
  /** Model runs counted (after the skipped warm-up runs). */
  runs: number;
  /** Median `model_run` duration, µs (kernels plus the session's own work). */
  runUs: number;
  /** Kernel time per run, µs: per node the median over the counted runs, summed. */
  kernelUs: number;
  rows: OpTimeRow[];
  /** Share of kernel time in matrix products (float or integer kernels). */
  gemmShare: number;
  /** Share of kernel time in QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear. */
  quantizeShare: number;
  /** GEMM kernel time per run, µs. */
  gemmUs: number;
  byShape: GemmShapeRow[];
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function isProfileEvent(x: unknown): x is ProfileEvent {
  if (typeof x !== 'object' || x === null) return false;
  const e = x as Record<string, unknown>;
  return typeof e.cat === 'string' && typeof e.name === 'string' && typeof e.ts === 'number' && typeof e.dur === 'number';
}

/** The complete events of a parsed profile file (other entries are skipped). Throws when there is no array. */
export function profileEvents(json: unknown): ProfileEvent[] {
  if (!Array.isArray(json)) throw new TypeError('an onnxruntime profile is a JSON array of trace events');
  return json.filter(isProfileEvent);
}

/**
 * A GEMM's shape key: its first operand's dims and its output's dims (`1×64×768 → 1×64×3072`). The
 * profiler lists only non-constant inputs, so a weight shows through the output shape.
 */
function shapeKey(e: ProfileEvent): string {
  const first = Object.values(e.args?.input_type_shape?.[0] ?? {})[0] ?? [];
  const out = Object.values(e.args?.output_type_shape?.[0] ?? {})[0] ?? [];
  return `${first.join('×')} → ${out.join('×')}`;
}

/**
 * The op-time table of a profile: node kernel events (`cat` "Node", names ending `_kernel_time`)
 * grouped by op type: per node the median duration over the counted `model_run`s, summed per op type. Runs are counted when
 * `keep(index)` says so (index in time order; default: all) or, with `skipRuns`, after the first
 * `skipRuns`; node events inside runs not counted are left out (warm-up runs do not count).
 */
export function opTimeTable(events: readonly ProfileEvent[], opts: { skipRuns?: number; keep?: (run: number) => boolean } = {}): OpTimeTable {
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts - b.ts);
  const skip = Math.min(opts.skipRuns ?? 0, Math.max(0, runs.length - 1));
  const keep = opts.keep ?? ((i: number) => i >= skip);
  const kept = runs.filter((_, i) => keep(i));
  if (kept.length === 0) throw new RangeError('the profile has no model_run events counted: run the session at least once before ending the profile');
  const inKept = (e: ProfileEvent): boolean => kept.some((r) => e.ts >= r.ts && e.ts <= r.ts + r.dur);
  const nodes = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && inKept(e));
  const n = kept.length;
  // Per node: the median of its durations when it ran once per counted run (robust to a run preempted on
  // a loaded machine), else the mean; per op type and shape: the sum over its nodes.
  const perNode = new Map<string, { op: string; shape: string; durs: number[] }>();
  for (const e of nodes) {
    const op = e.args?.op_name ?? e.name.replace(/_kernel_time$/, '');
    const v = perNode.get(e.name) ?? { op, shape: shapeKey(e), durs: [] };
    v.durs.push(e.dur);
    perNode.set(e.name, v);
  }
  const byOp = new Map<string, { calls: number; us: number }>();
  const byShape = new Map<string, { ops: Set<string>; calls: number; us: number }>();
  let total = 0;
  for (const { op, shape, durs } of perNode.values()) {
    const us = durs.length === n ? median(durs) : durs.reduce((a, b) => a + b, 0) / n;
    const calls = durs.length / n;
    const row = byOp.get(op) ?? { calls: 0, us: 0 };
    row.calls += calls;
    row.us += us;
    byOp.set(op, row);
    total += us;
    if (isGemm(opCategory(op))) {
      const sh = byShape.get(shape) ?? { ops: new Set<string>(), calls: 0, us: 0 };
      sh.ops.add(op);
      sh.calls += calls;
      sh.us += us;
      byShape.set(shape, sh);
    }
  }
  const rows: OpTimeRow[] = [...byOp]
    .map(([opType, r]) => ({ opType, category: opCategory(opType), callsPerRun: r.calls, usPerRun: r.us, share: total > 0 ? r.us / total : 0 }))
    .sort((a, b) => b.usPerRun - a.usPerRun || a.opType.localeCompare(b.opType));
  const sumShare = (pred: (c: OpCategory) => boolean): number => rows.filter((r) => pred(r.category)).reduce((s, r) => s + r.share, 0);
  return {
    runs: n,
    runUs: median(kept.map((r) => r.dur)),
    kernelUs: total,
    rows,
    gemmShare: sumShare(isGemm),
    quantizeShare: sumShare((c) => c === 'quantize'),
    gemmUs: rows.filter((r) => isGemm(r.category)).reduce((s, r) => s + r.usPerRun, 0),
    byShape: [...byShape]
      .map(([shape, s]) => ({ shape, opTypes: [...s.ops].sort(), callsPerRun: s.calls, usPerRun: s.us }))
      .sort((a, b) => b.usPerRun - a.usPerRun),
  };
}

/** Float vs INT8 profile of the same network at the same input shape. */
export interface ProfileComparison {
  /** Float GEMM time / INT8 GEMM time per run (all matrix products, integer or float kernels). */
  gemmSpeedRatio: number;
  /** 1 / ((1 − GEMM share) + GEMM share / k), from the float profile's shares. */
  bound: number;
  /** Float kernel time / INT8 kernel time per run, as the profiles measured it. */
  profiledSpeedup: number;
  /** Per shape: float µs, INT8 µs and their ratio (shapes present in both profiles). */
  byShape: Array<{ shape: string; floatUs: number; int8Us: number; ratio: number; int8Ops: string[] }>;
}

/** The speed-up bound when a share `gemmShare` of the time gets `k`× faster and the rest stays. */
export function speedupBound(gemmShare: number, k: number): number {
  if (!(gemmShare >= 0 && gemmShare <= 1)) throw new RangeError(`GEMM share must be in [0, 1], got ${gemmShare}`);
  if (!(k > 0)) throw new RangeError(`GEMM speed ratio must be > 0, got ${k}`);
  return 1 / (1 - gemmShare + gemmShare / k);
}

export function compareProfiles(float: OpTimeTable, int8: OpTimeTable): ProfileComparison {
  const k = int8.gemmUs > 0 ? float.gemmUs / int8.gemmUs : NaN;
  const int8ByShape = new Map(int8.byShape.map((r) => [r.shape, r]));
  return {
    gemmSpeedRatio: k,
    bound: Number.isFinite(k) ? speedupBound(float.gemmShare, k) : NaN,
    profiledSpeedup: int8.kernelUs > 0 ? float.kernelUs / int8.kernelUs : NaN,
    byShape: float.byShape
      .filter((r) => int8ByShape.has(r.shape))
      .map((r) => {
        const q = int8ByShape.get(r.shape)!;
        return { shape: r.shape, floatUs: r.usPerRun, int8Us: q.usPerRun, ratio: q.usPerRun > 0 ? r.usPerRun / q.usPerRun : NaN, int8Ops: q.opTypes };
      }),
  };
}
