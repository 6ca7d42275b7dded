/** Run the CLI in-process through `main()`, capturing stdout/stderr. */
import { readFileSync } from 'node:fs';
import { main } from '../../src/cli/index.js';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export async function cli(...args: string[]): Promise<CliResult> {
  let out = '';
  let err = '';
  const code = await main(['node', 'ranerc', ...args], {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    interactive: false,
  });
  return { code, out, err };
}

export const REPO = new URL('../../', import.meta.url).pathname;

export interface FactsCase {
  id: string;
  model: string;
  onnx_sha256: string;
  data: string;
  sentences: number;
  window: number;
  overlap: number;
  mode: 'default' | 'strict';
  decoder: 'crf' | 'argmax';
  windowed_sentences: number;
  micro: { tp: number; gold: number; pred: number; precision: number; recall: number; f1: number };
  per_type: Record<string, { tp: number; gold: number; pred: number }>;
  predictions: Array<{ text: string; entities: Array<{ text: string; type: string; start: number; end: number }> }>;
}

/** PyTorch-computed facts (test/cli/fixtures/make_eval_facts.py). */
export const FACTS = (
  JSON.parse(readFileSync(new URL('./fixtures/eval_facts.json', import.meta.url), 'utf8')) as { cases: FactsCase[] }
).cases;
