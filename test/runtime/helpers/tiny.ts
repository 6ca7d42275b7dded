/**
 * Reads the tiny PyTorch-exported fixture folders (fixtures/tiny/*) directly — a ModelFolder built by
 * hand from their files, so runtime tests do not depend on the folder loader — and their reference.json
 * (PyTorch eval-mode logits for given input ids).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CrfParams } from '../../../src/ner/types.js';
import type { ModelConfig, ModelFolder, TokenizerConfig } from '../../../src/onnx/types.js';

export const TINY = new URL('../../../fixtures/tiny/', import.meta.url).pathname;

export interface ReferenceCase {
  name: string;
  batch: number;
  sequence: number;
  texts: string[];
  input_ids: number[][];
  attention_mask: number[][];
  token_type_ids?: number[][];
  logits: number[][][];
}

export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

export function tinyReference(name: string): ReferenceCase[] {
  return readJson<{ cases: ReferenceCase[] }>(join(TINY, name, 'reference.json')).cases;
}

export function tinyFolder(name: string): ModelFolder {
  const dir = join(TINY, name);
  const optimum = existsSync(join(dir, 'onnx', 'model.onnx'));
  const onnxPath = optimum ? join(dir, 'onnx', 'model.onnx') : join(dir, 'model.onnx');
  let config: ModelConfig;
  let labels: string[];
  if (existsSync(join(dir, 'config.json'))) {
    config = readJson<ModelConfig>(join(dir, 'config.json'));
    labels = Object.keys(config.id2label)
      .map(Number)
      .sort((a, b) => a - b)
      .map((i) => config.id2label[String(i)]);
  } else {
    labels = readFileSync(join(dir, 'labels.txt'), 'utf8').split('\n').filter((l) => l.length > 0);
    config = { id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])) };
  }
  const tokenizerConfig: TokenizerConfig = existsSync(join(dir, 'tokenizer_config.json'))
    ? readJson<TokenizerConfig>(join(dir, 'tokenizer_config.json'))
    : {};
  let crf: CrfParams | undefined;
  if (existsSync(join(dir, 'crf.json'))) {
    const c = readJson<{ labels: string[]; transitions: number[][]; start_transitions: number[]; end_transitions: number[] }>(
      join(dir, 'crf.json'),
    );
    crf = { labels: c.labels, transitions: c.transitions, start: c.start_transitions, end: c.end_transitions };
  }
  const maxLength =
    typeof tokenizerConfig.model_max_length === 'number' && tokenizerConfig.model_max_length < 1e6
      ? tokenizerConfig.model_max_length
      : (config.max_position_embeddings ?? 512);
  return {
    dir,
    onnxPath,
    bare: !existsSync(join(dir, 'config.json')),
    config,
    labels,
    vocabPath: join(dir, 'vocab.txt'),
    tokenizerConfig,
    crf,
    maxLength,
    extraFiles: [],
  };
}
