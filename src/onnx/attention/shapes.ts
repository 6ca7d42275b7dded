/**
 * Shape expressions: Reshape target shapes (constant or Concat of parts), the element k places from
 * the end (head count / head size / all-head size), and small constant expressions evaluated from
 * known shapes (the 1/√d scale operand).
 */
import type { ConstantRef, NodeRef, ScaleOp, ShapeElementRef, ShapePart, ShapeSpec } from './types.js';
import { MatcherBase } from './graph.js';
import { attrInt, attrInts, type Node } from './graph.js';

export /** A Mul/Div on the attention path whose operand is yet to be evaluated. */
interface PendingScale {
  node: Node;
  op: 'Mul' | 'Div';
  on: 'q' | 'k' | 'scores';
  stage?: 'projection' | 'heads';
  data: string;
  operand: string;
}

/** Ops a scale operand may be computed with (from constants and Shape). */
const SHAPE_EXPR_OPS = new Set([
  'Shape',
  'Cast',
  'Identity',
  'Unsqueeze',
  'Squeeze',
  'Reshape',
  'Flatten',
  'Sqrt',
  'Reciprocal',
  'Neg',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Pow',
  'Slice',
  'Gather',
  'Concat',
  'Constant',
]);

export class ShapeMatcher extends MatcherBase {
  /** Is `t` computed from constants and tensor shapes only (no activation values)? */
  isShapeOnly(t: string, depth = 16): boolean {
    if (!t) return false;
    if (this.g.isConstant(t)) return true;
    if (depth <= 0) return false;
    const p = this.g.producer(t);
    if (!p || !SHAPE_EXPR_OPS.has(p.opType ?? '')) return false;
    if (p.opType === 'Shape') return true;
    return (p.input ?? []).every((x) => !x || this.isShapeOnly(x, depth - 1));
  }

  /** For a Mul/Div on the attention path: which input is the data and which the scale operand. */
  scaleOperand(p: Node): { data: string; operand: string } | undefined {
    const ins = p.input ?? [];
    if (ins.length !== 2) return undefined;
    if (p.opType === 'Div') {
      return this.isShapeOnly(ins[1]) && !this.isShapeOnly(ins[0]) ? { data: ins[0], operand: ins[1] } : undefined;
    }
    if (this.isShapeOnly(ins[1]) && !this.isShapeOnly(ins[0])) return { data: ins[0], operand: ins[1] };
    if (this.isShapeOnly(ins[0]) && !this.isShapeOnly(ins[1])) return { data: ins[1], operand: ins[0] };
    return undefined;
  }

  /**
   * Evaluate a small constant expression (constants, Shape of tensors whose shape is in `shapes`,
   * Slice/Gather/Concat/Cast/arithmetic). Unknown elements are `undefined`; `nodes` collects the nodes.
   */
  evalValues(t: string, shapes: Map<string, Array<number | undefined>>, nodes: Node[], depth = 0): Array<number | undefined> | undefined {
    const c = this.g.constant(t, 64);
    if (c) return c.value;
    const p = this.g.producer(t);
    if (!p || depth > 24) return undefined;
    nodes.push(p);
    const ins = p.input ?? [];
    const ev = (x: string | undefined): Array<number | undefined> | undefined =>
      x ? this.evalValues(x, shapes, nodes, depth + 1) : undefined;
    const op = p.opType ?? '';
    switch (op) {
      case 'Shape': {
        const s = shapes.get(ins[0]);
        if (!s) return undefined;
        const r = s.length;
        const norm = (x: number): number => Math.max(0, Math.min(r, x < 0 ? x + r : x));
        return s.slice(norm(attrInt(p, 'start', 0)), norm(attrInt(p, 'end', r)));
      }
      case 'Cast':
      case 'Identity':
      case 'Unsqueeze':
      case 'Squeeze':
      case 'Reshape':
      case 'Flatten':
        return ev(ins[0]);
      case 'Sqrt':
      case 'Reciprocal':
      case 'Neg': {
        const a = ev(ins[0]);
        const f = op === 'Sqrt' ? Math.sqrt : op === 'Reciprocal' ? (x: number) => 1 / x : (x: number) => -x;
        return a?.map((x) => (x === undefined ? undefined : f(x)));
      }
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div':
      case 'Pow': {
        const a = ev(ins[0]);
        const b = ev(ins[1]);
        if (!a || !b || (a.length !== b.length && a.length !== 1 && b.length !== 1)) return undefined;
        const n = Math.max(a.length, b.length);
        const f = (x: number, y: number): number =>
          op === 'Add' ? x + y : op === 'Sub' ? x - y : op === 'Mul' ? x * y : op === 'Div' ? x / y : x ** y;
        return Array.from({ length: n }, (_, i) => {
          const x = a[a.length === 1 ? 0 : i];
          const y = b[b.length === 1 ? 0 : i];
          return x === undefined || y === undefined ? undefined : f(x, y);
        });
      }
      case 'Slice': {
        const data = ev(ins[0]);
        const starts = ins.length >= 3 ? ev(ins[1]) : attrInts(p, 'starts');
        const ends = ins.length >= 3 ? ev(ins[2]) : attrInts(p, 'ends');
        const steps = ins[4] ? ev(ins[4]) : [1];
        if (!data || !starts || !ends || starts.length !== 1 || ends.length !== 1 || steps?.[0] !== 1) return undefined;
        const [s0, e0] = [starts[0], ends[0]];
        if (s0 === undefined || e0 === undefined) return undefined;
        const r = data.length;
        const norm = (x: number): number => Math.max(0, Math.min(r, x < 0 ? x + r : x));
        return data.slice(norm(s0), norm(e0));
      }
      case 'Gather': {
        const data = ev(ins[0]);
        const idx = ev(ins[1]);
        if (!data || !idx || attrInt(p, 'axis', 0) !== 0) return undefined;
        return idx.map((i) => (i === undefined ? undefined : data[i < 0 ? i + data.length : i]));
      }
      case 'Concat': {
        const parts = ins.map((x) => ev(x));
        return parts.every((x) => x) ? parts.flatMap((x) => x ?? []) : undefined;
      }
      default:
        return undefined;
    }
  }

  resolveScale(ps: PendingScale, shapes: Map<string, Array<number | undefined>>): ScaleOp {
    const constant = this.scalar(ps.operand);
    let value: number | undefined;
    const nodes: Node[] = [];
    if (constant) value = constant.value[0];
    else {
      const vals = this.evalValues(ps.operand, shapes, nodes);
      if (vals && vals.length > 0 && vals.every((x) => x !== undefined && x === vals[0])) value = vals[0];
    }
    if (value === undefined || !Number.isFinite(value) || value === 0) {
      this.fail(ps.node, `cannot evaluate the scale operand "${ps.operand}" of ${ps.op} ${this.g.ref(ps.node)}`);
    }
    const op: ScaleOp = {
      node: this.g.ref(ps.node),
      op: ps.op,
      on: ps.on,
      ...(ps.stage ? { stage: ps.stage } : {}),
      tensor: ps.operand,
      value,
      factor: ps.op === 'Div' ? 1 / value : value,
    };
    if (constant) op.constant = constant;
    else op.computedBy = [...new Set(nodes)].sort((a, b) => this.g.position(a) - this.g.position(b)).map((n) => this.g.ref(n));
    return op;
  }

  shapeRank(spec: ShapeSpec): number | undefined {
    if (spec.kind === 'constant') return spec.constant.value.length;
    let r = 0;
    for (const p of spec.parts) {
      if (p.length === undefined) return undefined;
      r += p.length;
    }
    return r;
  }


  /** Follow Unsqueeze/Cast/Identity/Squeeze/Reshape back to a constant. */
  constantThrough(t: string): { constant: ConstantRef; via: NodeRef[] } | undefined {
    const via: NodeRef[] = [];
    let cur = t;
    for (let i = 0; i < 4; i++) {
      const c = this.g.constant(cur, 64);
      if (c) return { constant: c, via: via.reverse() };
      const p = this.g.producer(cur);
      if (!p || !['Unsqueeze', 'Squeeze', 'Cast', 'Identity', 'Reshape'].includes(p.opType ?? '')) return undefined;
      via.push(this.g.ref(p));
      cur = p.input?.[0] ?? '';
    }
    return undefined;
  }

  shapeSpec(reshape: Node): ShapeSpec | undefined {
    const t = reshape.input?.[1];
    if (!t) return undefined;
    const c = this.g.constant(t, 64);
    if (c) return { kind: 'constant', constant: c };
    const p = this.g.producer(t);
    if (!p || p.opType !== 'Concat') return undefined;
    const parts: ShapePart[] = (p.input ?? []).map((x, i) => {
      const part: ShapePart = { input: i, tensor: x, via: [] };
      const ct = this.constantThrough(x);
      if (ct) {
        part.constant = ct.constant;
        part.via = ct.via;
        part.length = ct.constant.value.length;
      } else {
        const q = this.g.producer(x);
        if (q?.opType === 'Unsqueeze') {
          const axes = attrInts(q, 'axes') ?? this.g.constant(q.input?.[1], 8)?.value;
          if (axes && axes.length === 1) part.length = 1; // Unsqueeze of a scalar (Gather of a Shape)
        }
      }
      return part;
    });
    return { kind: 'concat', concat: this.g.ref(p), parts };
  }

  /** The element `k` places from the end of a target shape (k = 1: last). */
  elementFromEnd(reshape: Node, spec: ShapeSpec, k: number, what: string): ShapeElementRef {
    if (spec.kind === 'constant') {
      const v = spec.constant.value;
      if (v.length < k) this.fail(reshape, `target shape of ${this.g.ref(reshape)} has ${v.length} elements; no ${what}`);
      return { value: v[v.length - k], constant: spec.constant, index: v.length - k };
    }
    let remaining = k;
    for (let i = spec.parts.length - 1; i >= 0; i--) {
      const part = spec.parts[i];
      if (part.length === undefined) {
        this.fail(spec.concat, `cannot locate the ${what} in Concat ${spec.concat}: input ${i} ("${part.tensor}") has unknown length`);
      }
      if (remaining <= part.length) {
        if (!part.constant) {
          this.fail(spec.concat, `the ${what} in Concat ${spec.concat} (input ${i}, "${part.tensor}") is not a constant`);
        }
        return {
          value: part.constant.value[part.length - remaining],
          constant: part.constant,
          index: part.length - remaining,
          concat: spec.concat,
          concatInput: i,
          via: part.via,
        };
      }
      remaining -= part.length;
    }
    this.fail(spec.concat, `Concat ${spec.concat} has fewer than ${k} elements; no ${what}`);
  }

  requireShape(reshape: Node, rank: number, what: string): ShapeSpec {
    const spec = this.shapeSpec(reshape);
    if (!spec) {
      const p = this.g.producer(reshape.input?.[1]);
      this.fail(
        p ?? reshape,
        `target shape of ${what} Reshape ${this.g.ref(reshape)} is ${p ? `computed by ${p.opType} ${this.g.ref(p)}` : 'not constant'}; expected a constant or a Concat`,
      );
    }
    const r = this.shapeRank(spec);
    if (r !== undefined && r !== rank) {
      this.fail(reshape, `${what} Reshape ${this.g.ref(reshape)} has a rank-${r} target, expected rank ${rank}`);
    }
    return spec;
  }

}
