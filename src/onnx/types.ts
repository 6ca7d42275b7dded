import type { CrfParams } from '../ner/types.js';

/** The subset of a Hugging Face `config.json` ranerc reads; other keys are kept as they are. */
export interface ModelConfig {
  id2label: Record<string, string>;
  label2id?: Record<string, number>;
  model_type?: string;
  hidden_size?: number;
  num_attention_heads?: number;
  num_hidden_layers?: number;
  intermediate_size?: number;
  max_position_embeddings?: number;
  vocab_size?: number;
  [key: string]: unknown;
}

/** `tokenizer_config.json` keys ranerc honours (Hugging Face BertTokenizer names). */
export interface TokenizerConfig {
  do_lower_case?: boolean;
  strip_accents?: boolean | null;
  tokenize_chinese_chars?: boolean;
  model_max_length?: number;
  unk_token?: string;
  cls_token?: string;
  sep_token?: string;
  pad_token?: string;
  mask_token?: string;
  [key: string]: unknown;
}

/** Provenance ranerc writes into every model folder it produces (`ranerc.json`). */
export interface Provenance {
  ranerc: string;
  command: string;
  createdAt: string;
  /** SHA-256 of the source model file(s) this folder was derived from. */
  source?: { path: string; sha256: string };
  /** Free-form settings of the step that wrote it (ratio, calibration, ...). */
  settings?: Record<string, unknown>;
  /** Earlier steps, oldest first. */
  history?: Array<Omit<Provenance, 'history'>>;
}

/** A model folder (HF/Optimum layout) or a bare .onnx with --labels/--vocab, resolved and validated. */
export interface ModelFolder {
  /** The folder (for a bare .onnx, its directory). */
  dir: string;
  /** Absolute path of the ONNX file. */
  onnxPath: string;
  /** True when the user passed a bare .onnx file. */
  bare: boolean;
  config: ModelConfig;
  /** Label names by id (id2label in id order). */
  labels: string[];
  /** Absolute path of the WordPiece vocab.txt (the folder's, or --vocab), when there is one. */
  vocabPath?: string;
  /** Absolute path of the folder's `tokenizer.json` (Hugging Face fast tokenizer), when it has one (and no --vocab was passed); commands read it in preference to vocab.txt. */
  tokenizerPath?: string;
  tokenizerConfig: TokenizerConfig;
  /** CRF transitions when the folder carries `crf.json`. */
  crf?: CrfParams;
  /** Maximum tokens per model input including [CLS]/[SEP] (model_max_length, else max_position_embeddings, else 512). */
  maxLength: number;
  provenance?: Provenance;
  /** Files in the folder (relative paths) other than the ONNX model and its external data. */
  extraFiles: string[];
  /** The file the labels were read from (config.json or the --labels file), for messages. */
  labelsPath?: string;
  /** Absolute paths of the external data files the ONNX model references (empty when none). */
  externalDataFiles?: string[];
  /** Set when the folder's graph was a CRF-in-graph export converted at load (onnxPath is the converted model). */
  conversion?: import('./convert/load.js').ModelConversion;
}
