/**
 * The prediction pipeline every command shares (eval, predict, serve, quantize --eval, distillation):
 * tokenize → split long texts into overlapping windows → batch windows by length → run onnxruntime →
 * merge window logits per token (each token from its owner window) → CRF Viterbi or argmax → entities.
 *
 * It reproduces `predict_spans` in fixtures/teacher/train_teacher.py: windows of `maxLength − 2`
 * tokens (planWindows/ownerWindow = windows/owner_window there), jobs sorted by window length (stable)
 * and cut into batches of `batchSize`, [CLS] window [SEP] rows padded to the batch's longest row with
 * attention mask 0 and token type 0, emissions from positions 1..len, Viterbi with start/end
 * transitions, the first sub-token labelling each word, seqeval default-mode chunks.
 */
import { GraphError } from '../errors.js';
import { tagsToEntities } from '../ner/decode.js';
import { LabelSet } from '../ner/labels.js';
import { loadTokenizer, type NerTokenizer } from '../ner/tokenizers/index.js';
import type { Entity, Token } from '../ner/types.js';
import { argmaxDecode, crfTagIds } from '../ner/viterbi.js';
import { defaultOverlap, ownerWindow, planWindows } from '../ner/windows.js';
import type { ModelFolder } from '../onnx/types.js';
import { NerSession, SerialQueue, type SessionOptions } from './session.js';

export interface PredictorOptions extends SessionOptions {
  /** Windows per onnxruntime run (default 32). */
  batchSize?: number;
  /** Upper bound on padded tokens (rows × padded length) per run (default 16384). */
  maxBatchTokens?: number;
  /** Tokens per window without [CLS]/[SEP] (default folder.maxLength − 2). */
  windowSize?: number;
  /** Tokens shared by consecutive windows (default defaultOverlap(windowSize)). */
  overlap?: number;
  /** Chunk decoding mode (seqeval default or strict). */
  mode?: 'default' | 'strict';
  /** Which sub-word pieces carry labels: the first of each word (default) or all. */
  subword?: 'first' | 'all';
  /** Use argmax even when the folder has a CRF. */
  noCrf?: boolean;
  /** Texts processed per pipeline chunk, bounding memory on big inputs (default 4096). */
  chunkTexts?: number;
  /** Called after each onnxruntime run with the number of texts fully processed so far. */
  onProgress?: (doneTexts: number, totalTexts: number) => void;
}

/** Per-text teacher signal: the tokens and their merged logits, row-major T × L. */
export interface TextEmissions {
  tokens: Token[];
  logits: Float32Array;
}

interface Job {
  text: number;
  window: number;
  a: number;
  b: number;
}

/** [window, lo, hi): tokens lo..hi−1 take their logits from `window`. */
type OwnerRun = [number, number, number];

/**
 * A model folder ready to predict: one onnxruntime session, one tokenizer, reusable input buffers.
 * Concurrent calls (e.g. from a server) are queued and served one at a time.
 */
export class Predictor {
  readonly labels: LabelSet;
  readonly windowSize: number;
  readonly overlap: number;
  readonly batchSize: number;
  readonly maxBatchTokens: number;
  readonly decoder: 'crf' | 'argmax';
  onProgress?: (doneTexts: number, totalTexts: number) => void;
  private readonly mode: 'default' | 'strict';
  private readonly subword: 'first' | 'all';
  private readonly chunkTexts: number;
  private ids = new Int32Array(0);
  private mask = new Int32Array(0);
  private checkedLabels = false;
  private readonly queue = new SerialQueue();

  private constructor(
    readonly folder: ModelFolder,
    readonly session: NerSession,
    readonly tokenizer: NerTokenizer,
    opts: PredictorOptions,
  ) {
    this.labels = new LabelSet(folder.labels);
    this.windowSize = opts.windowSize ?? folder.maxLength - 2;
    if (!Number.isInteger(this.windowSize) || this.windowSize < 1) {
      throw new RangeError(`window size must be a positive integer, got ${this.windowSize}`);
    }
    this.overlap = opts.overlap ?? defaultOverlap(this.windowSize);
    this.batchSize = opts.batchSize ?? 32;
    this.maxBatchTokens = opts.maxBatchTokens ?? 16384;
    this.mode = opts.mode ?? 'default';
    this.subword = opts.subword ?? 'first';
    this.chunkTexts = opts.chunkTexts ?? 4096;
    this.decoder = folder.crf && !opts.noCrf ? 'crf' : 'argmax';
    this.onProgress = opts.onProgress;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new RangeError(`batch size must be >= 1`);
    if (!Number.isInteger(this.chunkTexts) || this.chunkTexts < 1) throw new RangeError(`chunkTexts must be >= 1`);
    // planWindows validates overlap < size; fail here rather than on the first long text.
    planWindows(this.windowSize + 1, this.windowSize, this.overlap);
  }

  /** Open the folder's model and tokenizer. */
  static async open(folder: ModelFolder, opts: PredictorOptions = {}): Promise<Predictor> {
    const tokenizer = await loadTokenizer(folder);
    const session = await NerSession.open(folder.onnxPath, opts);
    try {
      const p = new Predictor(folder, session, tokenizer, opts);
      if (session.numLabels !== undefined) p.checkLabelCount(session.numLabels);
      return p;
    } catch (e) {
      await session.close();
      throw e;
    }
  }

  /** Entities of each text (character offsets into that text). */
  async predict(texts: string[]): Promise<Entity[][]> {
    const out: Entity[][] = [];
    await this.forEachChunk(texts, (chunk, ems) => {
      for (let i = 0; i < chunk.length; i++) out.push(this.decode(chunk[i], ems[i]));
    });
    return out;
  }

  /** Entities and tokens of each text (tokens let callers relate gold spans to token boundaries). */
  async predictWithTokens(texts: string[]): Promise<Array<{ entities: Entity[]; tokens: Token[] }>> {
    const out: Array<{ entities: Entity[]; tokens: Token[] }> = [];
    await this.forEachChunk(texts, (chunk, ems) => {
      for (let i = 0; i < chunk.length; i++) out.push({ entities: this.decode(chunk[i], ems[i]), tokens: ems[i].tokens });
    });
    return out;
  }

  /** Tokens and merged per-token logits of each text (the teacher signal for distillation/calibration). */
  async emissions(texts: string[]): Promise<TextEmissions[]> {
    const out: TextEmissions[] = [];
    await this.forEachChunk(texts, (_chunk, ems) => {
      for (const e of ems) out.push(e);
    });
    return out;
  }

  /** Label ids of one text's tokens from its logits (CRF Viterbi or argmax). */
  tagIds(em: TextEmissions): number[] {
    const L = this.labels.labels.length;
    const T = em.tokens.length;
    if (T === 0) return [];
    const rows: Float32Array[] = new Array<Float32Array>(T);
    for (let t = 0; t < T; t++) rows[t] = em.logits.subarray(t * L, (t + 1) * L);
    return this.decoder === 'crf' ? crfTagIds(rows, this.folder.crf!, em.tokens) : argmaxDecode(rows);
  }

  /** Entities of one text from its emissions. */
  decode(text: string, em: TextEmissions): Entity[] {
    if (em.tokens.length === 0) return [];
    return tagsToEntities(text, em.tokens, this.tagIds(em), this.labels, { mode: this.mode, subword: this.subword });
  }

  /** Release the onnxruntime session. */
  async close(): Promise<void> {
    await this.session.close();
  }

  private checkLabelCount(n: number): void {
    if (this.checkedLabels) return;
    if (n !== this.labels.labels.length) {
      throw new GraphError(
        `the model outputs ${n} logits per token but config.json lists ${this.labels.labels.length} labels`,
        {
          node: this.session.logitsName,
          file: this.folder.onnxPath,
          hint: 'make id2label in config.json (or --labels) match the model the classifier was trained with',
        },
      );
    }
    this.checkedLabels = true;
  }

  private forEachChunk(texts: string[], use: (chunk: string[], ems: TextEmissions[]) => void): Promise<void> {
    return this.queue.run(() => this.chunks(texts, use));
  }

  private async chunks(texts: string[], use: (chunk: string[], ems: TextEmissions[]) => void): Promise<void> {
    let done = 0;
    for (let s = 0; s < texts.length; s += this.chunkTexts) {
      const chunk = texts.slice(s, s + this.chunkTexts);
      const ems = await this.runChunk(chunk, (n) => this.onProgress?.(done + n, texts.length));
      use(chunk, ems);
      done += chunk.length;
    }
    if (texts.length === 0) this.onProgress?.(0, 0);
  }

  private async runChunk(texts: string[], progress: (doneInChunk: number) => void): Promise<TextEmissions[]> {
    const L = this.labels.labels.length;
    const size = this.windowSize;
    const tokens = texts.map((t) => this.tokenizer.tokenize(t));
    const ems: TextEmissions[] = tokens.map((tk) => ({ tokens: tk, logits: new Float32Array(tk.length * L) }));
    const runs: OwnerRun[][][] = [];
    const remaining = new Int32Array(texts.length);
    const jobs: Job[] = [];
    let finished = 0;
    for (let i = 0; i < texts.length; i++) {
      const n = tokens[i].length;
      if (n === 0) {
        runs.push([]);
        finished++;
        continue;
      }
      const ws = planWindows(n, size, this.overlap);
      const perWindow: OwnerRun[][] = ws.map(() => []);
      let cur: OwnerRun | undefined;
      for (let t = 0; t < n; t++) {
        const w = ownerWindow(ws, t);
        if (cur && cur[0] === w && cur[2] === t) cur[2] = t + 1;
        else {
          cur = [w, t, t + 1];
          perWindow[w].push(cur);
        }
      }
      runs.push(perWindow);
      remaining[i] = ws.length;
      ws.forEach(([a, b], w) => jobs.push({ text: i, window: w, a, b }));
    }
    if (finished > 0) progress(finished);
    jobs.sort((x, y) => x.b - x.a - (y.b - y.a)); // stable: ties keep (text, window) order

    for (let j = 0; j < jobs.length; ) {
      // jobs ascend in length, so the last job taken sets the padded length
      let k = j + 1;
      while (k < jobs.length && k - j < this.batchSize && (k - j + 1) * (jobs[k].b - jobs[k].a + 2) <= this.maxBatchTokens) k++;
      const part = jobs.slice(j, k);
      j = k;
      const S = part[part.length - 1].b - part[part.length - 1].a + 2;
      const B = part.length;
      const n = B * S;
      if (this.ids.length < n) {
        const cap = Math.max(n, Math.min(this.batchSize * (size + 2), this.maxBatchTokens));
        this.ids = new Int32Array(cap);
        this.mask = new Int32Array(cap);
      }
      const ids = this.ids.subarray(0, n);
      const mask = this.mask.subarray(0, n);
      ids.fill(this.tokenizer.padId);
      mask.fill(0);
      for (let r = 0; r < B; r++) {
        const { text, a, b } = part[r];
        const tk = tokens[text];
        const o = r * S;
        ids[o] = this.tokenizer.clsId;
        for (let t = a; t < b; t++) ids[o + 1 + t - a] = tk[t].id;
        ids[o + 1 + b - a] = this.tokenizer.sepId;
        mask.fill(1, o, o + b - a + 2);
      }
      const out = await this.session.runFlat({ ids, mask, seqLen: S, batch: B });
      this.checkLabelCount(out.dims[2]);
      for (let r = 0; r < B; r++) {
        const { text, window, a } = part[r];
        const dst = ems[text].logits;
        for (const [, lo, hi] of runs[text][window]) {
          const from = (r * S + 1 + lo - a) * L;
          dst.set(out.logits.subarray(from, from + (hi - lo) * L), lo * L);
        }
        if (--remaining[text] === 0) finished++;
      }
      progress(finished);
    }
    return ems;
  }
}
