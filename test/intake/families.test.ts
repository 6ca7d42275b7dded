/**
 * The encoder-family fixtures (fixtures/intake/families/*, made by fixtures/intake/make_families.py):
 * ranerc's runtime (NerSession: it discovers the inputs, their int64/int32 type, feeds token_type_ids zeros
 * and position_ids 0..S−1) must reproduce the eval-mode PyTorch logits committed in each folder's
 * reference.json within 1e-4 (absolute), with the same argmax; for the CRF folders ranerc's Viterbi over
 * those logits must equal the PyTorch-side Viterbi tags. Data-driven: every folder under families/ (and
 * any folder with the same reference.json format added there) is checked.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { viterbiDecode } from '../../src/ner/viterbi.js';
import { loadModelFolder } from '../../src/onnx/folder.js';
import { NerSession } from '../../src/runtime/session.js';

const REPO = new URL('../../', import.meta.url).pathname;
export const FAMILIES = join(REPO, 'fixtures/intake/families');
const TOL = 1e-4;

interface RefCase {
  name: string;
  batch: number;
  sequence: number;
  input_ids: number[][];
  attention_mask: number[][];
  token_type_ids?: number[][];
  logits: number[][][];
  argmax: number[][];
  viterbi?: number[][];
}
interface Ref {
  inputs: string[];
  input_dtype: 'int64' | 'int32';
  cases: RefCase[];
}

const folders = readdirSync(FAMILIES).filter((d) => existsSync(join(FAMILIES, d, 'reference.json'))).sort();

describe('encoder-family fixtures against PyTorch', () => {
  it('has the families the issue names', () => {
    for (const f of ['distilbert-op13', 'electra-op15', 'albert-op12', 'bilstm-crf-lens-op14', 'bilstm-crf-op11', 'bert-int32-op16', 'bert-posids-op17']) {
      expect(folders).toContain(f);
    }
  });

  for (const name of folders) {
    it(`${name}: onnxruntime through NerSession = PyTorch logits (|Δ| < ${TOL}), argmax and Viterbi equal`, async () => {
      const dir = join(FAMILIES, name);
      const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as Ref;
      const folder = await loadModelFolder({ model: dir });
      const s = await NerSession.open(dir);
      try {
        expect(s.inputs.map((i) => i.name)).toEqual(ref.inputs);
        for (const i of s.inputs) expect(i.type).toBe(ref.input_dtype);
        for (const c of ref.cases) {
          const out = await s.run({ ids: c.input_ids, mask: c.attention_mask, typeIds: c.token_type_ids, seqLen: c.sequence, batch: c.batch });
          const L = out.dims[2];
          let worst = 0;
          for (let b = 0; b < c.batch; b++) {
            for (let t = 0; t < c.sequence; t++) {
              if (!c.attention_mask[b][t]) continue; // padded positions: not compared (no-lens LSTM reads them anyway)
              const row = out.logits.subarray((b * c.sequence + t) * L, (b * c.sequence + t + 1) * L);
              for (let j = 0; j < L; j++) worst = Math.max(worst, Math.abs(row[j] - c.logits[b][t][j]));
              let arg = 0;
              for (let j = 1; j < L; j++) if (row[j] > row[arg]) arg = j;
              expect(arg, `${c.name} row ${b} token ${t}`).toBe(c.argmax[b][t]);
            }
            if (c.viterbi) {
              expect(folder.crf, 'crf.json loaded').toBeDefined();
              const n = c.attention_mask[b].reduce((a, v) => a + v, 0);
              const rows = Array.from({ length: n }, (_, t) => out.logits.subarray((b * c.sequence + t) * L, (b * c.sequence + t + 1) * L));
              expect(viterbiDecode(rows, folder.crf!)).toEqual(c.viterbi[b]);
            }
          }
          expect(worst, c.name).toBeLessThan(TOL);
        }
      } finally {
        await s.close();
      }
    });
  }
});
