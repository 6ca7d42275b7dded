/**
 * The measured latency cost model of one model shape on one machine (`ranerc prune --target-speedup`):
 * pruned variants of the model (half the heads of every layer, half the FFN neurons, half the layers
 * removed whole, and a mix) are timed in onnxruntime at the user's sequence length and batch, in
 * interleaved blocks in one process (`measureInterleaved`), and the linear model of costmodel.ts is
 * fitted to them: the milliseconds of a head, of an FFN neuron and of a layer's fixed part.
 *
 * The fit is cached as JSON under `$XDG_CACHE_HOME/ranerc/latency` (else ~/.cache/ranerc/latency),
 * keyed by the model's SHA-256, the CPU model and count, sequence length, batch and threads: the
 * measurement (about 10 s on BERT-base) runs once per machine and model shape.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, homedir, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AttentionBlock } from '../onnx/attention.js';
import type { onnx } from '../onnx/codec.js';
import { saveModel } from '../onnx/external.js';
import { makeBenchBatch, measureInterleaved, type BenchInputs } from '../runtime/bench.js';
import { NerSession } from '../runtime/session.js';
import { atomicWriteFile, sha256 } from '../util/fs.js';
import { fitCostModel, type CostModel, type VariantShape } from './costmodel.js';
import { pruneModel, type PrunePlan } from './surgery.js';

const FORMAT = 'ranerc-latency/1';

/** One timed variant. */
export interface CostSample {
  name: string;
  shape: VariantShape;
  /** Median latency, ms. */
  ms: number;
  iterations: number;
}

export interface CostMeasurement {
  model: CostModel;
  samples: CostSample[];
  seqLen: number;
  batch: number;
  threads: number | 'default';
  cpu: string;
  cpus: number;
  /** os.loadavg() when timing started and ended (the machine may be shared). */
  loadAvgStart: number[];
  loadAvgEnd: number[];
  measuredAt: string;
  /** Read from the cache (not timed in this run). */
  cached: boolean;
}

/** `$XDG_CACHE_HOME/ranerc/latency`, else `~/.cache/ranerc/latency`. */
export function defaultLatencyCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.length > 0 ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'ranerc', 'latency');
}

/** The cache key: model hash, CPU model and count, sequence, batch and threads. */
export function latencyCacheKey(modelSha256: string, seqLen: number, batch: number, threads: number | 'default'): string {
  const cpu = cpus()[0]?.model ?? 'unknown';
  return sha256(JSON.stringify({ format: FORMAT, model: modelSha256, cpu, cpus: cpus().length, seqLen, batch, threads }));
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Shape (heads, neurons, layers present) of the model after removing `plan` (layers = both heads and neurons all gone). */
export function shapeAfter(blocks: readonly AttentionBlock[], plan: PrunePlan): VariantShape {
  let heads = 0;
  let neurons = 0;
  let layers = 0;
  blocks.forEach((b, l) => {
    const h = b.numHeads - plan.heads[l].length;
    const n = (b.ffn?.intermediate.outFeatures ?? 0) - (plan.neurons?.[l]?.length ?? 0);
    heads += h;
    neurons += n;
    if (h > 0 || n > 0) layers++;
  });
  return { heads, neurons, layers };
}

/**
 * The variants timed: the model itself, half of every layer's heads, half of every layer's FFN
 * neurons, half of the layers removed whole, and a quarter of each (five points for four unknowns, so
 * the fit has a residual). Which units go does not matter for timing.
 */
export function costVariants(blocks: readonly AttentionBlock[]): Array<{ name: string; plan: PrunePlan }> {
  const L = blocks.length;
  const none = (): PrunePlan => ({ heads: blocks.map(() => []), neurons: blocks.map(() => []) });
  const ffn = (b: AttentionBlock) => b.ffn?.intermediate.outFeatures ?? 0;
  const layersOut = Math.max(1, Math.floor(L / 2));
  const wholeLayers = (k: number): PrunePlan => ({
    heads: blocks.map((b, l) => (l >= L - k ? range(b.numHeads) : [])),
    neurons: blocks.map((b, l) => (l >= L - k ? range(ffn(b)) : [])),
  });
  const mix: PrunePlan = {
    heads: blocks.map((b, l) => (L > 1 && l === L - 1 ? range(b.numHeads) : range(Math.floor(b.numHeads / 4)))),
    neurons: blocks.map((b, l) => (L > 1 && l === L - 1 ? range(ffn(b)) : range(Math.floor(ffn(b) / 4)))),
  };
  return [
    { name: 'model', plan: none() },
    { name: 'half the heads', plan: { heads: blocks.map((b) => range(Math.floor(b.numHeads / 2))), neurons: blocks.map(() => []) } },
    { name: 'half the FFN neurons', plan: { heads: blocks.map(() => []), neurons: blocks.map((b) => range(Math.floor(ffn(b) / 2))) } },
    { name: `${layersOut} layer${layersOut === 1 ? '' : 's'} removed`, plan: wholeLayers(layersOut) },
    { name: 'a quarter of heads and neurons, one layer', plan: mix },
  ];
}

function validCached(x: unknown, key: string): x is { key: string; measurement: CostMeasurement } {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as { format?: unknown; key?: unknown; measurement?: Partial<CostMeasurement> };
  const m = r.measurement?.model;
  return (
    r.format === FORMAT &&
    r.key === key &&
    typeof m === 'object' &&
    m !== null &&
    ['base', 'perHead', 'perNeuron', 'perLayer', 'rmse'].every((k) => Number.isFinite((m as unknown as Record<string, unknown>)[k])) &&
    Array.isArray(r.measurement?.samples)
  );
}

export interface MeasureCostOptions {
  /** SHA-256 of the model's bytes (the cache key). */
  modelSha256: string;
  inputs: BenchInputs;
  seqLen: number;
  batch: number;
  threads?: number;
  /** Timed seconds per variant in total (default 3, and at least 2 runs per block), in `rounds` interleaved blocks (default 6). */
  seconds?: number;
  rounds?: number;
  /** Cache folder (default {@link defaultLatencyCacheDir}); false: neither read nor write. */
  cacheDir?: string | false;
  onProgress?: (done: number, total: number) => void;
  log?: (line: string) => void;
}

/** Measure (or read from the cache) the cost model of `model` (see the module comment). */
export async function measureCostModel(model: onnx.IModelProto, blocks: readonly AttentionBlock[], opts: MeasureCostOptions): Promise<CostMeasurement> {
  const threads = opts.threads ?? 'default';
  const key = latencyCacheKey(opts.modelSha256, opts.seqLen, opts.batch, threads);
  const dir = opts.cacheDir === false ? undefined : (opts.cacheDir ?? defaultLatencyCacheDir());
  if (dir) {
    try {
      const parsed: unknown = JSON.parse(await readFile(join(dir, `${key}.json`), 'utf8'));
      if (validCached(parsed, key)) {
        opts.log?.(`cost model: cached (${join(dir, `${key}.json`)})`);
        return { ...parsed.measurement, cached: true };
      }
    } catch {
      // absent or unreadable: measure
    }
  }
  const variants = costVariants(blocks);
  const tmp = await mkdtemp(join(tmpdir(), 'ranerc-cost-'));
  const sessions: NerSession[] = [];
  try {
    for (const [i, v] of variants.entries()) {
      const m = i === 0 ? model : pruneModel(model, blocks, v.plan, { allowEmptyLayers: true }).model;
      const path = join(tmp, `v${i}.onnx`);
      await saveModel(m, path);
      sessions.push(await NerSession.open(path, { threads: opts.threads }));
    }
    const feed = makeBenchBatch(opts.inputs, opts.seqLen, opts.batch);
    const rounds = opts.rounds ?? 6;
    const loadAvgStart = loadavg();
    const stats = await measureInterleaved(
      sessions.map((s) => () => s.runFlat(feed)),
      { rounds, warmup: 3, iterations: 2 * rounds, seconds: opts.seconds ?? 3, onRound: (n) => opts.onProgress?.(n, rounds) },
    );
    const samples: CostSample[] = variants.map((v, i) => ({ name: v.name, shape: shapeAfter(blocks, v.plan), ms: stats[i].p50, iterations: stats[i].iterations }));
    const measurement: CostMeasurement = {
      model: fitCostModel(samples),
      samples,
      seqLen: opts.seqLen,
      batch: opts.batch,
      threads,
      cpu: cpus()[0]?.model ?? 'unknown',
      cpus: cpus().length,
      loadAvgStart,
      loadAvgEnd: loadavg(),
      measuredAt: new Date().toISOString(),
      cached: false,
    };
    if (dir) await atomicWriteFile(join(dir, `${key}.json`), `${JSON.stringify({ format: FORMAT, key, measurement })}\n`);
    return measurement;
  } finally {
    for (const s of sessions) await s.close();
    await rm(tmp, { recursive: true, force: true });
  }
}
