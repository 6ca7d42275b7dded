/**
 * Proof that a conversion is faithful: on given texts, ranerc's Viterbi (src/ner/viterbi.ts) over the
 * converted model's emissions against the original graph's own decode, run in onnxruntime the way its
 * exporter ran it (batch 1, padded to the fixed length, `label_mask` true on the first sub-token of each word,
 * `offset_mapping` the tokens' character offsets).
 *
 * Two agreements are measured per word position:
 * - `words`: Viterbi over the first sub-token of each word (the positions the graph's compaction keeps), the
 *   same computation as the graph's decode and what `eval`/`predict`/`serve` do with the converted folder
 *   (its crf.json says `"positions": "words"`); must be 100% for texts within the fixed length;
 * - `allPieces`: Viterbi over every sub-token, then the first sub-token's tag (a CRF over tokens, the
 *   crf.json default), for comparison; may differ where words have several pieces.
 */
import * as ort from 'onnxruntime-node';
import { InputError } from '../../errors.js';
import type { NerTokenizer } from '../../ner/tokenizers/index.js';
import type { CrfParams, Token } from '../../ner/types.js';
import { viterbiDecode } from '../../ner/viterbi.js';

export interface EquivalenceResult {
  texts: number;
  /** Texts whose tokens fit in the fixed length (fixedLength − 2 pieces). */
  compared: number;
  /** Texts longer than the fixed length (not comparable: the graph cannot read them whole). */
  longer: number;
  /** Texts with no tokens. */
  empty: number;
  positions: number;
  words: { matched: number; rate: number; textsEqual: number };
  allPieces: { matched: number; rate: number; textsEqual: number };
  /** First mismatches (text index, word index, graph tag, ranerc tag), at most 10. */
  mismatches: Array<{ text: number; word: number; graph: number; ranerc: number }>;
  /** The graph's own word tags per text (undefined for texts not compared). */
  graphTags: Array<number[] | undefined>;
  /** Tokens per text (undefined for texts not compared). */
  tokens: Array<Token[] | undefined>;
}

type Feed = (toks: Token[], P: number) => ort.Tensor;

function rawFeeds(session: ort.InferenceSession, tok: NerTokenizer, file: string): Map<string, Feed> {
  const feeds = new Map<string, Feed>();
  const ids = (toks: Token[], P: number): number[] => {
    const out = new Array<number>(P).fill(tok.padId);
    out[0] = tok.clsId;
    toks.forEach((t, i) => (out[i + 1] = t.id));
    out[toks.length + 1] = tok.sepId;
    return out;
  };
  for (const meta of session.inputMetadata) {
    const type = meta.isTensor ? meta.type : 'non-tensor';
    const intArray = (vals: number[]): ort.Tensor['data'] => (type === 'int32' ? Int32Array.from(vals) : BigInt64Array.from(vals.map((v) => BigInt(v))));
    const intType = type === 'int32' ? 'int32' : 'int64';
    if ((meta.name === 'input_ids' || meta.name === 'attention_mask' || meta.name === 'token_type_ids' || meta.name === 'offset_mapping') && type !== 'int64' && type !== 'int32') {
      throw new InputError(`graph input "${meta.name}" has element type ${type}; ranerc feeds it as int64/int32`, { file, node: meta.name, hint: 're-export with integer token inputs' });
    }
    switch (meta.name) {
      case 'input_ids':
        feeds.set(meta.name, (toks, P) => new ort.Tensor(intType, intArray(ids(toks, P)), [1, P]));
        break;
      case 'attention_mask':
        feeds.set(meta.name, (toks, P) => new ort.Tensor(intType, intArray(Array.from({ length: P }, (_, i) => (i < toks.length + 2 ? 1 : 0))), [1, P]));
        break;
      case 'token_type_ids':
        feeds.set(meta.name, (_t, P) => new ort.Tensor(intType, intArray(new Array<number>(P).fill(0)), [1, P]));
        break;
      case 'offset_mapping':
        feeds.set(meta.name, (toks, P) => {
          const v = new Array<number>(2 * P).fill(0);
          toks.forEach((t, i) => {
            v[2 * (i + 1)] = t.start;
            v[2 * (i + 1) + 1] = t.end;
          });
          return new ort.Tensor(intType, intArray(v), [1, P, 2]);
        });
        break;
      case 'label_mask':
        feeds.set(meta.name, (toks, P) => {
          const v = new Array<number>(P).fill(0);
          toks.forEach((t, i) => (v[i + 1] = i === 0 || toks[i - 1].word !== t.word ? 1 : 0));
          if (type === 'bool') return new ort.Tensor('bool', Uint8Array.from(v), [1, P]);
          return new ort.Tensor(intType, intArray(v), [1, P]);
        });
        break;
      default:
        throw new InputError(`graph input "${meta.name}" of the original export is unknown to ranerc, so its own decode cannot be run for the proof`, {
          file,
          node: meta.name,
          hint: 'ranerc feeds input_ids, attention_mask, token_type_ids, offset_mapping and label_mask (first sub-token of each word)',
        });
    }
  }
  return feeds;
}

/** Compare the converted model + CRF against the original graph's decode on `texts`. */
export async function checkEquivalence(
  rawOnnxPath: string,
  converted: { onnxPath: string; crf: CrfParams },
  tokenizer: NerTokenizer,
  texts: string[],
  fixedLength: number,
  opts: { threads?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<EquivalenceResult> {
  const so: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3, intraOpNumThreads: opts.threads ?? 1, interOpNumThreads: 1 };
  const raw = await ort.InferenceSession.create(rawOnnxPath, so);
  const conv = await ort.InferenceSession.create(converted.onnxPath, so);
  try {
    const feeds = rawFeeds(raw, tokenizer, rawOnnxPath);
    const convInputs = conv.inputNames;
    const L = converted.crf.start.length;
    const res: EquivalenceResult = {
      texts: texts.length,
      compared: 0,
      longer: 0,
      empty: 0,
      positions: 0,
      words: { matched: 0, rate: 0, textsEqual: 0 },
      allPieces: { matched: 0, rate: 0, textsEqual: 0 },
      mismatches: [],
      graphTags: [],
      tokens: [],
    };
    for (let k = 0; k < texts.length; k++) {
      opts.onProgress?.(k, texts.length);
      const toks = tokenizer.tokenize(texts[k]);
      res.graphTags.push(undefined);
      res.tokens.push(undefined);
      if (toks.length === 0) {
        res.empty++;
        continue;
      }
      if (toks.length > fixedLength - 2) {
        res.longer++;
        continue;
      }
      const P = fixedLength;
      const rawFeed: Record<string, ort.Tensor> = {};
      for (const [name, f] of feeds) rawFeed[name] = f(toks, P);
      const rawOut = await raw.run(rawFeed);
      const pred = rawOut[raw.outputNames[0]] as ort.Tensor;
      const first = toks.map((t, i) => i === 0 || toks[i - 1].word !== t.word);
      const nWords = first.filter(Boolean).length;
      const graph = Array.from(pred.data as ArrayLike<number | bigint>, (v) => Number(v)).slice(0, nWords);
      // converted, unpadded, batch 1
      const n = toks.length + 2;
      const convFeed: Record<string, ort.Tensor> = {};
      for (const name of convInputs) convFeed[name] = feeds.get(name)!(toks, n);
      const out = await conv.run(convFeed);
      const logits = out.logits.data as Float32Array;
      const rows = Array.from({ length: toks.length }, (_, i) => logits.subarray((i + 1) * L, (i + 2) * L));
      const wordTags = viterbiDecode(rows.filter((_, i) => first[i]), converted.crf);
      const pieceTags = viterbiDecode(rows, converted.crf).filter((_, i) => first[i]);
      let wm = 0;
      let pm = 0;
      for (let w = 0; w < nWords; w++) {
        if (wordTags[w] === graph[w]) wm++;
        else if (res.mismatches.length < 10) res.mismatches.push({ text: k, word: w, graph: graph[w], ranerc: wordTags[w] });
        if (pieceTags[w] === graph[w]) pm++;
      }
      res.compared++;
      res.positions += nWords;
      res.words.matched += wm;
      res.allPieces.matched += pm;
      if (wm === nWords) res.words.textsEqual++;
      if (pm === nWords) res.allPieces.textsEqual++;
      res.graphTags[k] = graph;
      res.tokens[k] = toks;
    }
    opts.onProgress?.(texts.length, texts.length);
    res.words.rate = res.positions ? res.words.matched / res.positions : 1;
    res.allPieces.rate = res.positions ? res.allPieces.matched / res.positions : 1;
    return res;
  } finally {
    await raw.release();
    await conv.release();
  }
}
