/**
 * `ranerc quantize --format auto` (I/O): build the candidates — static QDQ, static QOperator (sharing
 * one calibration), dynamic, weights-only — time them and the float input at the given (seq, batch)
 * points with `measureInterleaved` in this one process, and write what `chooseAuto` (auto-select.ts)
 * picks: the fastest candidate not slower than the input, else the float graph unchanged. Every
 * candidate is listed in `details.auto` with its p50, size and speed-up.
 */
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { RanercError, UsageError } from '../errors.js';
import { loadTokenizer } from '../ner/tokenizers/index.js';
import { loadModel } from '../onnx/external.js';
import { loadModelFolder, writeModelFolder } from '../onnx/folder.js';
import { newReport, ranercVersion } from '../report/environment.js';
import { summarizeModel } from '../report/models.js';
import { benchRow, makeBenchBatch, measureInterleaved, syntheticBenchInputs, textBenchInputs, type BenchRow } from '../runtime/bench.js';
import { NerSession } from '../runtime/session.js';
import { exists, sha256File, tempSibling } from '../util/fs.js';
import { chooseAuto, type AutoCandidateInput, type AutoCandidateName, type AutoDetails, type AutoPoint } from './auto-select.js';
import { quantizeModelFolder, readCalibTexts } from './index.js';
import type { QuantizeOptions, QuantizeResult } from './types.js';

export * from './auto-select.js';

const ROUNDS = 4;

interface Built {
  name: AutoCandidateName;
  result?: QuantizeResult;
  error?: string;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0] : String(e);
}

async function buildCandidates(opts: QuantizeOptions, tmp: string): Promise<Built[]> {
  const base: QuantizeOptions = { ...opts, bench: false, profile: false, settings: undefined, format: undefined, dynamic: false, weightsOnly: false, calibrated: undefined };
  const out: Built[] = [];
  const attempt = async (name: AutoCandidateName, o: Partial<QuantizeOptions>): Promise<QuantizeResult | undefined> => {
    try {
      const result = await quantizeModelFolder({ ...base, ...o, out: join(tmp, name) });
      out.push({ name, result });
      return result;
    } catch (e) {
      if (!(e instanceof RanercError)) throw e;
      out.push({ name, error: errorText(e) });
      return undefined;
    }
  };
  if (opts.calib) {
    // QOperator calibrates the activation inputs and the outputs of its nodes; QDQ needs only the inputs,
    // so QDQ reuses those ranges (a tensor QOperator did not calibrate leaves its node in float).
    const qop = await attempt('qoperator', { format: 'qoperator' });
    const d = qop?.report.details;
    await attempt('qdq', { format: 'qdq', calibrated: d?.ranges && d.calibration ? { ranges: d.ranges, calibration: d.calibration } : undefined });
  } else {
    out.push({ name: 'qdq', error: 'static quantization needs --calib' }, { name: 'qoperator', error: 'static quantization needs --calib' });
  }
  await attempt('dynamic', { dynamic: true });
  await attempt('weights-only', { weightsOnly: true });
  return out;
}

/** Quantize with every format, time them against the float input, write the fastest that is not slower. */
export async function autoQuantizeModelFolder(opts: QuantizeOptions): Promise<QuantizeResult> {
  if (opts.bench === false) {
    throw new UsageError('--format auto chooses by measured latency; --no-bench leaves nothing to choose by', { hint: 'drop --no-bench, or pick a --format' });
  }
  if (opts.dynamic || opts.weightsOnly) {
    throw new UsageError('--format auto builds the dynamic and weights-only candidates itself', { hint: 'drop --dynamic with --format auto' });
  }
  const folder = typeof opts.model === 'string' ? await loadModelFolder({ model: opts.model, labels: opts.labels, vocab: opts.vocab }) : opts.model;
  const outDir = resolve(opts.out);
  if (outDir === resolve(folder.dir)) throw new UsageError('--out is the input model folder', { hint: 'write the quantized model to a new folder' });
  const seqLens = opts.seqLens ?? [64];
  const batchSizes = opts.batchSizes ?? [1];
  const seconds = opts.benchSeconds ?? 4;
  const tooLong = seqLens.filter((s) => s > folder.maxLength || s < 3);
  if (tooLong.length > 0) {
    throw new UsageError(`--seq ${tooLong.join(',')} outside [3, ${folder.maxLength}] (the model's maximum length)`, { hint: `pick sequence lengths of at most ${folder.maxLength}` });
  }
  await mkdir(resolve(outDir, '..'), { recursive: true });
  const tmp = tempSibling(outDir);
  await mkdir(tmp, { recursive: true });
  try {
    const built = await buildCandidates({ ...opts, model: folder }, tmp);
    // a candidate that missed the F1 budget (--max-f1-drop) is not eligible, however fast
    for (const b of built) {
      if (b.result?.budgetMet === false) {
        const g = b.result.report.details.guard;
        b.error = `the F1 budget of ${g?.maxF1DropPoints} points was not met (best drop ${g ? g.tries[g.chosen].dropPoints.toFixed(2) : '?'} points)`;
        b.result = undefined;
      }
    }
    const ok = built.filter((b): b is Built & { result: QuantizeResult } => b.result !== undefined);

    // ---- timing: the float input and every candidate, interleaved, one process
    const tokenizer = await loadTokenizer(folder);
    const texts = opts.calib ? (await readCalibTexts(opts.calib, opts.calibSize)).texts : [];
    const inputs = texts.length > 0 ? textBenchInputs(tokenizer, texts) : syntheticBenchInputs(tokenizer);
    const paths = [folder.onnxPath, ...ok.map((b) => b.result.onnxPath)];
    const sessions: NerSession[] = [];
    const rows: BenchRow[][] = paths.map(() => []);
    try {
      for (const p of paths) sessions.push(await NerSession.open(p, { threads: opts.threads }));
      const bar = opts.progress?.('bench (auto)', seqLens.length * batchSizes.length * ROUNDS);
      let point = 0;
      try {
        for (const seq of seqLens) {
          for (const batch of batchSizes) {
            const feed = makeBenchBatch(inputs, seq, batch);
            const done = point * ROUNDS;
            const stats = await measureInterleaved(
              sessions.map((s) => () => s.runFlat(feed)),
              { rounds: ROUNDS, warmup: 3, iterations: 3 * ROUNDS, seconds, onRound: (r) => bar?.update(done + r, `seq ${seq} × batch ${batch}`) },
            );
            stats.forEach((st, i) => rows[i].push(benchRow(seq, batch, st)));
            point++;
          }
        }
      } finally {
        bar?.stop();
      }
    } finally {
      for (const s of sessions) await s.close();
    }
    const toPoints = (r: BenchRow[]): AutoPoint[] => r.map((x) => ({ seqLen: x.seqLen, batch: x.batch, p50Ms: x.p50Ms }));
    const floatBytes = (await stat(folder.onnxPath)).size;
    const inputsForChoice: AutoCandidateInput[] = built.map((b) => {
      const i = ok.indexOf(b as Built & { result: QuantizeResult });
      return i < 0 ? { name: b.name, error: b.error } : { name: b.name, bytes: b.result!.after.bytes, points: toPoints(rows[i + 1]) };
    });
    const choice = chooseAuto(toPoints(rows[0]), floatBytes, inputsForChoice);
    const auto: AutoDetails = {
      ...choice,
      float: { bytes: floatBytes, points: toPoints(rows[0]) },
      timing: { rounds: ROUNDS, seconds, threads: opts.threads ?? 'default', inputs: inputs.source },
    };

    // ---- write what was chosen
    const chosenBuilt = ok.find((b) => b.name === choice.chosen);
    const fastest = [...choice.candidates].filter((c) => c.speedup !== undefined).sort((a, b) => b.speedup! - a.speedup!)[0];
    const detailsFrom = chosenBuilt ?? ok.find((b) => b.name === fastest?.name);
    if (chosenBuilt) {
      const old = (await exists(outDir)) ? tempSibling(outDir) : undefined;
      if (old) await rename(outDir, old);
      await rename(join(tmp, chosenBuilt.name), outDir);
      if (old) await rm(old, { recursive: true, force: true });
    } else {
      const loaded = await loadModel(folder.onnxPath);
      await writeModelFolder(outDir, folder, loaded.model, {
        provenance: {
          ranerc: ranercVersion(),
          command: 'quantize',
          createdAt: new Date().toISOString(),
          source: { path: folder.onnxPath, sha256: await sha256File(folder.onnxPath) },
          settings: { format: 'auto', chosen: 'float', reason: choice.reason },
        },
      });
    }
    const outFolder = await loadModelFolder({ model: outDir });
    const settings = { ...(opts.settings ?? {}), format: 'auto' };
    const baseDetails = detailsFrom?.result.report.details;
    if (!baseDetails) {
      throw new RanercError(`--format auto could not build any candidate: ${built.map((b) => `${b.name}: ${b.error}`).join('; ')}`, {
        hint: 'run ranerc quantize with one --format to see the full error',
      });
    }
    const details = { ...baseDetails, auto: { ...auto, detailsOf: detailsFrom!.name } };
    const report = newReport('quantize', settings, details, { threads: opts.threads });
    const beforeM = await summarizeModel(folder, 'before', typeof opts.model === 'string' ? opts.model : folder.dir);
    const afterM = await summarizeModel(outFolder, 'after', opts.out);
    const chosenRows = chosenBuilt ? rows[ok.indexOf(chosenBuilt) + 1] : rows[0];
    beforeM.latency = rows[0];
    afterM.latency = chosenRows;
    const srcReport = detailsFrom!.result.report;
    const srcBefore = srcReport.models[0];
    const srcAfter = srcReport.models[1];
    if (srcBefore?.f1) beforeM.f1 = srcBefore.f1;
    if (chosenBuilt && srcAfter?.f1) afterM.f1 = srcAfter.f1;
    if (!chosenBuilt && srcBefore?.f1) afterM.f1 = srcBefore.f1;
    if (chosenBuilt && srcAfter?.parameters !== undefined) afterM.parameters = srcAfter.parameters;
    report.models.push(beforeM, afterM);
    if (srcReport.data) report.data = srcReport.data;
    report.warnings.push(...srcReport.warnings);
    for (const c of choice.candidates) if (c.slower) report.warnings.push(`${c.name} is ${c.note}; not chosen`);
    if (!chosenBuilt) report.warnings.push(choice.reason);
    return {
      report,
      outDir,
      onnxPath: outFolder.onnxPath,
      budgetMet: chosenBuilt ? chosenBuilt.result.budgetMet : undefined,
      before: { bytes: beforeM.bytes, f1: beforeM.f1?.micro.f1, latency: rows[0] },
      after: { bytes: afterM.bytes, f1: afterM.f1?.micro.f1, latency: chosenRows },
    };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
