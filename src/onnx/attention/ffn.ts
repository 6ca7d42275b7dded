/**
 * Residual Adds, LayerNorms (LayerNormalization or PyTorch's decomposed form) and the feed-forward
 * block (intermediate dense → activation → output dense) after an attention block.
 */
import type { ActivationKind, FfnBlock, LayerNormRef } from './types.js';
import { LinearMatcher } from './linear.js';
import { attr, attrFloat, type Node } from './graph.js';

export class FfnMatcher extends LinearMatcher {

  residualAfter(t: string): { node: Node; skip: string } | undefined {
    let cur = t;
    for (let step = 0; step < 4; step++) {
      const cs = this.g.dataConsumers(cur);
      for (const { node } of cs.filter((c) => c.node.opType === 'Add')) {
        const ins = node.input ?? [];
        if (ins.length === 2 && ins.every((x) => x && !this.g.isConstant(x))) {
          return { node, skip: ins[0] === cur ? ins[1] : ins[0] };
        }
      }
      if (cs.length !== 1 || !this.isPass(cs[0].node)) return undefined;
      cur = cs[0].node.output?.[0] ?? '';
    }
    return undefined;
  }

  layerNormAt(x: string): LayerNormRef | undefined {
    const cs = this.g.dataConsumers(x);
    const ln = cs.find((c) => c.node.opType === 'LayerNormalization' && c.input === 0)?.node;
    if (ln) {
      const ins = ln.input ?? [];
      return {
        kind: 'LayerNormalization',
        nodes: [this.g.ref(ln)],
        input: x,
        output: ln.output?.[0] ?? '',
        scale: ins[1] ?? '',
        ...(ins[2] ? { bias: ins[2] } : {}),
        epsilon: attrFloat(ln, 'epsilon', 1e-5),
      };
    }
    // Decomposed: mean = ReduceMean(x); d = Sub(x, mean); var = ReduceMean(Pow(d, 2)); y = d / Sqrt(var + eps) * γ + β
    const rm = cs.find((c) => c.node.opType === 'ReduceMean')?.node;
    if (!rm) return undefined;
    const sub = cs.find((c) => c.node.opType === 'Sub' && c.input === 0 && c.node.input?.[1] === rm.output?.[0])?.node;
    if (!sub) return undefined;
    const d = sub.output?.[0] ?? '';
    const dcs = this.g.dataConsumers(d).map((c) => c.node);
    const sq = dcs.find(
      (n) => (n.opType === 'Pow' && this.scalar(n.input?.[1] ?? '')?.value[0] === 2) || (n.opType === 'Mul' && n.input?.[0] === d && n.input?.[1] === d),
    );
    const div = dcs.find((n) => n.opType === 'Div' && n.input?.[0] === d);
    if (!sq || !div) return undefined;
    const one = (t: string, op: string): Node | undefined => {
      const list = this.g.dataConsumers(t).filter((c) => c.node.opType === op);
      return list.length === 1 ? list[0].node : undefined;
    };
    const rm2 = one(sq.output?.[0] ?? '', 'ReduceMean');
    const addEps = rm2 && one(rm2.output?.[0] ?? '', 'Add');
    const sqrt = addEps && one(addEps.output?.[0] ?? '', 'Sqrt');
    if (!rm2 || !addEps || !sqrt || div.input?.[1] !== sqrt.output?.[0]) return undefined;
    const epsT = addEps.input?.[0] === rm2.output?.[0] ? addEps.input?.[1] : addEps.input?.[0];
    const eps = this.scalar(epsT ?? '');
    const mul = one(div.output?.[0] ?? '', 'Mul');
    if (!mul) return undefined;
    const gamma = mul.input?.[0] === div.output?.[0] ? mul.input?.[1] : mul.input?.[0];
    if (!gamma || !this.g.initializer(gamma)) return undefined;
    const nodes = [rm, sub, sq, rm2, addEps, sqrt, div, mul];
    let output = mul.output?.[0] ?? '';
    let beta: string | undefined;
    const add = one(output, 'Add');
    if (add) {
      const b = add.input?.[0] === output ? add.input?.[1] : add.input?.[0];
      if (b && this.g.initializer(b)) {
        beta = b;
        nodes.push(add);
        output = add.output?.[0] ?? '';
      }
    }
    return {
      kind: 'decomposed',
      nodes: nodes.map((n) => this.g.ref(n)),
      input: x,
      output,
      scale: gamma,
      ...(beta ? { bias: beta } : {}),
      epsilon: eps ? eps.value[0] : NaN,
    };
  }

  activationKind(nodes: Node[]): ActivationKind {
    const ops = new Set(nodes.map((n) => n.opType ?? ''));
    if (ops.has('Gelu')) {
      const g = nodes.find((n) => n.opType === 'Gelu');
      const approx = g ? attr(g, 'approximate') : undefined;
      const s = approx?.s ? new TextDecoder().decode(approx.s) : 'none';
      return s === 'tanh' ? 'gelu-tanh' : 'gelu';
    }
    if (ops.has('FastGelu') || ops.has('BiasGelu')) return 'gelu-fast';
    if (ops.has('Erf')) return 'gelu-erf';
    if (ops.has('Tanh')) return 'gelu-tanh';
    if (ops.has('Sigmoid')) {
      const quick = nodes.some((n) => n.opType === 'Mul' && (n.input ?? []).some((x) => Math.abs((this.scalar(x ?? '')?.value[0] ?? 0) - 1.702) < 1e-3));
      return quick ? 'quick-gelu' : 'silu';
    }
    if (ops.has('Relu')) return 'relu';
    return 'unknown';
  }

  ffnFrom(start: string, hidden: number, exclude: Set<Node>): FfnBlock {
    const intermediate = this.linearFrom(start, 'FFN intermediate dense', exclude);
    if (intermediate.inFeatures !== hidden) {
      this.fail(intermediate.node, `FFN intermediate dense ${intermediate.node} has ${intermediate.inFeatures} inputs, expected ${hidden}`);
    }
    // Walk the activation forward until the next dense layer.
    const actNodes: Node[] = [];
    const seen = new Set<Node>();
    const frontier = [intermediate.output];
    const outs = new Set<Node>();
    while (frontier.length > 0) {
      const t = frontier.pop() ?? '';
      for (const { node: c, input } of this.g.dataConsumers(t)) {
        if (seen.has(c)) continue;
        seen.add(c);
        if (input === 0 && this.isLinearNode(c)) {
          outs.add(c);
          continue;
        }
        if ((c.opType === 'Reshape' || c.opType === 'DynamicQuantizeLinear') && input === 0) {
          const next = this.g.dataConsumers(c.output?.[0] ?? '').filter((x) => x.input === 0 && this.isLinearNode(x.node));
          if (next.length === 1) {
            outs.add(next[0].node);
            continue;
          }
        }
        if (['Softmax', 'ReduceMean', 'LayerNormalization', 'MatMul', 'Gemm'].includes(c.opType ?? '')) {
          this.fail(c, `FFN activation after ${intermediate.node} reaches ${c.opType} ${this.g.ref(c)}`);
        }
        actNodes.push(c);
        if (actNodes.length > 32) this.fail(c, `FFN activation after ${intermediate.node} is longer than 32 nodes`);
        for (const o of c.output ?? []) if (o) frontier.push(o);
      }
    }
    if (outs.size !== 1) {
      this.fail(intermediate.node, `FFN after ${intermediate.node}: expected one output dense, found ${outs.size}`);
    }
    const output = this.describeLinear([...outs][0]);
    if (output.inFeatures !== intermediate.outFeatures) {
      this.fail(output.node, `FFN output dense ${output.node} has ${output.inFeatures} inputs, intermediate has ${intermediate.outFeatures} outputs`);
    }
    actNodes.sort((a, b) => this.g.position(a) - this.g.position(b));
    const ffn: FfnBlock = {
      intermediate,
      activation: { kind: this.activationKind(actNodes), nodes: actNodes.map((n) => this.g.ref(n)), output: output.input },
      output,
    };
    const res = this.residualAfter(output.output);
    if (res) {
      ffn.residual = { node: this.g.ref(res.node), skip: res.skip };
      const ln = this.layerNormAt(res.node.output?.[0] ?? '');
      if (ln) ffn.layerNorm = ln;
    }
    return ffn;
  }

}
