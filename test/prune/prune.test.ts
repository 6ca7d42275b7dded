/**
 * `pruneModelFolder` end to end on a tiny PyTorch export (fixtures/tiny/bio-crf-op14: 2 layers × 4
 * heads, CRF): the written folder, its heads and parameters, the equivalence check, rounds, FFN
 * neurons, empty layers, the cache, the report and heat map, and refusals that write nothing.
 * Latency is not timed here (timings belong in bench/prune.mjs).
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ExitCode, GraphError, InputError, UsageError } from '../../src/errors.js';
import { encodeModel, onnx } from '../../src/onnx/codec.js';
import { findAttentionBlocks } from '../../src/onnx/attention.js';
import { loadModel } from '../../src/onnx/external.js';
import { renderMarkdown } from '../../src/report/markdown.js';
import { reportProblem } from '../../src/report/schema.js';
import { pruneModelFolder, type PruneOptions } from '../../src/prune/prune.js';
import { MSRA_DEV, MSRA_TEST, MSRA_TRAIN, TINY } from './helpers.js';

const MODEL = join(TINY, 'bio-crf-op14');
const tmp = mkdtempSync(join(tmpdir(), 'ranerc-prune-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const evalFile = join(tmp, 'eval.jsonl');
writeFileSync(evalFile, readFileSync(MSRA_TEST, 'utf8').split('\n').slice(0, 40).join('\n') + '\n');

let n = 0;
function opts(extra: Partial<PruneOptions>): PruneOptions {
  n++;
  return {
    model: MODEL,
    data: MSRA_DEV,
    maxSentences: 30,
    out: join(tmp, `out${n}`),
    ratio: 0.25,
    bench: false,
    cacheDir: join(tmp, 'cache'),
    ...extra,
  };
}

async function headsOf(dir: string): Promise<number[]> {
  return findAttentionBlocks((await loadModel(join(dir, 'model.onnx'))).model).blocks.map((b) => b.numHeads);
}

describe('pruneModelFolder', () => {
  it('--ratio 0.25 removes a quarter of the heads and of the attention parameters, and writes a checked folder', async () => {
    const o = opts({ eval: evalFile });
    const r = await pruneModelFolder(o);
    const d = r.details;
    expect(d.heads).toEqual({ before: 8, removed: 2, after: 6 });
    expect((await headsOf(o.out)).reduce((a, b) => a + b, 0)).toBe(6);
    expect(d.layers.map((l) => l.keptHeads.length)).toEqual(await headsOf(o.out));
    // attention parameters: per layer 4·32·A + 3·A (Q/K/V biases) + 32 (output bias), A = 8 · heads
    const att = (heads: number) => 4 * 32 * 8 * heads + 3 * 8 * heads + 32;
    expect(d.parameters.attentionBefore).toBe(2 * att(4));
    expect(d.parameters.attentionAfter).toBe(d.layers.reduce((s, l) => s + att(l.keptHeads.length), 0));
    expect(d.parameters.attentionAfter / d.parameters.attentionBefore).toBeCloseTo(0.75, 2);
    expect(d.parameters.before - d.parameters.after).toBe(d.parameters.attentionBefore - d.parameters.attentionAfter);
    expect(d.equivalence!.maxAbsDiff).toBeLessThan(1e-4);
    expect(d.rounds).toHaveLength(1);
    expect(d.rounds[0].removedHeads).toHaveLength(2);
    // the two removed heads are the two lowest-ranked under the never-empty rule (no layer lost all heads here)
    const norm = d.rounds[0].headsNormalized.flatMap((row, l) => row.map((v, h) => ({ l, h, v: v! })));
    const lowest = norm.sort((a, b) => a.v - b.v).slice(0, 2).map((x) => [x.l, x.h]);
    expect(d.rounds[0].removedHeads).toEqual(expect.arrayContaining(lowest));
    // folder: config pruned_heads (HF format), provenance, CRF kept
    const config = JSON.parse(readFileSync(join(o.out, 'config.json'), 'utf8')) as { pruned_heads: Record<string, number[]> };
    const removed: Record<string, number[]> = {};
    for (const l of d.layers) if (l.removedHeads.length) removed[String(l.layer)] = l.removedHeads;
    expect(config.pruned_heads).toEqual(removed);
    const prov = JSON.parse(readFileSync(join(o.out, 'ranerc.json'), 'utf8')) as { command: string; settings: { ratio: number } };
    expect(prov.command).toBe('prune');
    expect(prov.settings.ratio).toBe(0.25);
    expect(existsSync(join(o.out, 'crf.json'))).toBe(true);
    // report
    expect(reportProblem(r.report)).toBeUndefined();
    expect(r.report.models.map((m) => m.role)).toEqual(['before', 'after']);
    expect(r.report.models[1].parameters).toBe(d.parameters.after);
    expect(r.report.models[1].bytes).toBeLessThan(r.report.models[0].bytes);
    expect(r.f1!.before.micro.gold).toBe(r.f1!.pruned.micro.gold);
    expect(r.report.models[0].f1).toEqual(r.f1!.before);
    const md = renderMarkdown(r.report);
    expect(md).toContain('![head importance](head-importance.svg)');
    expect(md).toContain('| attention (Q/K/V/output projections) | 8,448 |');
    // heat map: one cell per head, the removed ones framed
    expect(r.heatmapSvg.match(/<title>layer \d head \d/g)).toHaveLength(8);
    expect(r.heatmapSvg.match(/removed in round 1/g)).toHaveLength(2);
  });

  it('reuses cached scores for the same model, data and settings, not for --no-labels', async () => {
    const a = await pruneModelFolder(opts({ verify: false, importanceLoss: 'ce' }));
    const b = await pruneModelFolder(opts({ verify: false, importanceLoss: 'ce' }));
    expect(b.details.rounds[0].cached).toBe(true);
    expect(b.details.rounds[0].heads).toEqual(a.details.rounds[0].heads);
    expect(b.details.rounds[0].removedHeads).toEqual(a.details.rounds[0].removedHeads);
    const c = await pruneModelFolder(opts({ verify: false, target: 'predicted' }));
    expect(c.details.rounds[0].cached).toBe(false);
    expect(c.details.target).toBe('predicted');
    expect(c.details.importanceLoss).toBe('ce'); // --no-labels: no gold path for the CRF
    expect(c.details.rounds[0].loss).toBeLessThan(a.details.rounds[0].loss);
    // the folder has crf.json: by default the importance is the CRF NLL
    const d = await pruneModelFolder(opts({ verify: false }));
    expect(d.details.importanceLoss).toBe('crf');
    expect(d.details.rounds[0].loss).not.toBeCloseTo(a.details.rounds[0].loss, 3);
  });

  it('--iterations 2 prunes in two rounds and rescores the pruned model in between', async () => {
    const o = opts({ ratio: 0.5, iterations: 2, cacheDir: false });
    const r = await pruneModelFolder(o);
    const d = r.details;
    expect(d.rounds.map((x) => x.removedHeads.length)).toEqual([2, 2]);
    const first = d.rounds[0].removedHeads;
    for (const [l, h] of first) expect(d.rounds[1].heads[l][h]).toBeNull(); // already gone when rescoring
    expect(d.rounds[1].heads.flat().filter((v) => v !== null)).toHaveLength(6);
    expect((await headsOf(o.out)).reduce((a, b) => a + b, 0)).toBe(4);
    expect(d.equivalence!.maxAbsDiff).toBeLessThan(1e-4);
    expect(r.heatmapSvg.match(/removed in round 2/g)).toHaveLength(2);
  });

  it('--ffn-ratio removes FFN neurons from both dense layers', async () => {
    const o = opts({ ratio: 0, ffnRatio: 0.1 });
    const r = await pruneModelFolder(o);
    expect(r.details.neurons).toEqual({ before: 128, removed: 13, after: 115 });
    const blocks = findAttentionBlocks((await loadModel(join(o.out, 'model.onnx'))).model).blocks;
    expect(blocks.map((b) => b.ffn!.intermediate.outFeatures).reduce((a, b) => a + b, 0)).toBe(115);
    expect(blocks.map((b) => b.ffn!.output.inFeatures)).toEqual(blocks.map((b) => b.ffn!.intermediate.outFeatures));
    expect(r.details.heads.removed).toBe(0);
    // each neuron: 32 weights in, 1 bias, 32 weights out
    expect(r.details.parameters.ffnBefore - r.details.parameters.ffnAfter).toBe(13 * 65);
    expect(r.details.equivalence!.maxAbsDiff).toBeLessThan(1e-4);
  });

  it('empties a layer only with allowEmptyLayers', async () => {
    await expect(pruneModelFolder(opts({ ratio: 0.875 }))).rejects.toThrow(UsageError);
    const o = opts({ ratio: 0.875, allowEmptyLayers: true, cacheDir: false });
    const r = await pruneModelFolder(o);
    expect(r.details.emptiedLayers).toHaveLength(1);
    expect(await headsOf(o.out)).toEqual([1]);
    expect(r.details.equivalence!.maxAbsDiff).toBeLessThan(1e-4);
    expect(r.details.parameters.attentionAfter).toBe(4 * 32 * 8 + 3 * 8 + 32 + 32); // one head left + the emptied layer's bias
  });

  it('--finetune recovers on the pruned graph: F1 before → pruned → fine-tuned, the temporary pruned folder removed', async () => {
    const train = join(tmp, 'train.jsonl');
    writeFileSync(train, readFileSync(MSRA_TRAIN, 'utf8').split('\n').slice(0, 80).join('\n') + '\n');
    const o = opts({ eval: evalFile, finetune: { train, dev: evalFile, epochs: 1, lr: 1e-3 } });
    const r = await pruneModelFolder(o);
    expect(r.outDir).toBe(o.out);
    expect(await headsOf(o.out)).toEqual(r.details.layers.map((l) => l.keptHeads.length));
    expect(r.report.models.map((m) => m.role)).toEqual(['before', 'pruned', 'after']);
    const pruned = r.report.models[1];
    expect(existsSync(pruned.onnxPath)).toBe(false); // temporary
    expect(r.f1!.finetuned).toBeDefined();
    // the fine-tuned folder's F1 on the eval file is the dev F1 finetune measured (same file, same pipeline)
    expect(r.f1!.finetuned!.micro.f1).toBeCloseTo(r.details.finetune!.devF1After, 10);
    expect(r.f1!.pruned.micro.f1).toBeCloseTo(r.details.finetune!.devF1Before, 10);
    expect(r.details.finetune!.steps).toBeGreaterThan(0);
    expect(r.finetune!.curveSvg).toMatch(/^<svg/);
    const prov = JSON.parse(readFileSync(join(o.out, 'ranerc.json'), 'utf8')) as { command: string; history: Array<{ command: string }> };
    expect(prov.command).toBe('finetune');
    expect(prov.history.map((h) => h.command)).toContain('prune');
    expect(renderMarkdown(r.report)).toContain('![training curve](training-curve.svg)');
    await expect(pruneModelFolder(opts({ finetune: { train, dev: '' } }))).rejects.toThrow(UsageError);
  });

  it('refuses bad input with typed errors and writes nothing', async () => {
    const bad = join(tmp, 'bad.jsonl');
    writeFileSync(bad, '{"text": "张三", "entities": []}\nnot json\n');
    const o = opts({ data: bad });
    const e1 = await pruneModelFolder(o).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(InputError);
    expect((e1 as InputError).where).toMatchObject({ file: bad, line: 2 });
    expect(existsSync(o.out)).toBe(false);
    const e2 = await pruneModelFolder(opts({ ratio: 1.5 })).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(UsageError);
    expect((e2 as UsageError).exitCode).toBe(ExitCode.USAGE);
    const e3 = await pruneModelFolder(opts({ model: join(tmp, 'nowhere') })).catch((e: unknown) => e);
    expect(e3).toBeInstanceOf(InputError);
  });

  it('refuses a graph whose attention it cannot match, naming the node', async () => {
    // the tiny model plus an ONNX Runtime fused Attention node (what an optimizer leaves behind)
    const dir = join(tmp, 'fused');
    cpSync(MODEL, dir, { recursive: true });
    const model = (await loadModel(join(dir, 'model.onnx'))).model;
    const g = model.graph as onnx.GraphProto;
    g.node.push(new onnx.NodeProto({ name: 'FusedAttention_0', opType: 'Attention', domain: 'com.microsoft', input: [g.input[0].name ?? 'input_ids'], output: ['fused_out'] }));
    writeFileSync(join(dir, 'model.onnx'), encodeModel(model));
    const o = opts({ model: dir });
    const e = await pruneModelFolder(o).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GraphError);
    expect((e as GraphError).where.node).toBe('FusedAttention_0');
    expect((e as GraphError).message).toMatch(/fused com\.microsoft\.Attention/);
    expect(existsSync(o.out)).toBe(false);
  });
});
