import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InspectResult } from '../../src/onnx/inspect.js';
import type { Report } from '../../src/report/schema.js';
import { cli, REPO } from './helpers.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ranerc-inspect-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** meta.json written by fixtures/tiny/make_tiny.py from the PyTorch model and the exported graph. */
interface Meta {
  layers: number;
  heads: number;
  head_size: number;
  hidden: number;
  parameter_count: number;
  opset: number;
  inputs: string[];
  outputs: string[];
  op_histogram: Record<string, number>;
}

const CASES: Array<[string, string]> = [
  ['bio-crf-op14', 'bio-crf-op14'],
  ['bioes-op17', 'bioes-op17'],
  ['bmes-op12-nobias', 'bmes-op12-nobias'],
  ['optimum-layout', 'optimum-layout'],
  ['bare/model.onnx', 'bare'],
];

describe('ranerc inspect', () => {
  for (const [arg, metaDir] of CASES) {
    it(`reports the facts of ${arg} that make_tiny.py recorded`, async () => {
      const meta = JSON.parse(await readFile(join(REPO, 'fixtures', 'tiny', metaDir, 'meta.json'), 'utf8')) as Meta;
      const r = await cli('inspect', '--model', join(REPO, 'fixtures', 'tiny', arg), '--json');
      expect(r.code, r.err).toBe(0);
      const report = JSON.parse(r.out) as Report<InspectResult>;
      const d = report.details;
      expect(report.command).toBe('inspect');
      expect(d.attention.layers).toBe(meta.layers);
      expect(d.attention.heads).toBe(meta.heads);
      expect(d.attention.headSize).toBe(meta.head_size);
      expect(d.attention.shape).toBe(`${meta.layers} × ${meta.heads}`);
      expect(d.parameters.total).toBe(meta.parameter_count);
      expect(report.models[0].parameters).toBe(meta.parameter_count);
      expect(d.opsets.find((o) => o.domain === 'ai.onnx')?.version).toBe(meta.opset);
      expect(d.inputs.map((i) => i.name)).toEqual(meta.inputs);
      expect(d.outputs.map((o) => o.name)).toEqual(meta.outputs);
      expect(Object.fromEntries(d.ops.map((o) => [o.op, o.count]))).toEqual(meta.op_histogram);
      expect(d.size.totalBytes).toBe(report.models[0].bytes);
    });
  }

  it('prints tables by default and writes a report only with --report-dir', async () => {
    const model = join(REPO, 'fixtures', 'tiny', 'bio-crf-op14');
    const plain = await cli('inspect', '--model', model);
    expect(plain.code).toBe(0);
    expect(plain.out).toMatch(/attention\s+2 × 4 \(layers × heads\), head size 8, hidden 32/);
    expect(plain.out).toMatch(/parameters\s+32,295/);
    expect(plain.out).toMatch(/input_ids\s+int64\s+\[batch, sequence\]/);
    const dir = join(tmp, 'rep');
    const withReport = await cli('inspect', '--model', model, '--report-dir', dir);
    expect(withReport.code).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(['report.json', 'report.md']);
    const md = await readFile(join(dir, 'report.md'), 'utf8');
    expect(md).toContain('| attention (layers × heads) | 2 × 4 |');
  });

  it('exits 2 naming the file for a corrupt model', async () => {
    const r = await cli('inspect', '--model', join(REPO, 'fixtures', 'data', 'msra_calib.jsonl'));
    expect(r.code).toBe(2);
    expect(r.err).toContain('msra_calib.jsonl');
  });
});
