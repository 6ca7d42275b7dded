/**
 * LSTM (ONNX semantics): gate order i, o, f, c; B = [Wb, Rb]; optional sequence_lens, initial_h,
 * initial_c, peepholes P = [Pi, Po, Pf]; directions forward / reverse / bidirectional; layout 0
 * (X [seq, batch, input], Y [seq, dirs, batch, hidden]) and layout 1 (batch first).
 * Padded steps (t ≥ sequence_lens[b]) keep the state and output zeros, as onnxruntime does.
 */
import * as tf from '@tensorflow/tfjs';
import type { NodeView } from '../node.js';
import { registerOps, type OpContext, type OpExecutor, type Value } from '../registry.js';
import { required } from './util.js';

const ACTIVATIONS: Record<string, (x: tf.Tensor) => tf.Tensor> = {
  sigmoid: (x) => tf.sigmoid(x),
  tanh: (x) => tf.tanh(x),
  relu: (x) => tf.relu(x),
};

function directions(node: NodeView): Array<'forward' | 'reverse'> {
  const d = node.string('direction', 'forward');
  if (d === 'forward') return ['forward'];
  if (d === 'reverse') return ['reverse'];
  if (d === 'bidirectional') return ['forward', 'reverse'];
  throw node.error(`direction="${d}" is unknown`, 'use forward, reverse or bidirectional');
}

function activations(node: NodeView): Array<(x: tf.Tensor) => tf.Tensor> {
  const dirs = directions(node).length;
  const names = node.strings('activations') ?? [];
  const list = names.length === 0 ? Array<string>(dirs).fill('Sigmoid,Tanh,Tanh').join(',').split(',') : names;
  if (list.length !== 3 * dirs) {
    throw node.error(`activations lists ${list.length} functions, ${3 * dirs} expected`, 'give f, g, h per direction');
  }
  return list.map((n) => {
    const f = ACTIVATIONS[n.toLowerCase()];
    if (!f) throw node.error(`activation ${n} is not supported`, 'supported LSTM activations: Sigmoid, Tanh, Relu');
    return f;
  });
}

function f32(t: tf.Tensor): tf.Tensor {
  return t.dtype === 'float32' ? t : tf.cast(t, 'float32');
}

function lstm(node: NodeView, inputs: readonly (Value | undefined)[], ctx: OpContext): tf.Tensor[] {
  const layout = node.int('layout', 0);
  let x = f32(ctx.tensor(required(node, inputs[0], 0)));
  if (layout === 1) x = tf.transpose(x, [1, 0, 2]);
  const [seq, batch, inSize] = x.shape as number[];
  const w = f32(ctx.tensor(required(node, inputs[1], 1)));
  const r = f32(ctx.tensor(required(node, inputs[2], 2)));
  const hidden = (r.shape as number[])[2];
  const dirs = directions(node);
  const acts = activations(node);
  const clip = node.float('clip');
  const b = inputs[3] === undefined ? undefined : f32(ctx.tensor(inputs[3]));
  const lens = inputs[4] === undefined ? undefined : Array.from(ctx.host(inputs[4]).data);
  let h0 = inputs[5] === undefined ? undefined : f32(ctx.tensor(inputs[5]));
  let c0 = inputs[6] === undefined ? undefined : f32(ctx.tensor(inputs[6]));
  const p = inputs[7] === undefined ? undefined : f32(ctx.tensor(inputs[7]));
  if (layout === 1) {
    if (h0) h0 = tf.transpose(h0, [1, 0, 2]);
    if (c0) c0 = tf.transpose(c0, [1, 0, 2]);
  }
  // Per-step masks [batch, 1] (1 = real step) when sequence lengths are given.
  const masks = lens
    ? Array.from({ length: seq }, (_, t) => tf.tensor2d(lens.map((l) => (t < l ? 1 : 0)), [batch, 1], 'float32'))
    : undefined;
  const xFlat = tf.reshape(x, [seq * batch, inSize]);
  const ys: tf.Tensor[] = [];
  const yh: tf.Tensor[] = [];
  const yc: tf.Tensor[] = [];
  dirs.forEach((dir, d) => {
    const [fAct, gAct, hAct] = acts.slice(3 * d, 3 * d + 3);
    const wT = tf.transpose(tf.squeeze(tf.slice(w, [d, 0, 0], [1, 4 * hidden, inSize]), [0]));
    const rT = tf.transpose(tf.squeeze(tf.slice(r, [d, 0, 0], [1, 4 * hidden, hidden]), [0]));
    let proj = tf.matMul(xFlat, wT);
    if (b) {
      const bd = tf.squeeze(tf.slice(b, [d, 0], [1, 8 * hidden]), [0]);
      proj = tf.add(proj, tf.add(tf.slice(bd, [0], [4 * hidden]), tf.slice(bd, [4 * hidden], [4 * hidden])));
    }
    const steps = tf.unstack(tf.reshape(proj, [seq, batch, 4 * hidden]));
    let pi: tf.Tensor | undefined;
    let po: tf.Tensor | undefined;
    let pf: tf.Tensor | undefined;
    if (p) {
      const pd = tf.squeeze(tf.slice(p, [d, 0], [1, 3 * hidden]), [0]);
      [pi, po, pf] = tf.split(pd, 3);
    }
    let h = h0 ? tf.squeeze(tf.slice(h0, [d, 0, 0], [1, batch, hidden]), [0]) : tf.zeros([batch, hidden]);
    let c = c0 ? tf.squeeze(tf.slice(c0, [d, 0, 0], [1, batch, hidden]), [0]) : tf.zeros([batch, hidden]);
    const out = new Array<tf.Tensor>(seq);
    const order = dir === 'forward' ? [...Array(seq).keys()] : [...Array(seq).keys()].reverse();
    for (const t of order) {
      let gates = tf.add(steps[t], tf.matMul(h, rT));
      if (clip !== undefined) gates = tf.clipByValue(gates, -clip, clip);
      let [gi, go, gf, gc] = tf.split(gates, 4, 1);
      if (pi && pf) {
        gi = tf.add(gi, tf.mul(pi, c));
        gf = tf.add(gf, tf.mul(pf, c));
      }
      const i = fAct(gi);
      const f = fAct(gf);
      const cNew = tf.add(tf.mul(f, c), tf.mul(i, gAct(gc)));
      if (po) go = tf.add(go, tf.mul(po, cNew));
      const hNew = tf.mul(fAct(go), hAct(cNew));
      if (masks) {
        const m = masks[t];
        const keep = tf.sub(1, m);
        h = tf.add(tf.mul(m, hNew), tf.mul(keep, h));
        c = tf.add(tf.mul(m, cNew), tf.mul(keep, c));
        out[t] = tf.mul(m, hNew);
      } else {
        h = hNew;
        c = cNew;
        out[t] = hNew;
      }
    }
    ys.push(tf.stack(out));
    yh.push(h);
    yc.push(c);
  });
  let y = tf.stack(ys, 1); // [seq, dirs, batch, hidden]
  let hOut = tf.stack(yh); // [dirs, batch, hidden]
  let cOut = tf.stack(yc);
  if (layout === 1) {
    y = tf.transpose(y, [2, 0, 1, 3]);
    hOut = tf.transpose(hOut, [1, 0, 2]);
    cOut = tf.transpose(cOut, [1, 0, 2]);
  }
  return [y, hOut, cOut];
}

const lstmOp: OpExecutor = {
  opType: 'LSTM',
  sinceVersion: 7,
  check: (node) => {
    directions(node);
    activations(node);
    if (node.int('input_forget', 0) !== 0) {
      throw node.error('input_forget=1 (coupled input/forget gates) is not supported', 'export the LSTM without coupled gates');
    }
    const layout = node.int('layout', 0);
    if (layout !== 0 && layout !== 1) throw node.error(`layout=${layout} is invalid`, 'layout must be 0 or 1');
  },
  run: (node, inputs, ctx) => lstm(node, inputs, ctx),
};

registerOps(lstmOp);
