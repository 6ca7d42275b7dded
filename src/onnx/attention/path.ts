/**
 * The attention path of one block: from a Softmax back through scale/mask/transposes to the QKᵀ
 * MatMul, along each of Q, K, V to its head split and projection (separate or fused), forward to the
 * context MatMul, the head merge and the output dense.
 */
import type { AttentionBlock, ConstantRef, FusedQkv, HeadBranch, LinearRef, MaskRef, NodeRef, ScaleInfo, ScalePlacement, SeparateQkv, SliceRef } from './types.js';
import { FfnMatcher } from './ffn.js';
import type { PendingScale } from './shapes.js';
import { attrInt, attrInts, composePerms, isLastTwoSwap, MatchError, samePerm, type Node } from './graph.js';

export class Matcher extends FfnMatcher {
  /** Does `t` come (through score-side ops) from a MatMul of two non-constant tensors? */
  reachesScores(t: string, depth = 12): boolean {
    if (depth <= 0) return false;
    const p = this.g.producer(t);
    if (!p) return false;
    const op = p.opType ?? '';
    if (op === 'MatMul' || op === 'Einsum') {
      const ins = (p.input ?? []).filter((x) => x);
      return ins.length === 2 && ins.every((x) => !this.g.isConstant(x) && !this.weightLike(x));
    }
    if (this.isPass(p) || op === 'Transpose') return this.reachesScores(p.input?.[0] ?? '', depth - 1);
    if (['Add', 'Sub', 'Mul', 'Div', 'Where'].includes(op)) {
      return (p.input ?? []).some((x) => x && !this.g.isConstant(x) && this.reachesScores(x, depth - 1));
    }
    return false;
  }


  traceScores(t: string): {
    matmul: Node;
    swapped: boolean;
    transposes: Node[];
    scale: PendingScale[];
    masks: MaskRef[];
  } {
    let cur = t;
    let swapped = false;
    const transposes: Node[] = [];
    const scale: PendingScale[] = [];
    const masks: MaskRef[] = [];
    for (let step = 0; step < 16; step++) {
      const p = this.g.producer(cur);
      if (!p) this.fail(`tensor:${cur}`, `attention scores "${cur}" are not produced by a node`);
      const op = p.opType ?? '';
      const ins = p.input ?? [];
      if (this.isPass(p)) {
        cur = ins[0];
      } else if (op === 'MatMul') {
        return { matmul: p, swapped, transposes: transposes.reverse(), scale: scale.reverse(), masks: masks.reverse() };
      } else if (op === 'Einsum') {
        this.fail(p, `attention scores come from Einsum ${this.g.ref(p)}; only MatMul attention is supported`);
      } else if (op === 'Transpose') {
        const perm = attrInts(p, 'perm') ?? [];
        if (!isLastTwoSwap(perm)) this.fail(p, `Transpose ${this.g.ref(p)} on the scores has perm [${perm}]`);
        swapped = !swapped;
        transposes.push(p);
        cur = ins[0];
      } else if (op === 'Mul' || op === 'Div') {
        const so = this.scaleOperand(p);
        if (!so) this.fail(p, `${op} ${this.g.ref(p)} on the scores is not by a constant`);
        scale.push({ node: p, op, on: 'scores', ...so });
        cur = so.data;
      } else if (op === 'Add' || op === 'Sub' || op === 'Where') {
        const cands = op === 'Where' ? [1, 2] : [0, 1];
        const hits = cands.filter((i) => ins[i] && this.reachesScores(ins[i]));
        if (hits.length !== 1) {
          this.fail(p, `cannot tell the scores from the mask at ${op} ${this.g.ref(p)}`);
        }
        if (op === 'Sub' && hits[0] !== 0) this.fail(p, `Sub ${this.g.ref(p)} subtracts the scores`);
        const maskInput = op === 'Where' ? ins[0] : ins[hits[0] === 0 ? 1 : 0];
        masks.push({ node: this.g.ref(p), op, input: maskInput });
        cur = ins[hits[0]];
      } else {
        this.fail(p, `unexpected ${op} ${this.g.ref(p)} between the QKᵀ MatMul and Softmax`);
      }
    }
    this.fail(`tensor:${t}`, 'no QKᵀ MatMul within 16 nodes of the Softmax');
  }

  /** From the QKᵀ / context MatMul input back to the projection. */
  traceBranch(
    t: string,
    role: 'q' | 'k' | 'v',
  ): {
    branch: HeadBranch;
    splitNode: Node;
    /** Nodes from the split Reshape (excluded) to the MatMul, in graph order. */
    chain: Node[];
    scale: PendingScale[];
    source: { kind: 'linear'; linear: LinearRef } | { kind: 'part'; node: Node; output: number };
  } {
    const name = role.toUpperCase();
    const transposes: Node[] = [];
    const scale: PendingScale[] = [];
    const chain: Node[] = [];
    let cur = t;
    let split: Node | undefined;
    const scaleAt = (p: Node, stage: 'projection' | 'heads'): string => {
      const op = p.opType as 'Mul' | 'Div';
      const so = this.scaleOperand(p);
      if (!so || role === 'v') this.fail(p, `${name}: ${op} ${this.g.ref(p)} is not a scale by a constant`);
      scale.push({ node: p, op, on: role, stage, ...so });
      return so.data;
    };
    for (let step = 0; step < 12 && !split; step++) {
      const p = this.g.producer(cur);
      if (!p) this.fail(`tensor:${cur}`, `${name}: "${cur}" is not produced by a node`);
      const op = p.opType ?? '';
      if (op !== 'Reshape') chain.push(p);
      if (this.isPass(p)) cur = p.input?.[0] ?? '';
      else if (op === 'Transpose') {
        transposes.push(p);
        cur = p.input?.[0] ?? '';
      } else if (op === 'Mul' || op === 'Div') cur = scaleAt(p, 'heads');
      else if (op === 'Reshape') split = p;
      else this.fail(p, `${name}: expected the head-split Reshape but found ${op} ${this.g.ref(p)}`);
    }
    if (!split) this.fail(`tensor:${t}`, `${name}: no head-split Reshape found`);
    transposes.reverse();
    chain.reverse();
    const perms = transposes.map((n) => attrInts(n, 'perm') ?? []);
    const spec = this.requireShape(split, 4, `${name} head-split`);
    const branch: HeadBranch = {
      split: {
        node: this.g.ref(split),
        shape: spec,
        heads: this.elementFromEnd(split, spec, 2, `${name} head count`),
        headSize: this.elementFromEnd(split, spec, 1, `${name} head size`),
      },
      transposes: transposes.map((n, i) => ({ node: this.g.ref(n), perm: perms[i] })),
      perm: composePerms(perms),
    };
    if (perms.some((p) => p.length !== 4)) this.fail(transposes[0], `${name}: transposes are not rank 4`);
    // Before the split: scale, fused Split/Slice, or the projection.
    cur = split.input?.[0] ?? '';
    for (let step = 0; step < 8; step++) {
      const p = this.g.producer(cur);
      const op = p?.opType ?? '';
      if (p && this.isPass(p)) cur = p.input?.[0] ?? '';
      else if (p && (op === 'Mul' || op === 'Div') && this.scaleOperand(p)) {
        cur = scaleAt(p, 'projection');
      } else if (p && (op === 'Split' || op === 'Slice')) {
        branch.part = { node: this.g.ref(p), output: this.g.producerOutput(cur) };
        return { branch, splitNode: split, chain, scale, source: { kind: 'part', node: p, output: this.g.producerOutput(cur) } };
      } else break;
    }
    return { branch, splitNode: split, chain, scale, source: { kind: 'linear', linear: this.linearEndingAt(cur, name) } };
  }

  fusedQkv(parts: { q: Node; k: Node; v: Node }, outputs: { q: number; k: number; v: number }): FusedQkv {
    const { q, k, v } = parts;
    if (q.opType === 'Split') {
      if (k !== q || v !== q) this.fail(q, 'Q, K and V come from different Split nodes');
      const linear = this.linearEndingAt(q.input?.[0] ?? '', 'fused QKV');
      const axis = attrInt(q, 'axis', 0);
      const nOut = (q.output ?? []).length;
      let sizes: number[];
      let sizesFrom: 'input' | 'attribute' | 'equal';
      let sizesConstant: ConstantRef | undefined;
      if (q.input?.[1]) {
        sizesConstant = this.g.constant(q.input[1], 64);
        if (!sizesConstant) this.fail(q, `split sizes of ${this.g.ref(q)} are not constant`);
        sizes = sizesConstant.value;
        sizesFrom = 'input';
      } else if (attrInts(q, 'split')) {
        sizes = attrInts(q, 'split') ?? [];
        sizesFrom = 'attribute';
      } else {
        sizes = Array.from({ length: nOut }, () => linear.outFeatures / nOut);
        sizesFrom = 'equal';
      }
      const starts = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
      const range = (o: number): [number, number] => [starts[o], starts[o] + sizes[o]];
      return {
        kind: 'fused',
        linear,
        splitter: { op: 'Split', node: this.g.ref(q), axis, sizes, sizesFrom, ...(sizesConstant ? { sizesConstant } : {}) },
        ranges: { q: range(outputs.q), k: range(outputs.k), v: range(outputs.v) },
      };
    }
    // Three Slices of one tensor.
    const src = q.input?.[0];
    for (const s of [k, v]) {
      if (s.opType !== 'Slice' || s.input?.[0] !== src) this.fail(s, 'Q, K and V are not slices of one fused projection');
    }
    const linear = this.linearEndingAt(src ?? '', 'fused QKV');
    const slice = (s: Node): SliceRef => {
      const ins = s.input ?? [];
      let starts: ConstantRef | undefined;
      let ends: ConstantRef | undefined;
      let st: number[] | undefined;
      let en: number[] | undefined;
      let ax: number[] | undefined;
      if (ins.length >= 3) {
        starts = this.g.constant(ins[1], 8);
        ends = this.g.constant(ins[2], 8);
        st = starts?.value;
        en = ends?.value;
        ax = ins[3] ? this.g.constant(ins[3], 8)?.value : st?.map((_, i) => i);
        const steps = ins[4] ? this.g.constant(ins[4], 8)?.value : undefined;
        if (steps && steps.some((x) => x !== 1)) this.fail(s, `Slice ${this.g.ref(s)} has steps ≠ 1`);
      } else {
        st = attrInts(s, 'starts');
        en = attrInts(s, 'ends');
        ax = attrInts(s, 'axes') ?? st?.map((_, i) => i);
      }
      if (!st || !en || !ax || st.length !== 1 || en.length !== 1 || ax.length !== 1) {
        this.fail(s, `Slice ${this.g.ref(s)} is not a constant single-axis slice`);
      }
      const n = linear.outFeatures;
      const clamp = (x: number): number => Math.max(0, Math.min(n, x < 0 ? x + n : x));
      return {
        node: this.g.ref(s),
        axis: ax[0],
        start: clamp(st[0]),
        end: clamp(en[0]),
        ...(starts ? { starts } : {}),
        ...(ends ? { ends } : {}),
      };
    };
    const slices = { q: slice(q), k: slice(k), v: slice(v) };
    return {
      kind: 'fused',
      linear,
      splitter: { op: 'Slice', slices },
      ranges: {
        q: [slices.q.start, slices.q.end],
        k: [slices.k.start, slices.k.end],
        v: [slices.v.start, slices.v.end],
      },
    };
  }


  block(softmax: Node, layer: number): AttentionBlock {
    const g = this.g;
    const sc = this.traceScores(softmax.input?.[0] ?? '');
    const [a, b] = [sc.matmul.input?.[0] ?? '', sc.matmul.input?.[1] ?? ''];
    const qT = this.traceBranch(sc.swapped ? b : a, 'q');
    const kT = this.traceBranch(sc.swapped ? a : b, 'k');
    const wantQ = sc.swapped ? [0, 2, 3, 1] : [0, 2, 1, 3];
    const wantK = sc.swapped ? [0, 2, 1, 3] : [0, 2, 3, 1];
    if (!samePerm(qT.branch.perm, wantQ)) {
      this.fail(qT.splitNode, `Q transposes compose to [${qT.branch.perm}], expected [${wantQ}]`);
    }
    if (!samePerm(kT.branch.perm, wantK)) {
      this.fail(kT.splitNode, `K transposes compose to [${kT.branch.perm}], expected [${wantK}]`);
    }

    // Context MatMul: probs · V.
    let probs = softmax.output?.[0] ?? '';
    let ctx: Node | undefined;
    for (let step = 0; step < 4 && !ctx; step++) {
      const cs = g.dataConsumers(probs);
      const mm = cs.find((c) => c.node.opType === 'MatMul' && c.input === 0);
      if (mm) ctx = mm.node;
      else {
        const pass = cs.find((c) => this.isPass(c.node));
        if (!pass) break;
        probs = pass.node.output?.[0] ?? '';
      }
    }
    if (!ctx) this.fail(softmax, `no context MatMul consumes the output of Softmax ${g.ref(softmax)}`);
    const vT = this.traceBranch(ctx.input?.[1] ?? '', 'v');
    if (!samePerm(vT.branch.perm, [0, 2, 1, 3])) {
      this.fail(vT.splitNode, `V transposes compose to [${vT.branch.perm}], expected [0,2,1,3]`);
    }

    // Projections.
    let qkv: SeparateQkv | FusedQkv;
    if (qT.source.kind === 'linear' && kT.source.kind === 'linear' && vT.source.kind === 'linear') {
      qkv = { kind: 'separate', q: qT.source.linear, k: kT.source.linear, v: vT.source.linear };
    } else if (qT.source.kind === 'part' && kT.source.kind === 'part' && vT.source.kind === 'part') {
      qkv = this.fusedQkv(
        { q: qT.source.node, k: kT.source.node, v: vT.source.node },
        { q: qT.source.output, k: kT.source.output, v: vT.source.output },
      );
    } else {
      this.fail(qT.splitNode, 'Q, K and V are neither three projections nor one fused projection');
    }
    const qLin = qkv.kind === 'separate' ? qkv.q : qkv.linear;
    const allOf = (role: 'q' | 'k' | 'v'): number =>
      qkv.kind === 'separate' ? qkv[role].outFeatures : qkv.ranges[role][1] - qkv.ranges[role][0];

    // Heads.
    const heads = (br: HeadBranch, all: number, name: string): [number, number] => {
      let h = br.split.heads.value;
      let d = br.split.headSize.value;
      if (h <= 0 && d > 0 && all % d === 0) h = all / d;
      if (d <= 0 && h > 0 && all % h === 0) d = all / h;
      if (h <= 0 || d <= 0) this.fail(br.split.node, `${name} head split ${br.split.node} gives neither head count nor head size`);
      if (h * d !== all) {
        this.fail(br.split.node, `${name} head split ${br.split.node} is ${h} heads × ${d}, but the projection has ${all} outputs`);
      }
      return [h, d];
    };
    const [hq, dq] = heads(qT.branch, allOf('q'), 'Q');
    const [hk, dk] = heads(kT.branch, allOf('k'), 'K');
    const [hv, dv] = heads(vT.branch, allOf('v'), 'V');
    if (hq !== hk || hq !== hv || dq !== dk || dq !== dv) {
      this.fail(qT.splitNode, `Q/K/V disagree on heads: Q ${hq}×${dq}, K ${hk}×${dk}, V ${hv}×${dv}`);
    }

    // Merge: Transpose(s) + Reshape after the context MatMul.
    let cur = ctx.output?.[0] ?? '';
    const mergeT: Node[] = [];
    let mergeR: Node | undefined;
    for (let step = 0; step < 6 && !mergeR; step++) {
      const cs = g.dataConsumers(cur);
      if (cs.length !== 1) this.fail(ctx, `context MatMul output "${cur}" has ${cs.length} consumers, expected 1`);
      const c = cs[0].node;
      if (c.opType === 'Transpose') mergeT.push(c);
      else if (c.opType === 'Reshape') mergeR = c;
      else if (!this.isPass(c)) this.fail(c, `expected the head-merge Transpose/Reshape, found ${c.opType} ${g.ref(c)}`);
      cur = c.output?.[0] ?? '';
    }
    if (!mergeR) this.fail(ctx, 'no head-merge Reshape after the context MatMul');
    const mergePerms = mergeT.map((n) => attrInts(n, 'perm') ?? []);
    const mergePerm = composePerms(mergePerms);
    if (!samePerm(mergePerm, [0, 2, 1, 3])) {
      this.fail(mergeT[0] ?? mergeR, `head-merge transposes compose to [${mergePerm}], expected [0,2,1,3]`);
    }
    const mergeSpec = this.shapeSpec(mergeR);
    if (!mergeSpec) this.fail(mergeR, `target shape of head-merge Reshape ${g.ref(mergeR)} is neither constant nor a Concat`);
    const mergeRank = this.shapeRank(mergeSpec);
    if (mergeRank !== undefined && mergeRank !== 3 && mergeRank !== 2) {
      this.fail(mergeR, `head-merge Reshape ${g.ref(mergeR)} has a rank-${mergeRank} target`);
    }
    const allHead = this.elementFromEnd(mergeR, mergeSpec, 1, 'all-head size');
    const all = hq * dq;
    if (allHead.value > 0 && allHead.value !== all) {
      this.fail(mergeR, `head-merge Reshape ${g.ref(mergeR)} writes ${allHead.value}, expected ${all}`);
    }

    const output = this.linearFrom(mergeR.output?.[0] ?? '', 'attention output dense');
    if (output.inFeatures !== all) {
      this.fail(output.node, `attention output dense ${output.node} has ${output.inFeatures} inputs, expected ${all}`);
    }

    // Scale: evaluate operands, knowing the shapes of the head tensors ([.., heads, headSize] after each split).
    const shapes = new Map<string, Array<number | undefined>>();
    for (const [br, tr, n] of [
      [qT.branch, qT, allOf('q')],
      [kT.branch, kT, allOf('k')],
      [vT.branch, vT, allOf('v')],
    ] as const) {
      const sp = br.split.shape.kind === 'constant' ? br.split.shape.constant.value : [];
      const known = (i: number): number | undefined => (sp.length === 4 && sp[i] > 0 ? sp[i] : undefined);
      shapes.set(tr.splitNode.input?.[0] ?? '', [known(0), known(1), n]);
      let shape: Array<number | undefined> = [known(0), known(1), hq, dq];
      shapes.set(tr.splitNode.output?.[0] ?? '', shape);
      for (const node of tr.chain) {
        if (node.opType === 'Transpose') {
          const perm = attrInts(node, 'perm') ?? [];
          const prev = shape;
          shape = perm.map((i) => prev[i]);
        }
        shapes.set(node.output?.[0] ?? '', shape);
      }
    }
    const ops = [...qT.scale, ...kT.scale, ...sc.scale].map((ps) => this.resolveScale(ps, shapes));
    const on = new Set(ops.map((o) => o.on));
    const placement: ScalePlacement =
      ops.length === 0
        ? 'none'
        : on.size === 1 && on.has('scores')
          ? 'scores'
          : on.size === 1 && on.has('q')
            ? 'q'
            : on.size === 1 && on.has('k')
              ? 'k'
              : on.size === 2 && on.has('q') && on.has('k')
                ? 'qk'
                : 'mixed';
    const factor = ops.reduce((p, o) => p * o.factor, 1);
    const scale: ScaleInfo = {
      placement,
      ops,
      factor,
      standard: Math.abs(factor * Math.sqrt(dq) - 1) < 1e-4,
    };

    const input = qLin.input;
    const block: AttentionBlock = {
      layer,
      numHeads: hq,
      headSize: dq,
      allHeadSize: all,
      hidden: qLin.inFeatures,
      input,
      qkv,
      q: qT.branch,
      k: kT.branch,
      v: vT.branch,
      scores: { matmul: g.ref(sc.matmul), swapped: sc.swapped, transposes: sc.transposes.map((n) => g.ref(n)) },
      scale,
      masks: sc.masks,
      softmax: { node: g.ref(softmax), axis: attrInt(softmax, 'axis', this.opset >= 13 ? -1 : 1) },
      context: { matmul: g.ref(ctx) },
      merge: {
        transposes: mergeT.map((n, i) => ({ node: g.ref(n), perm: mergePerms[i] })),
        perm: mergePerm,
        reshape: { node: g.ref(mergeR), shape: mergeSpec, allHeadSize: allHead },
      },
      output,
    };
    const res = this.residualAfter(output.output);
    let after = output.output;
    if (res) {
      block.residual = { node: g.ref(res.node), skip: res.skip };
      after = res.node.output?.[0] ?? '';
      const ln = this.layerNormAt(after);
      if (ln) {
        block.layerNorm = ln;
        after = ln.output;
      }
    }
    // FFN: best effort; a block without one is still a usable attention block.
    try {
      const exclude = new Set<Node>();
      block.ffn = this.ffnFrom(after, block.hidden, exclude);
    } catch (e) {
      if (!(e instanceof MatchError)) throw e;
      this.ffnFailure = { node: e.node, message: e.message };
    }
    return block;
  }

  ffnFailure: { node: NodeRef; message: string } | undefined;

  takeFfnFailure(): { node: NodeRef; message: string } | undefined {
    const f = this.ffnFailure;
    this.ffnFailure = undefined;
    return f;
  }

  isAttentionSoftmax(n: Node): boolean {
    return n.opType === 'Softmax' && ((n.domain ?? '') === '' || n.domain === 'ai.onnx') && this.reachesScores(n.input?.[0] ?? '');
  }
}
