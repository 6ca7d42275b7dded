/**
 * Linear layers: MatMul/Gemm (and dynamically quantized MatMulInteger) with a weight initializer,
 * the weight Transpose/DequantizeLinear in front of it, its bias Add and flatten/un-flatten Reshapes.
 */
import { dimsOf } from '../tensor.js';
import type { LinearRef, WeightLayout } from './types.js';
import { ShapeMatcher } from './shapes.js';
import { attrInt, attrInts, samePerm, type Node } from './graph.js';

export class LinearMatcher extends ShapeMatcher {
  /** A tensor that is a weight (initializer behind Transpose/DequantizeLinear). */
  weightLike(t0: string): boolean {
    const t = this.throughIdentity(t0);
    if (this.g.initializer(t)) return true;
    const p = this.g.producer(t);
    if (p && (p.opType === 'Transpose' || p.opType === 'DequantizeLinear')) return !!this.g.initializer(p.input?.[0]);
    return false;
  }


  /**
   * The tensor behind Identity nodes: torch.onnx.export keeps one initializer for a parameter several layers
   * share (ALBERT) and feeds every further use through an Identity of it.
   */
  throughIdentity(t: string): string {
    let cur = t;
    for (let i = 0; i < 16; i++) {
      const p = this.g.producer(cur);
      if (!p || p.opType !== 'Identity' || !p.input?.[0]) return cur;
      cur = p.input[0];
    }
    return cur;
  }

  resolveWeight(node: Node, t0: string): { name: string; dims: number[]; transpose?: Node; dequantize?: Node } {
    const t = this.throughIdentity(t0);
    const init = this.g.initializer(t);
    if (init) return { name: t, dims: dimsOf(init) };
    let p = this.g.producer(t);
    let transpose: Node | undefined;
    let dequantize: Node | undefined;
    if (p?.opType === 'Transpose') {
      const perm = attrInts(p, 'perm') ?? [1, 0];
      if (!samePerm(perm, [1, 0])) this.fail(p, `weight Transpose of ${this.g.ref(node)} has perm [${perm}], expected [1,0]`);
      transpose = p;
      p = this.g.producer(p.input?.[0]);
      const w = this.g.initializer(transpose.input?.[0]);
      if (w) return { name: transpose.input?.[0] ?? '', dims: dimsOf(w), transpose };
    }
    if (p?.opType === 'DequantizeLinear') {
      dequantize = p;
      const w = this.g.initializer(p.input?.[0]);
      if (w) return { name: p.input?.[0] ?? '', dims: dimsOf(w), transpose, dequantize };
    }
    this.fail(node, `the weight input "${t}" of ${node.opType} ${this.g.ref(node)} is not an initializer`);
  }

  /** Is this node a dense layer (MatMul/Gemm whose B is a weight)? */
  isLinearNode(n: Node): boolean {
    if (n.opType === 'MatMulInteger') return !!this.g.initializer(n.input?.[1]);
    if (n.opType !== 'MatMul' && n.opType !== 'Gemm') return false;
    const b = n.input?.[1];
    return !!b && this.weightLike(b);
  }

  describeLinear(node: Node): LinearRef {
    const op = node.opType as 'MatMul' | 'Gemm' | 'MatMulInteger';
    const w = this.resolveWeight(node, node.input?.[1] ?? '');
    if (w.dims.length !== 2) this.fail(node, `weight ${w.name} of ${this.g.ref(node)} has rank ${w.dims.length}, expected 2`);
    let stored: WeightLayout = 'in_out';
    if (op === 'Gemm') {
      if (attrInt(node, 'transA', 0) !== 0) this.fail(node, `Gemm ${this.g.ref(node)} has transA=1`);
      stored = attrInt(node, 'transB', 0) ? 'out_in' : 'in_out';
    }
    // A weight Transpose flips what the stored initializer means.
    const layout: WeightLayout = w.transpose ? (stored === 'in_out' ? 'out_in' : 'in_out') : stored;
    const [inFeatures, outFeatures] = layout === 'in_out' ? [w.dims[0], w.dims[1]] : [w.dims[1], w.dims[0]];
    const ref: LinearRef = {
      node: this.g.ref(node),
      op,
      weight: w.name,
      layout,
      inFeatures,
      outFeatures,
      input: node.input?.[0] ?? '',
      output: node.output?.[0] ?? '',
    };
    if (w.transpose) ref.weightTranspose = this.g.ref(w.transpose);
    if (w.dequantize) ref.weightDequantize = this.g.ref(w.dequantize);
    if (op === 'Gemm' && node.input?.[2]) {
      const c = node.input[2];
      if (!this.g.initializer(c)) this.fail(node, `bias input "${c}" of Gemm ${this.g.ref(node)} is not an initializer`);
      ref.bias = { node: ref.node, initializer: c };
    }
    if (op === 'MatMulInteger') {
      // ONNX Runtime's quantize_dynamic: y = Cast(MatMulInteger(DQL(x).y, W, DQL(x).zp, W_zp)) * (x_scale * W_scale)
      const q = this.g.producer(ref.input);
      const dq: Node[] = [];
      const cast = this.g.dataConsumers(ref.output);
      if (cast.length === 1 && cast[0].node.opType === 'Cast') {
        dq.push(cast[0].node);
        const mul = this.g.dataConsumers(cast[0].node.output?.[0] ?? '');
        if (mul.length === 1 && mul[0].node.opType === 'Mul') dq.push(mul[0].node);
      }
      if (dq.length !== 2) this.fail(node, `MatMulInteger ${this.g.ref(node)} is not followed by Cast and Mul (dequantization)`);
      ref.dynamicQuant = { dequantize: dq.map((n) => this.g.ref(n)) };
      if (q?.opType === 'DynamicQuantizeLinear') {
        ref.dynamicQuant.quantize = this.g.ref(q);
        ref.input = q.input?.[0] ?? '';
      }
      ref.output = dq[1].output?.[0] ?? '';
    }
    // Flatten to 2-D before (Reshape [-1, in]).
    const before = this.g.producer(ref.input);
    let flattened = false;
    if (before?.opType === 'Reshape') {
      const spec = this.shapeSpec(before);
      const rank = spec ? this.shapeRank(spec) : undefined;
      if (op === 'Gemm' || rank === 2) {
        ref.flatten = { before: this.g.ref(before) };
        ref.input = before.input?.[0] ?? '';
        flattened = true;
      }
    }
    if (op === 'Gemm') flattened = true;
    // Bias Add and un-flatten Reshape after, in either order.
    let out = ref.output;
    for (let step = 0; step < 3; step++) {
      // Look through single-consumer pass-through nodes (QDQ pairs) for the bias Add.
      let end = out;
      for (let k = 0; k < 3; k++) {
        const only = this.g.dataConsumers(end);
        if (only.length !== 1 || !this.isPass(only[0].node)) break;
        end = only[0].node.output?.[0] ?? '';
      }
      const cs = this.g.dataConsumers(end);
      if (cs.length !== 1) break;
      const c = cs[0].node;
      const other = c.input?.[0] === end ? c.input?.[1] : c.input?.[0];
      const b = c.opType === 'Add' && !ref.bias ? this.g.initializer(other) : undefined;
      const biasAdd = !!b && dimsOf(b).length === 1 && dimsOf(b)[0] === outFeatures;
      if (biasAdd) {
        ref.bias = { node: this.g.ref(c), initializer: other ?? '' };
        out = c.output?.[0] ?? '';
      } else if (end !== out) {
        break;
      } else if (c.opType === 'Reshape' && flattened && !ref.flatten?.after && c.input?.[0] === out) {
        const spec = this.shapeSpec(c);
        const rank = spec ? this.shapeRank(spec) : undefined;
        if (rank === 4) break; // that is a head split straight from 2-D, not an un-flatten
        ref.flatten = { ...ref.flatten, after: this.g.ref(c), ...(spec ? { afterShape: spec } : {}) };
        out = c.output?.[0] ?? '';
      } else break;
    }
    ref.output = out;
    return ref;
  }

  /** The dense layer whose output (after bias / un-flatten) is `t`. */
  linearEndingAt(t: string, role: string): LinearRef {
    let cur = t;
    for (let step = 0; step < 4; step++) {
      const p = this.g.producer(cur);
      if (!p) this.fail(`tensor:${t}`, `${role}: "${cur}" is not produced by a node (expected a MatMul/Gemm projection)`);
      if (this.isLinearNode(p)) {
        const lin = this.describeLinear(p);
        if (lin.output !== t) {
          this.fail(p, `${role}: unexpected nodes between projection ${lin.node} (output "${lin.output}") and "${t}"`);
        }
        return lin;
      }
      if (p.opType === 'Mul') {
        // The dequantizing Mul after Cast(MatMulInteger) (dynamic quantization).
        const viaCast = (p.input ?? []).find((x) => {
          const c = this.g.producer(x);
          const mi = c?.opType === 'Cast' ? this.g.producer(c.input?.[0]) : undefined;
          return mi?.opType === 'MatMulInteger' && this.isLinearNode(mi);
        });
        if (viaCast) {
          cur = viaCast;
          continue;
        }
      }
      if (p.opType === 'Add' || p.opType === 'Reshape' || this.isPass(p)) {
        const ins = (p.input ?? []).filter((x) => x);
        const data = p.opType === 'Add' ? ins.filter((x) => !this.g.isConstant(x)) : [ins[0]];
        if (data.length !== 1) this.fail(p, `${role}: expected a bias Add with one constant input at ${this.g.ref(p)}`);
        cur = data[0];
        continue;
      }
      this.fail(p, `${role}: expected a MatMul/Gemm projection but found ${p.opType} ${this.g.ref(p)}`);
    }
    this.fail(`tensor:${t}`, `${role}: no MatMul/Gemm projection found within 4 nodes of "${t}"`);
  }

  /** The dense layer fed (possibly through a flatten Reshape) by `t`. */
  linearFrom(t: string, role: string, exclude: Set<Node> = new Set()): LinearRef {
    const found: Node[] = [];
    const collect = (x: string, depth: number): void => {
      for (const { node: c, input } of this.g.dataConsumers(x)) {
        if (exclude.has(c) || input !== 0) continue;
        if (this.isLinearNode(c)) found.push(c);
        else if (depth < 3 && (c.opType === 'Reshape' || c.opType === 'DynamicQuantizeLinear' || this.isPass(c))) {
          collect(c.output?.[0] ?? '', depth + 1);
        }
      }
    };
    collect(t, 0);
    const uniq = [...new Set(found)];
    if (uniq.length === 0) {
      const p = this.g.producer(t);
      this.fail(p ?? `tensor:${t}`, `${role}: no MatMul/Gemm with a weight initializer consumes "${t}"`);
    }
    if (uniq.length > 1) {
      this.fail(uniq[1], `${role}: several projections consume "${t}" (${uniq.map((n) => this.g.ref(n)).join(', ')})`);
    }
    return this.describeLinear(uniq[0]);
  }

}
