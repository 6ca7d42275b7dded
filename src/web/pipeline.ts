/**
 * The in-browser prediction pipeline: the same steps as src/runtime/predict.ts (Predictor.runChunk)
 * for one text at a time, built from the same modules (the page imports these compiled files, not
 * copies): WordPiece tokenizer → windows of `window` tokens overlapping by `overlap` → windows sorted
 * by length (stable) in batches of `batchSize` / `maxBatchTokens` → [CLS] window [SEP] rows padded
 * with mask 0 → each token's logits from its owner window → CRF Viterbi or argmax → entities.
 *
 * The model run is a callback, so this file has no onnxruntime import: the page passes
 * onnxruntime-web, a Node test can pass onnxruntime-node.
 */
import { tagsToEntities } from '../ner/decode.js';
import { LabelSet } from '../ner/labels.js';
import { WordPieceTokenizer } from '../ner/tokenizer.js';
import type { CrfParams, Entity } from '../ner/types.js';
import { argmaxDecode, viterbiDecode } from '../ner/viterbi.js';
import { ownerWindow, planWindows } from '../ner/windows.js';
import type { TokenizerConfig } from '../onnx/types.js';

/** What the page needs about the model: written by the server (/web/model.json) and by export-web. */
export interface WebModelSpec {
  format: 'ranerc-web/1';
  model: string;
  labels: string[];
  crf?: CrfParams;
  vocab: string[];
  tokenizerConfig: TokenizerConfig;
  window: number;
  overlap: number;
  batchSize: number;
  maxBatchTokens: number;
  /** URL of the ONNX file, relative to the page. */
  onnx: string;
  /** The graph's INT8 operators (empty for a float model). */
  int8Ops: string[];
  /** The graph's inputs and their integer types (token_type_ids is fed zeros, position_ids 0..S−1). */
  inputs: string[];
  inputTypes: Record<string, 'int64' | 'int32'>;
}

/** One model run: int64-as-number inputs of shape [batch, seqLen]; returns logits [batch, seqLen, labels]. */
export type RunModel = (feeds: { ids: Int32Array; mask: Int32Array; batch: number; seqLen: number }) => Promise<Float32Array>;

export class WebPredictor {
  readonly labels: LabelSet;
  readonly tokenizer: WordPieceTokenizer;
  readonly decoder: 'crf' | 'argmax';

  constructor(
    readonly spec: WebModelSpec,
    private readonly run: RunModel,
  ) {
    this.labels = new LabelSet(spec.labels);
    this.tokenizer = WordPieceTokenizer.fromVocab(spec.vocab, spec.tokenizerConfig);
    this.decoder = spec.crf ? 'crf' : 'argmax';
  }

  /** Entities of one text (offsets as /predict gives them). */
  async predict(text: string): Promise<Entity[]> {
    const L = this.spec.labels.length;
    const tokens = this.tokenizer.tokenize(text);
    const n = tokens.length;
    if (n === 0) return [];
    const size = this.spec.window;
    const ws = planWindows(n, size, this.spec.overlap);
    const jobs = ws.map(([a, b], w) => ({ w, a, b }));
    jobs.sort((x, y) => x.b - x.a - (y.b - y.a));
    const owner = Array.from({ length: n }, (_, t) => ownerWindow(ws, t));
    const logits = new Float32Array(n * L);
    const { padId, clsId, sepId } = this.tokenizer;
    for (let j = 0; j < jobs.length; ) {
      let k = j + 1;
      while (k < jobs.length && k - j < this.spec.batchSize && (k - j + 1) * (jobs[k].b - jobs[k].a + 2) <= this.spec.maxBatchTokens) k++;
      const part = jobs.slice(j, k);
      j = k;
      const S = part[part.length - 1].b - part[part.length - 1].a + 2;
      const B = part.length;
      const ids = new Int32Array(B * S).fill(padId);
      const mask = new Int32Array(B * S);
      part.forEach(({ a, b }, r) => {
        const o = r * S;
        ids[o] = clsId;
        for (let t = a; t < b; t++) ids[o + 1 + t - a] = tokens[t].id;
        ids[o + 1 + b - a] = sepId;
        mask.fill(1, o, o + b - a + 2);
      });
      const out = await this.run({ ids, mask, batch: B, seqLen: S });
      part.forEach(({ w, a, b }, r) => {
        for (let t = a; t < b; t++) {
          if (owner[t] !== w) continue;
          const from = (r * S + 1 + t - a) * L;
          logits.set(out.subarray(from, from + L), t * L);
        }
      });
    }
    const rows = Array.from({ length: n }, (_, t) => logits.subarray(t * L, (t + 1) * L));
    const tags = this.spec.crf ? viterbiDecode(rows, this.spec.crf) : argmaxDecode(rows);
    return tagsToEntities(text, tokens, tags, this.labels, {});
  }

  /** The /predict answer for one text: entities with offsets in Unicode code points, end exclusive. */
  async predictAnswer(text: string): Promise<{ entities: Array<{ text: string; type: string; start: number; end: number }> }> {
    const cp = (utf16: number): number => Array.from(text.slice(0, utf16)).length;
    const entities = await this.predict(text);
    return { entities: entities.map((e) => ({ text: e.text, type: e.type, start: cp(e.start), end: cp(e.end) })) };
  }
}
