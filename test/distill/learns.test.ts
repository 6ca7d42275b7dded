/**
 * Distillation learns, on a small synthetic task (seconds, fixed seeds):
 *
 * Sentences of random tokens 5 … 24; every token in 5 … 10 is a one-token entity (B-X), the rest O.
 * The hard labels have an annotation blind spot: token 10 is always labelled O. The teacher knows
 * better (its logits favour the true label by a margin of 4). The facts checked: the training loss
 * falls; the trained student's F1 on clean held-out sentences rises far above the untrained
 * student's; and a student distilled from the teacher (marginal KD, also emission KD) beats the same
 * student trained on the hard labels alone — which, by construction, can never learn token 10.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/autodiff/backend.js';
import { makeBatch, type TransferItem } from '../../src/distill/batches.js';
import type { KdLossName } from '../../src/distill/loss.js';
import { createStudent, type Student, type StudentSpec } from '../../src/distill/students.js';
import { trainStudent, type TrainResult } from '../../src/distill/train.js';
import { viterbiDecode } from '../../src/ner/viterbi.js';
import { mulberry32 } from '../../src/runtime/bench.js';

const SPECIAL = { cls: 2, sep: 3, pad: 0 };
const LABELS = ['O', 'B-X', 'I-X'];
const L = 3;
const BLIND = 10;

function sentences(count: number, seed: number): Int32Array[] {
  const r = mulberry32(seed);
  return Array.from({ length: count }, () => Int32Array.from({ length: 5 + Math.floor(r() * 6) }, () => 5 + Math.floor(r() * 20)));
}
const truth = (id: number): number => (id >= 5 && id <= BLIND ? 1 : 0);
const annotated = (id: number): number => (id === BLIND ? 0 : truth(id));

function items(sents: Int32Array[], withTeacher: boolean): TransferItem[] {
  return sents.map((ids, text) => ({
    ids,
    text,
    tags: Int32Array.from(ids, annotated),
    teacher: withTeacher ? Float32Array.from({ length: ids.length * L }, (_, k) => (truth(ids[Math.floor(k / L)]) === k % L ? 4 : 0)) : undefined,
  }));
}

/** Entity F1 against the true labels (one-token entities: B-X positions), Viterbi over the student's CRF. */
function f1(student: Student, sents: Int32Array[]): number {
  const { input } = makeBatch(sents.map((ids, text) => ({ ids, text })), SPECIAL, L);
  const logits = student.forward(input);
  const lg = logits.dataSync();
  logits.dispose();
  const crf = student.crfParams(LABELS)!;
  let tp = 0;
  let pred = 0;
  let gold = 0;
  sents.forEach((ids, r) => {
    const rows = Array.from(ids, (_, t) => lg.slice((r * input.seq + 1 + t) * L, (r * input.seq + 2 + t) * L) as Float32Array);
    const tags = viterbiDecode(rows, crf);
    ids.forEach((id, t) => {
      const y = truth(id);
      if (tags[t] === 1) pred++;
      if (y === 1) gold++;
      if (tags[t] === 1 && y === 1) tp++;
    });
  });
  return pred + gold === 0 ? 0 : (2 * tp) / (pred + gold);
}

const SPEC: StudentSpec = { kind: 'bilstm-crf', vocabSize: 30, numLabels: L, embeddingDim: 8, hidden: 8, layers: 1, heads: 1, ffn: 8, maxPositions: 16, dropout: 0, crf: true };
const TRAIN = sentences(160, 1);
const DEV = sentences(80, 2);

async function train(alpha: number, kd: KdLossName): Promise<{ student: Student; result: TrainResult; before: number }> {
  const student = createStudent(SPEC, mulberry32(4));
  const before = f1(student, DEV);
  const result = await trainStudent(student, items(TRAIN, alpha > 0), SPECIAL, {
    loss: { alpha, temperature: 2, kd, hard: 'crf' },
    temperatureSchedule: 'constant',
    epochs: 12,
    lr: 0.05,
    weightDecay: 0,
    clipNorm: 5,
    warmupSteps: 5,
    batchTokens: 400,
    batchRows: 16,
    seed: 7,
  });
  return { student, result, before };
}

describe('distillation learns (synthetic task with an annotation blind spot)', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  const runs: Partial<Record<'hard' | KdLossName, { f1: number; before: number; result: TrainResult }>> = {};
  const run = async (name: 'hard' | KdLossName) => {
    if (!runs[name]) {
      const { student, result, before } = await train(name === 'hard' ? 0 : 0.9, name === 'hard' ? 'marginal' : name);
      runs[name] = { f1: f1(student, DEV), before, result };
      student.dispose();
    }
    return runs[name]!;
  };

  it('the loss falls and dev F1 rises well above the untrained student', async () => {
    const r = await run('marginal');
    const c = r.result.curve;
    expect(c.length).toBeGreaterThan(10);
    const head = c.slice(0, 3).reduce((s, p) => s + p.loss, 0) / 3;
    const tail = c.slice(-3).reduce((s, p) => s + p.loss, 0) / 3;
    expect(tail).toBeLessThan(0.5 * head);
    expect(c[c.length - 1].soft).toBeLessThan(c[0].soft);
    expect(r.before).toBeLessThan(0.6);
    expect(r.f1).toBeGreaterThan(r.before + 0.3);
  }, 60_000);

  /** The best F1 a student that never tags token 10 can reach on DEV (every other entity token found). */
  const ceiling = (() => {
    let found = 0;
    let gold = 0;
    for (const s of DEV) for (const id of s) if (truth(id)) (gold++, id !== BLIND && found++);
    return (2 * found) / (found + gold);
  })();

  it('hard labels alone cannot learn the blind spot: F1 stays at or below the blind-spot ceiling', async () => {
    const r = await run('hard');
    expect(ceiling).toBeGreaterThan(0.85);
    expect(ceiling).toBeLessThan(0.95);
    expect(r.f1).toBeGreaterThan(ceiling - 0.1);
    expect(r.f1).toBeLessThanOrEqual(ceiling + 1e-12);
  }, 60_000);

  it('marginal KD and emission KD both beat hard labels alone by a wide margin', async () => {
    const hard = await run('hard');
    const marginal = await run('marginal');
    const emission = await run('kl');
    expect(marginal.f1).toBeGreaterThan(Math.max(hard.f1, ceiling) + 0.04);
    expect(emission.f1).toBeGreaterThan(Math.max(hard.f1, ceiling) + 0.04);
    expect(marginal.f1).toBeGreaterThan(0.97);
  }, 90_000);
});
