/**
 * Quality gates, judged per variant (pure). Three gates:
 *   max-f1-drop     (baseline micro F1 − variant micro F1) × 100, in points, must be ≤ the limit
 *   max-latency-ms  the variant's p50 latency at batch 1 (first bench sequence length) must be ≤ the limit
 *   max-size-mb     the variant's ONNX file + external data, in MB of 10^6 bytes, must be ≤ the limit
 * A variant's own limit wins over the command-line flag, which wins over the recipe's global `gates:`;
 * a limit of null switches the gate off for that variant.
 */
import type { GateLimits, GateName } from './recipe.js';
import { GATE_NAMES } from './recipe.js';

export type GateSource = 'variant' | 'flag' | 'recipe';

/** One gate judged on one variant. */
export interface GateResult {
  gate: GateName;
  limit: number;
  /** The measured value in the gate's unit. */
  value: number;
  unit: 'points' | 'ms' | 'MB';
  passed: boolean;
  /** Where the limit came from. */
  source: GateSource;
}

/** The measured numbers of one variant that gates read. */
export interface GateInputs {
  /** Micro F1 in [0, 1]. */
  f1: number;
  /** The baseline's micro F1 in [0, 1]. */
  baselineF1: number;
  /** p50 ms at batch 1, or undefined when not measured. */
  p50Ms?: number;
  sizeBytes: number;
}

/** The effective limit of each gate for a variant, with where it came from (null limits dropped). */
export function effectiveLimits(variant: GateLimits, flags: GateLimits, recipe: GateLimits): Array<{ gate: GateName; limit: number; source: GateSource }> {
  const out: Array<{ gate: GateName; limit: number; source: GateSource }> = [];
  for (const gate of GATE_NAMES) {
    let limit: number | null | undefined;
    let source: GateSource;
    if (variant[gate] !== undefined) {
      limit = variant[gate];
      source = 'variant';
    } else if (flags[gate] !== undefined) {
      limit = flags[gate];
      source = 'flag';
    } else {
      limit = recipe[gate];
      source = 'recipe';
    }
    if (limit !== null && limit !== undefined) out.push({ gate, limit, source });
  }
  return out;
}

/** F1 drop in points (positive = the variant is worse than the baseline). */
export function f1DropPoints(baselineF1: number, f1: number): number {
  return (baselineF1 - f1) * 100;
}

/** Model size in MB (10^6 bytes). */
export function sizeMB(bytes: number): number {
  return bytes / 1e6;
}

/** Judge a variant's gates. A value equal to its limit passes. */
export function judgeGates(inputs: GateInputs, limits: ReturnType<typeof effectiveLimits>): GateResult[] {
  return limits.map(({ gate, limit, source }) => {
    let value: number;
    let unit: GateResult['unit'];
    if (gate === 'max-f1-drop') {
      value = f1DropPoints(inputs.baselineF1, inputs.f1);
      unit = 'points';
    } else if (gate === 'max-latency-ms') {
      value = inputs.p50Ms ?? Number.POSITIVE_INFINITY;
      unit = 'ms';
    } else {
      value = sizeMB(inputs.sizeBytes);
      unit = 'MB';
    }
    // A tolerance of 1e-9 keeps float noise (e.g. 0.30000000000000004 points) from failing an equal limit.
    return { gate, limit, value, unit, passed: value <= limit + 1e-9, source };
  });
}

/** One line saying which gate a variant failed, with the measured number and the limit. */
export function gateFailureText(variant: string, r: GateResult, ctx: { f1?: number; baselineF1?: number; baseline?: string } = {}): string {
  const two = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : 'not measured');
  // When value and limit look equal at 2 decimals, show 4 so the failure is visible.
  const digits = two(r.value) === two(r.limit) ? 4 : 2;
  const num = (x: number) => (Number.isFinite(x) ? x.toFixed(digits) : 'not measured');
  if (r.gate === 'max-f1-drop') {
    const extra =
      ctx.f1 !== undefined && ctx.baselineF1 !== undefined
        ? ` (F1 ${(ctx.f1 * 100).toFixed(2)} vs baseline${ctx.baseline ? ` "${ctx.baseline}"` : ''} ${(ctx.baselineF1 * 100).toFixed(2)})`
        : '';
    return `variant "${variant}" failed max-f1-drop: F1 drop ${num(r.value)} points > limit ${num(r.limit)}${extra}`;
  }
  if (r.gate === 'max-latency-ms') return `variant "${variant}" failed max-latency-ms: p50 ${num(r.value)} ms > limit ${num(r.limit)} ms`;
  return `variant "${variant}" failed max-size-mb: size ${num(r.value)} MB > limit ${num(r.limit)} MB`;
}
