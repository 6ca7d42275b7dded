/**
 * Teacher logits over the transfer set: computed in onnxruntime-node with the shared prediction
 * pipeline (`Predictor.emissions`: same tokenization, windows and owner-window merge as `eval`),
 * batched, and cached on disk so a second run skips them.
 *
 * Cache: `<cacheDir>/<key>.bin`, key = SHA-256 of the teacher's ONNX file, vocabulary, tokenizer
 * settings, labels, window settings, storage type and the ordered transfer texts. The file holds the
 * logits of a prefix of the texts (a run that hit its time budget stores what it computed; a later run
 * continues from there). Layout: "RNRCTL01", uint32 header length, header JSON, zero padding to a
 * multiple of 4, int32 token counts (one per text), then the logits row-major as float16 (default)
 * or float32.
 */
import { open, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { float16ToFloat32, float32ToFloat16 } from '../onnx/tensor.js';
import type { ModelFolder } from '../onnx/types.js';
import { tokenizerFile } from '../ner/tokenizers/index.js';
import { Predictor, type TextEmissions } from '../runtime/predict.js';
import { atomicWriteFile, exists, sha256, sha256File } from '../util/fs.js';

const MAGIC = 'RNRCTL01';
const FORMAT = 1;

export type CacheDtype = 'float16' | 'float32';

export interface TeacherLogitsOptions {
  /** Cache folder (default `.ranerc-cache/teacher-logits`); null disables the cache. */
  cacheDir?: string | null;
  cacheDtype?: CacheDtype;
  threads?: number;
  /** Windows per onnxruntime run (default 32). */
  batchSize?: number;
  windowSize?: number;
  overlap?: number;
  /** Stop computing (between chunks) once `performance.now()` passes this; the prefix done is returned. */
  deadline?: number;
  /** Logits for at most the first `limit` texts (the cache key still covers all texts, so runs share it). */
  limit?: number;
  /** Texts per chunk between deadline checks and progress reports (default 256). */
  chunkTexts?: number;
  onProgress?: (doneTexts: number, totalTexts: number) => void;
  /**
   * Compute the logits elsewhere (e.g. `ranerc worker` processes through the job queue,
   * src/queue/client.ts emissionsViaQueue): per text its token count and row-major logits, in order.
   * Tokens are still made here and must match the counts.
   */
  compute?: (texts: string[]) => Promise<Array<{ tokens: number; logits: Float32Array }>>;
}

export interface TeacherLogits {
  /** Tokens and logits [n, L] of texts[0 … count − 1]. */
  emissions: TextEmissions[];
  /** How many texts have logits (a prefix of the texts; fewer than all when the deadline hit). */
  count: number;
  /** How many of them came from the cache. */
  fromCache: number;
  /** Milliseconds spent computing (0 when everything came from the cache). */
  computeMs: number;
  /** Tokens whose logits were computed in this run. */
  computedTokens: number;
  key: string;
  cachePath?: string;
  /** Size of the cache file after this run. */
  cacheBytes?: number;
  labels: number;
}

/** The cache key of a teacher + ordered texts + settings. */
export async function teacherCacheKey(
  folder: ModelFolder,
  texts: readonly string[],
  settings: { windowSize: number; overlap: number; dtype: CacheDtype },
): Promise<string> {
  const textHash = sha256(texts.map((t) => `${t.length}:${t}`).join('\n'));
  const parts = {
    format: FORMAT,
    onnx: await sha256File(folder.onnxPath),
    external: await Promise.all((folder.externalDataFiles ?? []).map((f) => sha256File(f))),
    vocab: await sha256File(tokenizerFile(folder)),
    tokenizer: folder.tokenizerConfig,
    labels: folder.labels,
    windowSize: settings.windowSize,
    overlap: settings.overlap,
    dtype: settings.dtype,
    texts: textHash,
    n: texts.length,
  };
  return sha256(JSON.stringify(parts));
}

interface CacheContent {
  counts: Int32Array;
  logits: Float32Array;
}

function encodeCache(key: string, L: number, dtype: CacheDtype, counts: Int32Array, logits: Float32Array): Uint8Array {
  const header = Buffer.from(JSON.stringify({ key, count: counts.length, labels: L, dtype, tokens: logits.length / L }), 'utf8');
  const headLen = 8 + 4 + header.length;
  const pad = (4 - (headLen % 4)) % 4;
  const dataBytes = dtype === 'float16' ? logits.length * 2 : logits.length * 4;
  const out = new Uint8Array(headLen + pad + counts.length * 4 + dataBytes);
  out.set(Buffer.from(MAGIC, 'ascii'), 0);
  new DataView(out.buffer).setUint32(8, header.length, true);
  out.set(header, 12);
  let o = headLen + pad;
  out.set(new Uint8Array(counts.buffer, counts.byteOffset, counts.byteLength), o);
  o += counts.byteLength;
  if (dtype === 'float16') {
    const h = new Uint16Array(logits.length);
    for (let i = 0; i < logits.length; i++) h[i] = float32ToFloat16(logits[i]);
    out.set(new Uint8Array(h.buffer), o);
  } else {
    out.set(new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength), o);
  }
  return out;
}

function decodeCache(bytes: Uint8Array, key: string, L: number, path: string): CacheContent | undefined {
  if (bytes.length < 12 || Buffer.from(bytes.subarray(0, 8)).toString('ascii') !== MAGIC) return undefined;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hl = dv.getUint32(8, true);
  let header: { key: string; count: number; labels: number; dtype: CacheDtype; tokens: number };
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(12, 12 + hl)).toString('utf8')) as typeof header;
  } catch {
    return undefined;
  }
  if (header.key !== key || header.labels !== L) return undefined;
  const headLen = 12 + hl;
  let o = headLen + ((4 - (headLen % 4)) % 4);
  const size = header.dtype === 'float16' ? 2 : 4;
  if (bytes.length !== o + header.count * 4 + header.tokens * L * size) {
    throw new InputError('the teacher-logit cache file is truncated or corrupt', {
      file: path,
      hint: 'delete it (ranerc recomputes the teacher logits)',
    });
  }
  const counts = new Int32Array(bytes.slice(o, o + header.count * 4).buffer);
  o += header.count * 4;
  const n = header.tokens * L;
  const logits = new Float32Array(n);
  if (header.dtype === 'float16') {
    const h = new Uint16Array(bytes.slice(o, o + n * 2).buffer);
    for (let i = 0; i < n; i++) logits[i] = float16ToFloat32(h[i]);
  } else {
    logits.set(new Float32Array(bytes.slice(o, o + n * 4).buffer));
  }
  return { counts, logits };
}

/** Pair logits computed elsewhere with this tokenizer's tokens (the counts must agree). */
function remoteEmissions(predictor: Predictor, texts: string[], got: Array<{ tokens: number; logits: Float32Array }>, L: number): TextEmissions[] {
  if (got.length !== texts.length) throw new InputError(`the remote teacher returned logits for ${got.length} of ${texts.length} texts`, { hint: 'check the workers\' logs' });
  return texts.map((t, i) => {
    const tokens = predictor.tokenizer.tokenize(t);
    if (tokens.length !== got[i].tokens || got[i].logits.length !== tokens.length * L) {
      throw new InputError(`the remote teacher gave ${got[i].tokens} tokens × ${L} labels for text ${i + 1}, the local tokenizer ${tokens.length}`, {
        hint: 'run the workers with the same teacher folder (same vocab and settings)',
      });
    }
    return { tokens, logits: got[i].logits };
  });
}

/**
 * Teacher logits of `texts` (in order), from the cache where it has them, computed for the rest until
 * the deadline. The returned emissions always cover a prefix of `texts`.
 */
export async function teacherLogits(folder: ModelFolder, texts: readonly string[], opts: TeacherLogitsOptions = {}): Promise<TeacherLogits> {
  const dtype = opts.cacheDtype ?? 'float16';
  const predictor = await Predictor.open(folder, {
    threads: opts.threads,
    batchSize: opts.batchSize,
    windowSize: opts.windowSize,
    overlap: opts.overlap,
  });
  try {
    const L = predictor.labels.size;
    const key = await teacherCacheKey(folder, texts, { windowSize: predictor.windowSize, overlap: predictor.overlap, dtype });
    const cacheDir = opts.cacheDir === null ? undefined : resolve(opts.cacheDir ?? join('.ranerc-cache', 'teacher-logits'));
    const cachePath = cacheDir ? join(cacheDir, `${key}.bin`) : undefined;
    const emissions: TextEmissions[] = [];
    const wanted = Math.min(texts.length, opts.limit ?? Infinity);
    let fromCache = 0;
    if (cachePath && (await exists(cachePath))) {
      const cached = decodeCache(new Uint8Array(await readFile(cachePath)), key, L, cachePath);
      if (cached) {
        let o = 0;
        for (let i = 0; i < cached.counts.length && i < wanted; i++) {
          const tokens = predictor.tokenizer.tokenize(texts[i]);
          const n = cached.counts[i];
          if (tokens.length !== n) {
            throw new InputError(`the teacher-logit cache has ${n} tokens for text ${i + 1} but the tokenizer gives ${tokens.length}`, {
              file: cachePath,
              hint: 'delete the cache file (ranerc recomputes the teacher logits)',
            });
          }
          emissions.push({ tokens, logits: cached.logits.slice(o * L, (o + n) * L) });
          o += n;
        }
        fromCache = emissions.length;
      }
    }
    const chunk = opts.chunkTexts ?? (opts.compute ? 4096 : 256);
    const t0 = performance.now();
    let computedTokens = 0;
    opts.onProgress?.(emissions.length, wanted);
    while (emissions.length < wanted) {
      if (opts.deadline !== undefined && performance.now() > opts.deadline) break;
      const start = emissions.length;
      const part = texts.slice(start, Math.min(wanted, start + chunk)) as string[];
      predictor.onProgress = (done) => opts.onProgress?.(start + done, wanted);
      const ems = opts.compute ? remoteEmissions(predictor, part, await opts.compute(part), L) : await predictor.emissions(part);
      if (opts.compute) opts.onProgress?.(start + part.length, wanted);
      for (const e of ems) {
        emissions.push(e);
        computedTokens += e.tokens.length;
      }
    }
    const computeMs = emissions.length > fromCache ? performance.now() - t0 : 0;
    let cacheBytes: number | undefined;
    if (cachePath) {
      if (emissions.length > fromCache) {
        const counts = Int32Array.from(emissions, (e) => e.tokens.length);
        const total = emissions.reduce((n, e) => n + e.logits.length, 0);
        const all = new Float32Array(total);
        let o = 0;
        for (const e of emissions) {
          all.set(e.logits, o);
          o += e.logits.length;
        }
        const bytes = encodeCache(key, L, dtype, counts, all);
        await atomicWriteFile(cachePath, bytes);
        cacheBytes = bytes.length;
        // keep exactly what a later run will read (float16 rounding), so both runs train on the same numbers
        if (dtype === 'float16') {
          for (const e of emissions) for (let i = 0; i < e.logits.length; i++) e.logits[i] = float16ToFloat32(float32ToFloat16(e.logits[i]));
        }
      } else if (fromCache > 0) {
        const fh = await open(cachePath, 'r');
        cacheBytes = (await fh.stat()).size;
        await fh.close();
      }
    }
    return { emissions, count: emissions.length, fromCache, computeMs, computedTokens, key, cachePath, cacheBytes, labels: L };
  } finally {
    await predictor.close();
  }
}
