/**
 * Training: seeded reproducibility (also of time-limited runs), and the exported ONNX of every student
 * kind giving the tfjs logits and entities in onnxruntime.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkText, makeBatch, type TransferItem } from '../../src/distill/batches.js';
import { findTokenEmbeddings } from '../../src/distill/init.js';
import { createStudent, STUDENT_DEFAULTS, type StudentKind, type StudentSpec } from '../../src/distill/students.js';
import { teacherLogits } from '../../src/distill/teacher.js';
import { trainStudent } from '../../src/distill/train.js';
import { tokenTagIds } from '../../src/ner/align.js';
import { readExamples } from '../../src/ner/data.js';
import { tagsToEntities } from '../../src/ner/decode.js';
import { LabelSet } from '../../src/ner/labels.js';
import { argmaxDecode, viterbiDecode } from '../../src/ner/viterbi.js';
import { decodeModel, encodeModel } from '../../src/onnx/codec.js';
import type { ModelFolder } from '../../src/onnx/types.js';
import { mulberry32 } from '../../src/runtime/bench.js';
import { Predictor } from '../../src/runtime/predict.js';
import { SPECIAL, workspace, type Workspace } from './helpers.js';
import { readFile } from 'node:fs/promises';

let ws: Workspace;
let teacher: ModelFolder;
let trainFile: string;
let devFile: string;
let tmp: string;
beforeAll(async () => {
  ws = await workspace();
  ({ teacher, trainFile, devFile, tmp } = ws);
});
afterAll(async () => {
  await ws.cleanup();
});

/** Items and a tiny student for direct training tests. */
async function setup(kind: StudentKind): Promise<{ items: TransferItem[]; spec: StudentSpec; labels: LabelSet }> {
  const labels = new LabelSet(teacher.labels);
  const data = (await readExamples(trainFile, { types: labels.types })).examples.slice(0, 40);
  const tl = await teacherLogits(teacher, data.map((e) => e.text), { cacheDir: null });
  const items = data.flatMap((ex, i) =>
    chunkText(i, tl.emissions[i].tokens.map((t) => t.id), 62, 7, labels, tl.emissions[i].logits, tokenTagIds(ex, tl.emissions[i].tokens, labels)),
  );
  const spec: StudentSpec = { kind, vocabSize: 400, numLabels: 7, ...STUDENT_DEFAULTS[kind], embeddingDim: 12, hidden: kind === 'transformer' ? 16 : 10, ffn: 24, heads: 2, layers: kind === 'transformer' ? 1 : 2, maxPositions: 64 };
  return { items, spec, labels };
}


describe('training', () => {
  it('is reproducible: the same seed gives bit-identical weights, another seed does not', async () => {
    const { items, spec } = await setup('bilstm-crf');
    const run = async (seed: number) => {
      const st = createStudent(spec, mulberry32(seed));
      await trainStudent(st, items, SPECIAL, {
        loss: { alpha: 0.7, temperature: 4, kd: 'kl', hard: 'crf' },
        temperatureSchedule: 'linear',
        epochs: 1,
        maxSteps: 4,
        lr: 1e-2,
        weightDecay: 0.01,
        clipNorm: 1,
        batchTokens: 400,
        batchRows: 8,
        seed,
      });
      const w = st.params.map((p) => Array.from(p.variable.dataSync()));
      st.dispose();
      return w;
    };
    const a = await run(5);
    const b = await run(5);
    const c = await run(6);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('a time-limited run is reproduced by passing its plannedSteps as maxSteps', async () => {
    const { items, spec } = await setup('bilstm-crf');
    const common = {
      loss: { alpha: 0.7, temperature: 4, kd: 'kl', hard: 'crf' },
      temperatureSchedule: 'linear',
      epochs: 3,
      lr: 1e-2,
      weightDecay: 0.01,
      clipNorm: 1,
      batchTokens: 400,
      batchRows: 8,
      seed: 9,
    } as const;
    // a fake clock: 10 ms per reading, deadline after 400 ms → the budget is set a quarter of the way in
    let t = 0;
    const a = createStudent(spec, mulberry32(9));
    const ra = await trainStudent(a, items, SPECIAL, { ...common, deadline: 400, now: () => (t += 10) });
    expect(ra.stoppedBy).toBe('epochs');
    expect(ra.plannedSteps).toBe(ra.steps);
    const full = Math.round(3 * ra.steps / ra.epochs);
    expect(ra.plannedSteps).toBeLessThan(full); // the deadline shortened the schedule
    const b = createStudent(spec, mulberry32(9));
    const rb = await trainStudent(b, items, SPECIAL, { ...common, maxSteps: ra.plannedSteps });
    expect(rb.steps).toBe(ra.steps);
    expect(b.params.map((p) => Array.from(p.variable.dataSync()))).toEqual(a.params.map((p) => Array.from(p.variable.dataSync())));
    a.dispose();
    b.dispose();
  });

  for (const kind of ['bilstm-crf', 'bilstm', 'transformer'] as const) {
    it(`${kind}: onnxruntime on the exported model gives the tfjs logits (1e-4) and the same entities`, async () => {
      const { items, spec, labels } = await setup(kind);
      const st = createStudent(spec, mulberry32(1), { crf: spec.crf ? teacher.crf : undefined });
      const training = await trainStudent(st, items, SPECIAL, {
        loss: { alpha: 0.7, temperature: 4, kd: 'kl', hard: spec.crf ? 'crf' : 'ce' },
        temperatureSchedule: 'constant',
        epochs: 1,
        maxSteps: 3,
        lr: 1e-2,
        weightDecay: 0.01,
        clipNorm: 5,
        batchTokens: 600,
        batchRows: 16,
        seed: 1,
      });
      expect(training.steps).toBe(3);
      const dev = (await readExamples(devFile, { types: labels.types })).examples.filter((e) => e.text.length < 50).slice(0, 20);
      const p0 = await Predictor.open(teacher);
      const toks = dev.map((e) => p0.tokenizer.tokenize(e.text));
      await p0.close();
      // tfjs: one padded batch, Viterbi (or argmax) over positions 1..n, eval's span rules
      const { input } = makeBatch(toks.map((t, i) => ({ ids: Int32Array.from(t, (x) => x.id), text: i })), SPECIAL, 7);
      const logits = st.forward(input);
      const lg = logits.dataSync();
      logits.dispose();
      const crf = st.crfParams(teacher.labels);
      const dir = await mkdtemp(join(tmp, `ort-${kind}-`));
      await writeFile(join(dir, 'model.onnx'), encodeModel(st.toOnnx()));
      const folder: ModelFolder = { ...teacher, dir, onnxPath: join(dir, 'model.onnx'), extraFiles: [], crf };
      if (!crf) delete folder.crf;
      const p = await Predictor.open(folder);
      const ems = await p.emissions(dev.map((e) => e.text));
      const ents = await p.predict(dev.map((e) => e.text));
      await p.close();
      let maxDiff = 0;
      toks.forEach((t, i) => {
        const rows: Float32Array[] = [];
        for (let k = 0; k < t.length; k++) {
          const row = lg.slice((i * input.seq + 1 + k) * 7, (i * input.seq + 2 + k) * 7) as Float32Array;
          rows.push(row);
          for (let j = 0; j < 7; j++) maxDiff = Math.max(maxDiff, Math.abs(row[j] - ems[i].logits[k * 7 + j]));
        }
        const tags = crf ? viterbiDecode(rows, crf) : argmaxDecode(rows);
        expect(tagsToEntities(dev[i].text, t, tags, labels)).toEqual(ents[i]);
      });
      expect(maxDiff).toBeLessThan(1e-4);
      st.dispose();
    });
  }
});

describe('initialisation from the teacher', () => {
  it('finds the token-embedding table the input ids index', async () => {
    const model = decodeModel(await readFile(teacher.onnxPath));
    const e = findTokenEmbeddings(model, 400);
    expect(e).toMatchObject({ name: 'bert.embeddings.word_embeddings.weight', rows: 400, dim: 32 });
    expect(findTokenEmbeddings(model, 401)).toBeUndefined();
  });
});

