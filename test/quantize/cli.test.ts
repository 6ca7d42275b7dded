/**
 * `ranerc quantize` end to end through main(): the output folder is a drop-in replacement (config, vocab,
 * tokenizer, CRF carried over; provenance with the calibration settings), the report's F1 numbers equal a
 * separate `ranerc eval` of each folder, the accuracy guard returns nodes to float and says when the budget
 * is not met (exit 3), and bad usage exits 2 without writing anything.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../src/onnx/external.js';
import type { QuantizeDetails } from '../../src/quantize/types.js';
import type { Report } from '../../src/report/schema.js';
import { cli, REPO } from '../cli/helpers.js';

const TMP = mkdtempSync(join(tmpdir(), 'ranerc-quantize-cli-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

const MODEL = `${REPO}fixtures/tiny/bio-crf-op14`;
const CALIB = `${REPO}fixtures/data/msra_calib.jsonl`;
/** The first 100 sentences of the MSRA dev sample (keeps each eval short). */
const EVAL = join(TMP, 'dev100.jsonl');
writeFileSync(EVAL, `${readFileSync(`${REPO}fixtures/data/msra_dev_sample.jsonl`, 'utf8').split('\n').slice(0, 100).join('\n')}\n`);

function parse(out: string): Report<QuantizeDetails> {
  return JSON.parse(out) as Report<QuantizeDetails>;
}

async function evalMicro(model: string): Promise<{ tp: number; gold: number; pred: number; f1: number }> {
  const r = await cli('eval', '--model', model, '--data', EVAL, '--json', '--report-dir', join(TMP, `eval-${Math.random()}`));
  expect(r.code, r.err).toBe(0);
  return (JSON.parse(r.out) as Report).models[0].f1!.micro;
}

describe('ranerc quantize', () => {
  it('static QDQ: a complete drop-in folder, report F1 = `ranerc eval` of both folders, SQNR table', async () => {
    const out = join(TMP, 'qdq');
    const r = await cli('quantize', '--model', MODEL, '--calib', CALIB, '--calib-size', '40', '--out', out, '--eval', EVAL, '--no-bench', '--json', '--report-dir', join(TMP, 'rep-qdq'));
    expect(r.code, r.err).toBe(0);
    const report = parse(r.out);
    expect(report.command).toBe('quantize');
    const [before, after] = report.models;
    expect([before.role, after.role]).toEqual(['before', 'after']);
    for (const f of ['model.onnx', 'config.json', 'vocab.txt', 'tokenizer_config.json', 'crf.json', 'ranerc.json']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(readFileSync(join(out, 'crf.json'), 'utf8')).toBe(readFileSync(join(MODEL, 'crf.json'), 'utf8'));
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).id2label).toEqual(JSON.parse(readFileSync(join(MODEL, 'config.json'), 'utf8')).id2label);
    const prov = JSON.parse(readFileSync(join(out, 'ranerc.json'), 'utf8'));
    expect(prov.command).toBe('quantize');
    expect(prov.settings).toMatchObject({ mode: 'static', format: 'qdq', calibration: { method: 'minmax', sentences: 40 } });

    // the numbers agree with separate evaluations of the folders
    const fEval = await evalMicro(MODEL);
    const qEval = await evalMicro(out);
    expect(before.f1!.micro).toMatchObject({ tp: fEval.tp, gold: fEval.gold, pred: fEval.pred });
    expect(after.f1!.micro).toMatchObject({ tp: qEval.tp, gold: qEval.gold, pred: qEval.pred });
    expect(after.f1!.micro.f1).toBe(qEval.f1);

    // size and parameters: int8 weights, same parameter count
    expect(after.bytes).toBeLessThan(before.bytes * 0.7);
    expect(after.parameters).toBe(before.parameters);
    const d = report.details;
    expect(d.calibration).toMatchObject({ method: 'minmax', sentences: 40, collection: 'reduce-in-graph' });
    expect(d.nodes.quantized).toBe(d.sqnr.length);
    expect(d.nodes.byOpType).toEqual({ MatMul: { quantized: 17, float: 0 }, Gather: { quantized: 3, float: 0 } });
    for (const row of d.sqnr) {
      expect(row.localSqnrDb).not.toBeNull();
      expect(row.localSqnrDb!).toBeGreaterThan(15);
      expect(row.outputSqnrDb!).toBeGreaterThan(10);
    }
    expect(d.floatByDesign).toMatchObject({ Softmax: 2, Erf: 2, ReduceMean: 10 });
    const md = readFileSync(join(TMP, 'rep-qdq', 'report.md'), 'utf8');
    expect(md).toContain('### Per-node SQNR');
    expect(md).toContain('### Left in float');
    // the folder loads as a model folder and runs in eval (above); the quantized graph has the QDQ ops
    const ops = new Set((await loadModel(join(out, 'model.onnx'))).model.graph!.node!.map((n) => n.opType));
    expect([...ops]).toEqual(expect.arrayContaining(['QuantizeLinear', 'DequantizeLinear', 'MatMul']));
  });

  it('dynamic mode needs no calibration; the table has weight SQNRs only', async () => {
    const out = join(TMP, 'dyn');
    const r = await cli('quantize', '--model', MODEL, '--dynamic', '--out', out, '--no-bench', '--json', '--report-dir', join(TMP, 'rep-dyn'));
    expect(r.code, r.err).toBe(0);
    const d = parse(r.out).details;
    expect(d.mode).toBe('dynamic');
    expect(d.calibration).toBeUndefined();
    expect(d.sqnr.every((row) => row.inputs.every((i) => (i.kind === 'weight') === (i.sqnrDb !== null)))).toBe(true);
    const ops = (await loadModel(join(out, 'model.onnx'))).model.graph!.node!.map((n) => n.opType);
    expect(ops).toContain('DynamicQuantizeLinear');
    expect(ops).toContain('MatMulInteger');
  });

  it('latency and profile: the report carries the op-time table of both models; SQNR on held-out sentences', async () => {
    const out = join(TMP, 'prof');
    const rep = join(TMP, 'rep-prof');
    const r = await cli('quantize', '--model', MODEL, '--calib', CALIB, '--calib-size', '30', '--sqnr-size', '4', '--out', out, '--seq', '16', '--bench-seconds', '0.2', '--threads', '1', '--json', '--report-dir', rep);
    expect(r.code, r.err).toBe(0);
    const d = parse(r.out).details;
    expect(d.sqnrSource).toBe('held-out');
    expect(d.sqnrSentences).toBe(4);
    const p = d.profile!;
    expect([p.seqLen, p.batch]).toEqual([16, 1]);
    // the float graph runs float GEMMs only; the quantized one integer kernels
    expect(p.float.rows.some((x) => x.category === 'gemm-int8')).toBe(false);
    expect(p.int8!.rows.some((x) => x.category === 'gemm-int8')).toBe(true);
    expect(p.comparison!.bound).toBeCloseTo(1 / (1 - p.float.gemmShare + p.float.gemmShare / p.comparison!.gemmSpeedRatio), 9);
    expect(p.measuredSpeedup).toBeGreaterThan(0);
    expect(readFileSync(join(rep, 'report.md'), 'utf8')).toContain('### Where the time goes');
  });

  it('accuracy guard: returns the worst nodes to float until the budget holds', async () => {
    const out = join(TMP, 'guard');
    // a 60th-percentile range clips most activations: a large F1 drop the guard has to repair
    const r = await cli('quantize', '--model', MODEL, '--calib', CALIB, '--calib-size', '20', '--method', 'percentile', '--percentile', '60', '--out', out, '--eval', EVAL, '--max-f1-drop', '0.5', '--no-bench', '--json', '--report-dir', join(TMP, 'rep-guard'));
    const report = parse(r.out);
    const g = report.details.guard!;
    expect(g.tries[0].dropPoints).toBeGreaterThan(0.5);
    expect(g.met).toBe(true);
    expect(r.code).toBe(0);
    const chosen = g.tries[g.chosen];
    expect(chosen.withinBudget).toBe(true);
    expect(chosen.dropPoints).toBeLessThanOrEqual(0.5);
    // earlier tries did not meet the budget, and each try returned more nodes (worst local SQNR first)
    for (const t of g.tries.slice(0, g.chosen)) expect(t.withinBudget).toBe(false);
    for (let i = 1; i < g.tries.length; i++) expect(g.tries[i].floatNodes.length).toBeGreaterThan(g.tries[i - 1].floatNodes.length);
    const ranked = [...report.details.sqnr].sort((a, b) => (a.localSqnrDb ?? Infinity) - (b.localSqnrDb ?? Infinity)).map((x) => x.node);
    expect(chosen.floatNodes).toEqual(ranked.slice(0, chosen.floatNodes.length));
    // those nodes really are float in the written model and are listed with the reason
    const graph = (await loadModel(join(out, 'model.onnx'))).model.graph!;
    const producers = new Map(graph.node!.flatMap((n) => n.output!.map((o) => [o, n.opType] as const)));
    for (const name of chosen.floatNodes) {
      const node = graph.node!.find((n) => n.name === name)!;
      if (node.opType === 'MatMul') expect(node.input!.some((i) => producers.get(i) === 'DequantizeLinear'), name).toBe(false);
      expect(report.details.leftInFloat.find((f) => f.node === name)?.reason).toMatch(/returned to float by the accuracy guard/);
    }
    expect(report.models[1].f1!.micro.f1).toBeCloseTo(chosen.f1, 12);
    expect((await evalMicro(out)).f1).toBe(chosen.f1);
  });

  it('accuracy guard out of tries: best model written, budget NOT met, exit 3', async () => {
    const out = join(TMP, 'guard-fail');
    const r = await cli('quantize', '--model', MODEL, '--calib', CALIB, '--calib-size', '20', '--method', 'percentile', '--percentile', '60', '--out', out, '--eval', EVAL, '--max-f1-drop', '0.5', '--max-tries', '1', '--no-bench', '--json', '--report-dir', join(TMP, 'rep-guard-fail'));
    const report = parse(r.out);
    const g = report.details.guard!;
    expect(g.met).toBe(false);
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/F1 budget NOT met/);
    expect(g.tries).toHaveLength(2);
    const best = Math.max(...g.tries.map((t) => t.f1));
    expect(g.tries[g.chosen].f1).toBe(best);
    expect(existsSync(join(out, 'model.onnx'))).toBe(true);
    expect((await evalMicro(out)).f1).toBe(best);
  });

  it('bad usage exits 2 and writes nothing', async () => {
    const out = join(TMP, 'never');
    const cases: Array<[string[], RegExp]> = [
      [['--model', MODEL, '--out', out], /needs calibration data \(--calib\)/],
      [['--model', MODEL, '--calib', CALIB, '--out', out, '--max-f1-drop', '1'], /--max-f1-drop needs --eval/],
      [['--model', MODEL, '--calib', CALIB, '--out', out, '--method', 'kl'], /--method must be one of minmax, percentile, entropy/],
      [['--model', MODEL, '--calib', CALIB, '--out', out, '--format', 'int4'], /--format must be qdq, qoperator or auto/],
      [['--model', MODEL, '--calib', CALIB, '--out', out, '--exclude', 'NoSuchNode'], /--exclude "NoSuchNode" matches no node/],
      [['--model', MODEL, '--dynamic', '--format', 'qdq', '--out', out], /--format qdq does not apply/],
      [['--model', join(TMP, 'missing'), '--calib', CALIB, '--out', out], /model path does not exist/],
      [['--model', MODEL, '--calib', join(TMP, 'missing.jsonl'), '--out', out], /missing\.jsonl/],
      [['--model', MODEL, '--calib', CALIB, '--out', MODEL], /--out is the input model folder/],
    ];
    for (const [args, msg] of cases) {
      const r = await cli('quantize', ...args, '--no-bench', '--report-dir', join(TMP, 'rep-never'));
      expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(2);
      expect(r.err).toMatch(msg);
      expect(r.err).toMatch(/hint:/);
      expect(existsSync(out)).toBe(false);
      expect(existsSync(join(TMP, 'rep-never'))).toBe(false);
    }
  });
});
