/**
 * `pruneToTarget`: `ranerc prune --target-speedup X | --target-latency-ms T` on a model folder.
 *
 * 1. Cost model: latency of a head, an FFN neuron and a layer at --bench-seq × --bench-batch,
 *    measured once per machine and model shape on pruned variants (latency.ts, cached).
 * 2. Rounds (target-loop.ts): importance of every head and FFN neuron of the current model
 *    (importance.ts; CRF NLL, cross-entropy or KL to the original), a greedy choice of heads, FFN
 *    neuron blocks, layers' attention and whole layers by importance lost per millisecond saved
 *    (target.ts), the surgery (surgery.ts) checked against the gated model within 1e-4, optional
 *    recovery fine-tuning (finetuneModelFolder), then the original and the new model timed together
 *    and dev F1; until the measured speed-up meets the target, dev F1 falls below --min-f1, or the
 *    rounds run out.
 * 3. The chosen round is written to --out with a report (per-round table, F1-against-latency chart).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphError, InputError, UsageError } from '../errors.js';
import { finetuneModelFolder } from '../autodiff/train/finetune.js';
import { readExamples } from '../ner/data.js';
import { LabelSet } from '../ner/labels.js';
import { loadTokenizer } from '../ner/tokenizers/index.js';
import type { Example } from '../ner/types.js';
import { defaultOverlap } from '../ner/windows.js';
import { findAttentionBlocks, requireAttentionBlocks, type AttentionBlock } from '../onnx/attention.js';
import type { onnx } from '../onnx/codec.js';
import { loadModel } from '../onnx/external.js';
import { loadModelFolder, writeModelFolder } from '../onnx/folder.js';
import { countParameters } from '../onnx/graph.js';
import type { ModelFolder } from '../onnx/types.js';
import { newReport, ranercVersion } from '../report/environment.js';
import { summarizeData, summarizeModel } from '../report/models.js';
import type { Progress } from '../report/progress.js';
import type { Report } from '../report/schema.js';
import { benchRow, syntheticBenchInputs } from '../runtime/bench.js';
import { scoreFolder } from '../runtime/evaluate.js';
import type { F1Scores } from '../ner/types.js';
import { batchRows, defaultBatchTokens, scoringRows } from './data.js';
import { computeImportance, type ImportanceLoss, type LossTarget } from './importance.js';
import { measureCostModel } from './latency.js';
import { checkBatches, compareLatency, equivalenceCheck, EQUIVALENCE_TOLERANCE, modelHash, type LatencyComparison, type PruneFinetuneOptions, type PruneOptions } from './prune.js';
import './report.js';
import { gatedModel, pruneModel, type PrunePlan } from './surgery.js';
import { runTargetLoop } from './target-loop.js';
import { TARGET_CHART_FILE, targetChartSvg, type PruneTargetDetails, type TargetLayerRow, type TargetRoundRow } from './target-report.js';
import type { LayerScores, Selection } from './target.js';

/** Options shared with `pruneModelFolder` (documented there). */
type SharedPruneOptions = Pick<
  PruneOptions,
  | 'model' | 'labels' | 'vocab' | 'data' | 'out' | 'eval' | 'target' | 'importanceLoss' | 'skipUnknownTypes' | 'maxSentences'
  | 'maxLength' | 'overlap' | 'batchRows' | 'maxBatchTokens' | 'backend' | 'threads' | 'progress' | 'log'
>;

export interface PruneTargetOptions extends SharedPruneOptions {
  /** Wanted speed-up (original p50 ÷ pruned p50), or a p50 in ms; exactly one. */
  targetSpeedup?: number;
  targetLatencyMs?: number;
  /** Latency shape (default 128 tokens, batch 1). */
  seqLen?: number;
  batch?: number;
  /** Rounds planned to reach the target (default 3) and the most run (default rounds + 3). */
  rounds?: number;
  maxRounds?: number;
  /** Dev micro F1 floor in [0, 1] (needs `dev`). */
  minF1?: number;
  /** Labelled dev data: F1 per round (and recovery's checkpoint choice). */
  dev?: string;
  /** Recovery fine-tuning after every round (train data; dev is `dev`). */
  recovery?: Omit<PruneFinetuneOptions, 'dev'>;
  /** FFN neurons removed together (default: intermediate size ÷ 32, at least 8). */
  neuronBlock?: number;
  /** Timed seconds of the original and the round's model together, per round (default 6). */
  benchSeconds?: number;
  /** Timed seconds per variant of the cost model (default 3). */
  costSeconds?: number;
  /** Cost model cache folder (default ~/.cache/ranerc/latency); false: measure every time. */
  latencyCacheDir?: string | false;
}

export interface PruneTargetResult {
  outDir: string;
  details: PruneTargetDetails;
  report: Report<PruneTargetDetails, 'prune'>;
  chartSvg: string;
  /** F1 on `eval` of the original and of the written model. */
  f1?: { before: F1Scores; after: F1Scores };
}

const SILENT: Progress = { setTotal() {}, update() {}, stop() {}, visible: false };

/** The model of one round and where it stands against the original's layers. */
interface TState {
  model: onnx.IModelProto;
  blocks: AttentionBlock[];
  /** Block index → original layer. */
  layerOf: number[];
  /** Per original layer: original head ids and neuron ids still present. */
  headIds: number[][];
  neuronIds: number[][];
  removedLayers: number[];
  attentionOnly: number[];
  folder: ModelFolder;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function shapeOf(s: TState): { heads: number; neurons: number; layers: number } {
  return {
    heads: s.headIds.reduce((a, h) => a + h.length, 0),
    neurons: s.neuronIds.reduce((a, n) => a + n.length, 0),
    layers: s.headIds.filter((h, l) => !s.removedLayers.includes(l)).length,
  };
}

function checkTargetOptions(o: PruneTargetOptions): void {
  if ((o.targetSpeedup === undefined) === (o.targetLatencyMs === undefined)) {
    throw new UsageError('give exactly one of --target-speedup and --target-latency-ms', { hint: 'e.g. --target-speedup 1.33' });
  }
  if (o.targetSpeedup !== undefined && !(o.targetSpeedup >= 1)) throw new UsageError(`--target-speedup must be >= 1, got ${o.targetSpeedup}`, { hint: 'e.g. --target-speedup 1.33' });
  if (o.targetLatencyMs !== undefined && !(o.targetLatencyMs > 0)) throw new UsageError(`--target-latency-ms must be > 0, got ${o.targetLatencyMs}`, { hint: 'e.g. --target-latency-ms 80' });
  if (o.minF1 !== undefined && o.dev === undefined) throw new UsageError('--min-f1 needs --dev', { hint: 'pass --dev DEV.jsonl (labelled) to measure F1 after every round' });
  if (o.recovery && o.dev === undefined) throw new UsageError('recovery fine-tuning (--finetune) needs --dev', { hint: 'pass --finetune TRAIN.jsonl --dev DEV.jsonl' });
  const rounds = o.rounds ?? 3;
  if (!Number.isInteger(rounds) || rounds < 1) throw new UsageError(`--iterations must be an integer >= 1, got ${rounds}`, { hint: 'e.g. --iterations 3' });
  if (o.maxRounds !== undefined && !(Number.isInteger(o.maxRounds) && o.maxRounds >= rounds)) {
    throw new UsageError(`--max-rounds must be an integer >= --iterations (${rounds}), got ${o.maxRounds}`, { hint: `e.g. --max-rounds ${rounds + 3}` });
  }
}

/** Prune to a latency target (see the module comment). */
export async function pruneToTarget(opts: PruneTargetOptions): Promise<PruneTargetResult> {
  checkTargetOptions(opts);
  const log = opts.log ?? (() => {});
  const progress = opts.progress ?? (() => SILENT);
  const target: LossTarget = opts.target ?? 'gold';
  const folder = await loadModelFolder({ model: opts.model, labels: opts.labels, vocab: opts.vocab });
  const importanceLoss: ImportanceLoss = opts.importanceLoss ?? (folder.crf && target === 'gold' ? 'crf' : 'ce');
  if (importanceLoss === 'crf' && (target === 'predicted' || !folder.crf)) {
    throw new UsageError(target === 'predicted' ? '--importance-loss crf needs gold labels' : '--importance-loss crf needs crf.json in the model folder', {
      file: folder.onnxPath,
      hint: 'use --importance-loss kl (label-free) or ce',
    });
  }
  const original = (await loadModel(folder.onnxPath)).model;
  const origBlocks = requireAttentionBlocks(findAttentionBlocks(original), { needFfn: true, file: folder.onnxPath });
  if (origBlocks.some((b) => !b.ffn)) {
    throw new GraphError('pruning to a latency target needs every layer\'s FFN matched', { file: folder.onnxPath, hint: 'run `ranerc inspect` to see which FFN was not found' });
  }
  const L = origBlocks.length;
  const ffnSize = origBlocks.map((b) => b.ffn!.intermediate.outFeatures);
  const neuronBlock = opts.neuronBlock ?? Math.max(8, Math.round(Math.max(...ffnSize) / 32));
  const seqLen = Math.min(opts.seqLen ?? 128, folder.maxLength);
  const batch = opts.batch ?? 1;
  const rounds = opts.rounds ?? 3;
  const maxRounds = opts.maxRounds ?? rounds + 3;

  // data
  const labelSet = new LabelSet(folder.labels);
  const tokenizer = await loadTokenizer(folder);
  const read = await readExamples(opts.data, { types: labelSet.types, unknownTypes: target === 'predicted' || importanceLoss === 'kl' || opts.skipUnknownTypes ? 'skip' : 'error' });
  const examples = opts.maxSentences ? read.examples.slice(0, opts.maxSentences) : read.examples;
  const windowSize = (opts.maxLength ?? folder.maxLength) - 2;
  const overlap = opts.overlap ?? defaultOverlap(windowSize);
  const rows = scoringRows(examples, tokenizer, labelSet, { windowSize, overlap });
  const encoder = { layers: L, hidden: Math.max(...origBlocks.map((b) => b.hidden)), heads: Math.max(...origBlocks.map((b) => b.numHeads)), intermediate: Math.max(...ffnSize) };
  const longest = rows.reduce((m, r) => Math.max(m, r.ids.length), 0);
  const maxBatchTokens = opts.maxBatchTokens ?? defaultBatchTokens(encoder, Math.max(longest, 1), 4 * countParameters(original.graph ?? {}));
  const batches = batchRows(rows, { maxRows: opts.batchRows ?? 16, maxTokens: maxBatchTokens, padId: tokenizer.padId });
  if (batches.reduce((n, b) => n + b.tokens, 0) === 0) throw new InputError('the data has no tokens to score', { file: opts.data, hint: 'pass sentences the model can tokenize' });
  const check = checkBatches(batches, original, tokenizer.padId);
  let devExamples: Example[] | undefined;
  if (opts.dev) devExamples = (await readExamples(opts.dev, { types: labelSet.types, unknownTypes: opts.skipUnknownTypes ? 'skip' : 'error' })).examples;
  const wopts = { threads: opts.threads, windowSize, overlap };

  // cost model
  const modelSha = await modelHash(folder);
  const inputs = syntheticBenchInputs(tokenizer);
  const costBar = progress('cost model', 6);
  const cost = await measureCostModel(original, origBlocks, {
    modelSha256: modelSha,
    inputs,
    seqLen,
    batch,
    threads: opts.threads,
    seconds: opts.costSeconds,
    cacheDir: opts.latencyCacheDir,
    onProgress: (n) => costBar.update(n, 'rounds'),
    log,
  }).finally(() => costBar.stop());
  const cm = cost.model;
  log(`cost model: ${cm.base.toFixed(2)} ms + ${cm.perHead.toFixed(4)} ms/head + ${(cm.perNeuron * neuronBlock).toFixed(4)} ms per ${neuronBlock} neurons + ${cm.perLayer.toFixed(4)} ms/layer (rms ${cm.rmse.toFixed(3)} ms)`);

  const tmpRoot = await mkdtemp(join(tmpdir(), 'ranerc-prune-target-'));
  try {
    const initial: TState = {
      model: original,
      blocks: origBlocks,
      layerOf: range(L),
      headIds: origBlocks.map((b) => range(b.numHeads)),
      neuronIds: ffnSize.map(range),
      removedLayers: [],
      attentionOnly: [],
      folder,
    };
    const states = new Map<number, TState>([[0, initial]]);
    const info = new Map<number, Partial<TargetRoundRow>>();
    const at = (r: number): Partial<TargetRoundRow> => {
      let x = info.get(r);
      if (!x) info.set(r, (x = {}));
      return x;
    };
    let lastCmp: LatencyComparison | undefined;

    const result = await runTargetLoop<TState>(
      initial,
      {
        shape: shapeOf,
        async score(s, r): Promise<LayerScores[]> {
          const bar = progress(`importance ${r}`, batches.length);
          const t0 = performance.now();
          const imp = await computeImportance(s.model, s.blocks, batches, {
            target: importanceLoss === 'kl' ? 'predicted' : target,
            // KL to the original is flat at the original itself: round 1 of an unchanged model uses its own predictions
            loss: importanceLoss === 'kl' && s === initial ? 'ce' : importanceLoss,
            crf: s.folder.crf,
            reference: original,
            ffn: true,
            backend: opts.backend,
            onBatch: (done) => bar.update(done, 'batches'),
          }).finally(() => bar.stop());
          at(r).importanceSeconds = (performance.now() - t0) / 1000;
          return imp.heads.map((h, i) => ({ heads: h, neurons: imp.ffn?.[i] ?? [] }));
        },
        async apply(s, sel: Selection, r): Promise<TState> {
          const plan: PrunePlan = { heads: sel.heads, neurons: sel.neurons };
          const cut = pruneModel(s.model, s.blocks, plan, { allowEmptyLayers: true });
          const diff = await equivalenceCheck(cut.model, gatedModel(s.model, s.blocks, plan), check, opts.threads);
          if (!(diff <= EQUIVALENCE_TOLERANCE)) {
            throw new GraphError(`round ${r}: the pruned model's logits differ from the gated model's by ${diff} (limit ${EQUIVALENCE_TOLERANCE})`, {
              hint: 'this is a ranerc bug; nothing was written. Please report it with the model',
            });
          }
          const headIds = s.headIds.map((h) => [...h]);
          const neuronIds = s.neuronIds.map((n) => [...n]);
          const removedHeads: Array<[number, number]> = [];
          let removedNeurons = 0;
          s.blocks.forEach((_, i) => {
            const l = s.layerOf[i];
            for (const j of sel.heads[i]) removedHeads.push([l, s.headIds[l][j]]);
            headIds[l] = s.headIds[l].filter((_, j) => !sel.heads[i].includes(j));
            removedNeurons += sel.neurons[i].length;
            neuronIds[l] = s.neuronIds[l].filter((_, j) => !sel.neurons[i].includes(j));
          });
          const newLayers = sel.layers.map((i) => s.layerOf[i]);
          const newAttention = sel.attentionOnly.map((i) => s.layerOf[i]);
          const layerOf = s.layerOf.filter((_, i) => !cut.emptiedLayers.includes(i));
          const blocks = requireAttentionBlocks(findAttentionBlocks(cut.model), { needFfn: true, file: `${folder.onnxPath} (round ${r})` });
          if (blocks.length !== layerOf.length || blocks.some((b, i) => b.numHeads !== headIds[layerOf[i]].length)) {
            throw new GraphError(`round ${r}: the pruned graph does not have the expected heads per layer`, { hint: 'this is a ranerc bug; please report it with the model' });
          }
          log(`round ${r}: removed ${sel.steps.length} units (${removedHeads.length} heads, ${removedNeurons} neurons${newLayers.length ? `, layers ${newLayers.join(' ')}` : ''}${newAttention.length ? `, attention of ${newAttention.join(' ')}` : ''}), predicted −${sel.predictedMs.toFixed(2)} ms; check ${diff.toExponential(2)}`);
          const dir = join(tmpRoot, `round-${r}`);
          await writeModelFolder(dir, folder, cut.model, {
            crf: s.folder.crf ?? null,
            provenance: { ranerc: ranercVersion(), command: 'prune', createdAt: new Date().toISOString(), source: { path: folder.onnxPath, sha256: modelSha }, settings: { round: r } },
          });
          let next: TState = {
            model: cut.model,
            blocks,
            layerOf,
            headIds,
            neuronIds,
            removedLayers: [...s.removedLayers, ...newLayers],
            attentionOnly: [...s.attentionOnly, ...newAttention],
            folder: await loadModelFolder({ model: dir }),
          };
          const row = at(r);
          Object.assign(row, { removedHeads, removedNeurons, removedLayers: newLayers, attentionRemoved: newAttention, maxAbsDiff: diff, predictedSavingMs: sel.predictedMs });
          if (opts.recovery && opts.dev) {
            const bar = progress(`fine-tune ${r}`, 1);
            const ft = await finetuneModelFolder({
              ...opts.recovery,
              dev: opts.dev,
              model: dir,
              out: `${dir}-ft`,
              backend: opts.backend,
              threads: opts.threads,
              maxLength: opts.maxLength,
              overlap: opts.overlap,
              skipUnknownTypes: opts.skipUnknownTypes,
              log: (line) => log(`round ${r} fine-tune: ${line}`),
              onProgress: (p) => {
                bar.setTotal(p.totalSteps);
                bar.update(p.step, `steps, loss ${p.loss.toFixed(3)}`);
              },
            }).finally(() => bar.stop());
            const tuned = (await loadModel(ft.onnxPath)).model;
            const tunedBlocks = requireAttentionBlocks(findAttentionBlocks(tuned), { needFfn: true, file: ft.onnxPath });
            next = { ...next, model: tuned, blocks: tunedBlocks, folder: await loadModelFolder({ model: ft.outDir }) };
            row.devF1Pruned = ft.f1.before.micro.f1;
            row.devF1 = ft.f1.after.micro.f1;
            row.finetuneSeconds = ft.details.trainSeconds;
          }
          row.parameters = countParameters(next.model.graph ?? {});
          states.set(r, next);
          return next;
        },
        async measure(s, r) {
          const bar = progress(`latency ${r}`, 6);
          const cmp = await compareLatency(folder.onnxPath, s.folder.onnxPath, inputs, {
            seqLen,
            batch,
            seconds: opts.benchSeconds ?? 6,
            threads: opts.threads,
            onProgress: (n) => bar.update(n, 'rounds'),
          }).finally(() => bar.stop());
          lastCmp = cmp;
          Object.assign(at(r), { beforeP50Ms: cmp.before.p50, afterP50Ms: cmp.after.p50, loadAvg: cmp.loadAvgEnd });
          log(`round ${r}: p50 ${cmp.before.p50.toFixed(2)} → ${cmp.after.p50.toFixed(2)} ms (${(cmp.before.p50 / cmp.after.p50).toFixed(3)}×)`);
          return { beforeMs: cmp.before.p50, afterMs: cmp.after.p50 };
        },
        async evaluate(s, r) {
          if (!devExamples) return undefined;
          const row = at(r);
          if (row.devF1 !== undefined) return row.devF1;
          const bar = progress(`dev F1 ${r}`, devExamples.length);
          const f = await scoreFolder(s.folder, devExamples, { ...wopts, onProgress: (done) => bar.update(done, 'sentences') }).finally(() => bar.stop());
          row.devF1 = f.micro.f1;
          log(`round ${r}: dev F1 ${(f.micro.f1 * 100).toFixed(2)}`);
          return f.micro.f1;
        },
      },
      {
        cost: cm,
        target: opts.targetSpeedup !== undefined ? { speedup: opts.targetSpeedup } : { latencyMs: opts.targetLatencyMs! },
        rounds,
        maxRounds,
        minF1: opts.minF1,
        select: { neuronBlock },
        startMs: cost.samples[0].ms,
      },
    );

    // the per-round rows (round 0: the original)
    const roundsRun: TargetRoundRow[] = result.rows.map((lr) => {
      const s = states.get(lr.round)!;
      const extra = info.get(lr.round) ?? {};
      return {
        round: lr.round,
        removedHeads: [],
        removedNeurons: 0,
        removedLayers: [],
        attentionRemoved: [],
        heads: lr.shape.heads,
        neurons: lr.shape.neurons,
        layers: lr.shape.layers,
        parameters: countParameters(s.model.graph ?? {}),
        ...extra,
        ...(lr.goalFraction !== undefined ? { goalFraction: lr.goalFraction } : {}),
        speedup: lr.speedup,
        ...(lr.verdict ? { verdict: lr.verdict } : {}),
      } as TargetRoundRow;
    });
    for (const r of roundsRun) if (r.devF1 === undefined) delete r.devF1;
    const best = result.state;
    const chosenRow = roundsRun.find((r) => r.round === result.chosen)!;

    // write the chosen model
    const written = await writeModelFolder(opts.out, folder, best.model, {
      crf: best.folder.crf ?? null,
      provenance: {
        ranerc: ranercVersion(),
        command: 'prune',
        createdAt: new Date().toISOString(),
        source: { path: folder.onnxPath, sha256: modelSha },
        settings: {
          targetSpeedup: opts.targetSpeedup ?? null,
          targetLatencyMs: opts.targetLatencyMs ?? null,
          seqLen,
          batch,
          rounds: result.chosen,
          importanceLoss,
          removedLayers: best.removedLayers,
          attentionRemoved: best.attentionOnly,
          keptHeads: Object.fromEntries(best.headIds.map((h, l) => [String(l), h])),
          ffnKept: Object.fromEntries(best.neuronIds.map((n, l) => [String(l), n.length])),
        },
      },
    });
    log(`wrote ${written.dir} (round ${result.chosen})`);
    const outFolder = await loadModelFolder({ model: written.dir });

    let f1: PruneTargetResult['f1'];
    let evalExamples: Example[] | undefined;
    if (opts.eval) {
      evalExamples = (await readExamples(opts.eval, { types: labelSet.types, unknownTypes: opts.skipUnknownTypes ? 'skip' : 'error' })).examples;
      const b1 = progress('eval before', evalExamples.length);
      const before = await scoreFolder(folder, evalExamples, { ...wopts, onProgress: (d) => b1.update(d, 'sentences') }).finally(() => b1.stop());
      const b2 = progress('eval after', evalExamples.length);
      const after = await scoreFolder(outFolder, evalExamples, { ...wopts, onProgress: (d) => b2.update(d, 'sentences') }).finally(() => b2.stop());
      f1 = { before, after };
      log(`test F1 ${(before.micro.f1 * 100).toFixed(2)} → ${(after.micro.f1 * 100).toFixed(2)}`);
    }

    const layers: TargetLayerRow[] = origBlocks.map((b, l) => ({
      layer: l,
      headsBefore: b.numHeads,
      keptHeads: best.headIds[l],
      ffnBefore: ffnSize[l],
      ffnAfter: best.neuronIds[l].length,
      removedNeurons: ((kept) => range(ffnSize[l]).filter((j) => !kept.has(j)))(new Set(best.neuronIds[l])),
      removed: best.removedLayers.includes(l) ? 'layer' : best.attentionOnly.includes(l) ? 'attention' : '',
    }));
    const details: PruneTargetDetails = {
      mode: 'target',
      target: { ...(opts.targetSpeedup !== undefined ? { speedup: opts.targetSpeedup } : { latencyMs: opts.targetLatencyMs }), seqLen, batch },
      wantSpeedup: result.wantSpeedup,
      ...(opts.minF1 !== undefined ? { minF1: opts.minF1 } : {}),
      importanceLoss,
      neuronBlock,
      rounds,
      maxRounds,
      costModel: cost,
      roundsRun,
      verdict: result.verdict,
      chosenRound: result.chosen,
      layers,
      parameters: { before: countParameters(original.graph ?? {}), after: countParameters(best.model.graph ?? {}) },
      ...(opts.recovery && opts.dev ? { recovery: { train: opts.recovery.train, dev: opts.dev, epochs: opts.recovery.epochs, maxMinutes: opts.recovery.maxMinutes, lr: opts.recovery.lr } } : {}),
      chart: TARGET_CHART_FILE,
    };
    const report = newReport<PruneTargetDetails, 'prune'>(
      'prune',
      {
        model: opts.model,
        out: opts.out,
        data: opts.data,
        targetSpeedup: opts.targetSpeedup ?? null,
        targetLatencyMs: opts.targetLatencyMs ?? null,
        seqLen,
        batch,
        rounds,
        maxRounds,
        minF1: opts.minF1 ?? null,
        dev: opts.dev ?? null,
        eval: opts.eval ?? null,
        finetune: opts.recovery ? { ...opts.recovery } : null,
        importanceLoss,
        neuronBlock,
        maxSentences: opts.maxSentences ?? null,
        backend: opts.backend ?? 'auto',
        threads: opts.threads ?? 'default',
      },
      details,
      { threads: opts.threads },
    );
    const mBefore = await summarizeModel(folder, 'before', opts.model);
    const mAfter = await summarizeModel(outFolder, 'after', opts.out);
    if (f1) {
      mBefore.f1 = f1.before;
      mAfter.f1 = f1.after;
    }
    if (result.chosen > 0 && lastCmp && chosenRow.beforeP50Ms !== undefined) {
      // the chosen round's own interleaved run (the last run when the last round was kept)
      if (result.chosen === result.rows[result.rows.length - 1].round) {
        mBefore.latency = [benchRow(seqLen, batch, lastCmp.before)];
        mAfter.latency = [benchRow(seqLen, batch, lastCmp.after)];
      }
    }
    report.models.push(mBefore, mAfter);
    report.data = {
      files: [await summarizeData(opts.data, { format: read.format, sentences: examples.length, entities: examples.reduce((n, e) => n + e.entities.length, 0), skipped: read.skipped.length })],
    };
    if (result.verdict !== 'target-met') report.warnings.push(`the target was not met: ${result.verdict} (best measured speed-up ${Math.max(...roundsRun.map((r) => r.speedup)).toFixed(3)}×)`);
    return { outDir: written.dir, details, report, chartSvg: targetChartSvg(details), ...(f1 ? { f1 } : {}) };
  } finally {
    await rm(tmpRoot, { recursive: true, force: true });
  }
}
