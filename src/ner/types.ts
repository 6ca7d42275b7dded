/**
 * Shared NER data types. Character offsets are JavaScript string indices (UTF-16 code units);
 * `end` is exclusive, so a mention is `text.slice(start, end)`.
 */

/** A typed character span. */
export interface Span {
  start: number;
  end: number;
  type: string;
}

/** A predicted or gold entity with its surface text (the `predict`/`serve` answer shape). */
export interface Entity extends Span {
  text: string;
}

/** One sentence of a data set. `source` says where it came from, for error messages. */
export interface Example {
  text: string;
  entities: Span[];
  source?: { file: string; line: number };
}

/** A WordPiece token with the [start, end) character offsets of the source text it covers. */
export interface Token {
  id: number;
  piece: string;
  start: number;
  end: number;
  /** Index of the basic-tokenizer word (whitespace/punctuation/CJK split) this piece belongs to. */
  word: number;
}

/** Linear-chain CRF parameters, as stored in a model folder's `crf.json` (format "ranerc-crf/1"). */
export interface CrfParams {
  /** Label names in emission order (must equal the model's id2label order). */
  labels: string[];
  /** transitions[from][to]. */
  transitions: number[][];
  /** Score of starting with each label. */
  start: number[];
  /** Score of ending with each label. */
  end: number[];
  /**
   * Which positions the CRF runs over: every sub-token (default) or only the first sub-token of each word,
   * as ModelScope's TransformerCRF does after compacting its emissions by `label_mask` (crf.json
   * `"positions": "words"`, written by `ranerc convert`).
   */
  positions?: 'tokens' | 'words';
}

/** Precision/recall/F1 with the counts they come from. */
export interface Prf {
  precision: number;
  recall: number;
  f1: number;
  /** true positives */
  tp: number;
  /** number of gold spans */
  gold: number;
  /** number of predicted spans */
  pred: number;
}

/** Micro-averaged scores over all types plus one row per type (sorted by type name). */
export interface F1Scores {
  micro: Prf;
  perType: Record<string, Prf>;
}
