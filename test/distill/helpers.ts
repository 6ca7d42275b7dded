/** Shared set-up for the distillation tests: the tiny BIO+CRF teacher and small MSRA slices in a temp folder. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../../src/autodiff/backend.js';
import { loadModelFolder } from '../../src/onnx/folder.js';
import type { ModelFolder } from '../../src/onnx/types.js';

export const REPO = new URL('../../', import.meta.url).pathname;
export const TEACHER = join(REPO, 'fixtures/tiny/bio-crf-op14');
/** [CLS]/[SEP]/[PAD] ids of the tiny teacher's vocabulary. */
export const SPECIAL = { cls: 2, sep: 3, pad: 0 };

export interface Workspace {
  tmp: string;
  /** The first 240 sentences of fixtures/data/msra_train_sample.jsonl. */
  trainFile: string;
  /** The first 60 sentences of fixtures/data/msra_dev_sample.jsonl. */
  devFile: string;
  teacher: ModelFolder;
  cleanup(): Promise<void>;
}

async function head(src: string, n: number, dst: string): Promise<void> {
  const lines = (await readFile(src, 'utf8')).split('\n').filter((l) => l.trim() !== '');
  await writeFile(dst, lines.slice(0, n).join('\n') + '\n');
}

export async function workspace(): Promise<Workspace> {
  await initBackend('wasm');
  const tmp = await mkdtemp(join(tmpdir(), 'ranerc-distill-test-'));
  const trainFile = join(tmp, 'train.jsonl');
  const devFile = join(tmp, 'dev.jsonl');
  await head(join(REPO, 'fixtures/data/msra_train_sample.jsonl'), 240, trainFile);
  await head(join(REPO, 'fixtures/data/msra_dev_sample.jsonl'), 60, devFile);
  const teacher = await loadModelFolder({ model: TEACHER });
  return { tmp, trainFile, devFile, teacher, cleanup: () => rm(tmp, { recursive: true, force: true }) };
}
