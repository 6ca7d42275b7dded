/**
 * The op registry: ONNX (domain, op type) → per-op executors, each valid from an opset version on.
 * Op families register themselves from `ops/*.ts` (imported by `ops/index.ts`); the executor looks
 * up the newest executor whose `sinceVersion` is at most the model's opset for that domain.
 */
import type * as tf from '@tensorflow/tfjs';
import type { HostTensor } from './host.js';
import type { NodeView } from './node.js';

/** A value flowing through the compiled graph: a tfjs tensor or a small host (plain JS) tensor. */
export type Value = tf.Tensor | HostTensor;

export interface OpContext {
  /** Opset version of the node's domain. */
  readonly opset: number;
  /** A value as a tfjs tensor (host values are converted; constants are converted once). */
  tensor(v: Value): tf.Tensor;
  /** A value as a host tensor; a tfjs tensor is read back (only for small shape-like data). */
  host(v: Value): HostTensor;
}

export interface OpExecutor {
  readonly opType: string;
  /** ONNX domain; '' (ai.onnx) when absent. */
  readonly domain?: string;
  /** First opset version these semantics apply to (default 1). */
  readonly sinceVersion?: number;
  /**
   * Create-time validation of attributes and constant inputs; throw `node.error(...)` for values
   * the executor does not implement.
   */
  check?(node: NodeView, opset: number): void;
  /**
   * Plain-JS evaluation, used when every present input is a host value (constants, shapes). The
   * results are cached per distinct feed shape, so shape arithmetic never reaches tfjs.
   */
  host?(node: NodeView, inputs: readonly (HostTensor | undefined)[], opset: number): HostTensor[];
  /** host() reads only its inputs' shapes (Shape, Size), so it runs on device inputs too. */
  readonly shapeOnly?: boolean;
  /** tfjs evaluation; `inputs[i]` is undefined for an omitted optional input. */
  run(node: NodeView, inputs: readonly (Value | undefined)[], ctx: OpContext): Value[];
}

const registry = new Map<string, OpExecutor[]>();

function key(domain: string, opType: string): string {
  return `${domain}::${opType}`;
}

/** Register executors (later registrations of the same op type and version replace earlier ones). */
export function registerOps(...execs: OpExecutor[]): void {
  for (const e of execs) {
    const k = key(e.domain ?? '', e.opType);
    const list = (registry.get(k) ?? []).filter((x) => (x.sinceVersion ?? 1) !== (e.sinceVersion ?? 1));
    list.push(e);
    list.sort((a, b) => (b.sinceVersion ?? 1) - (a.sinceVersion ?? 1));
    registry.set(k, list);
  }
}

/** The executor for an op at an opset version, or undefined. */
export function lookupOp(domain: string, opType: string, opset: number): OpExecutor | undefined {
  const list = registry.get(key(domain, opType));
  return list?.find((e) => (e.sinceVersion ?? 1) <= opset);
}

/** Every registered (domain, op type), sorted. */
export function registeredOps(): Array<{ domain: string; opType: string; versions: number[] }> {
  const out: Array<{ domain: string; opType: string; versions: number[] }> = [];
  for (const list of registry.values()) {
    const e = list[0];
    out.push({ domain: e.domain ?? '', opType: e.opType, versions: list.map((x) => x.sinceVersion ?? 1).sort((a, b) => a - b) });
  }
  return out.sort((a, b) => (a.domain + a.opType).localeCompare(b.domain + b.opType));
}
