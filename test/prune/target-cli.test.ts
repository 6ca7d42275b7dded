/**
 * `ranerc prune --target-speedup` through main() on a tiny fixture with a tiny target (no timing is
 * asserted: whether 1.05× is met on a loaded machine is the benchmark's business). What is checked:
 * usage errors exit 2, the per-round table and the report folder (report.json with the cost model and
 * the rounds, report.md, the SVG chart), and that the written model gives the logits of the original
 * with the removed heads and FFN neurons gated to zero (onnxruntime, 1e-4), since nothing was fine-tuned.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findAttentionBlocks } from '../../src/onnx/attention.js';
import { gatedModel } from '../../src/prune/surgery.js';
import type { PruneTargetDetails } from '../../src/prune/target-report.js';
import { reportProblem } from '../../src/report/schema.js';
import { cli } from '../cli/helpers.js';
import { load, maxAbsDiff, MSRA_DEV, ortLogits, randomBatch, TINY, vocabSize } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'ranerc-prune-target-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const MODEL = join(TINY, 'bio-crf-op14');
const base = ['prune', '-m', MODEL, '-d', MSRA_DEV, '--max-sentences', '20', '--no-latency-cache', '--bench-seconds', '0.3', '--threads', '1'];

describe('ranerc prune --target-speedup', () => {
  it('bad usage exits 2', async () => {
    for (const args of [
      ['--target-speedup', '1.2', '--ratio', '0.25'],
      ['--target-speedup', '1.2', '--min-f1', '50'],
      ['--target-speedup', '1.2', '--target-latency-ms', '3'],
      ['--min-f1', '50', '--ratio', '0.25'],
      [],
    ]) {
      const r = await cli(...base, ...args, '-o', join(tmp, 'bad'), '--report-dir', join(tmp, 'bad-rep'));
      expect(r.code, args.join(' ')).toBe(2);
      expect(existsSync(join(tmp, 'bad'))).toBe(false);
    }
  });

  it('runs rounds, prints the table, writes the report and a model equal to the gated original', async () => {
    const out = join(tmp, 'out');
    const rep = join(tmp, 'rep');
    const r = await cli(...base, '--target-speedup', '1.05', '--iterations', '1', '--max-rounds', '2', '--dev', MSRA_DEV, '-o', out, '--report-dir', rep);
    expect(r.err).not.toMatch(/unexpected|Error:/);
    expect([0, 1]).toContain(r.code);
    if (r.code === 1) expect(r.err).toContain('warning: the target was not met');
    expect(r.out).toMatch(/round\s+removed\s+heads\s+FFN\s+layers\s+params/);
    expect(r.out).toContain(`model: ${out}`);
    for (const f of ['report.json', 'report.md', 'f1-latency.svg']) expect(existsSync(join(rep, f))).toBe(true);
    expect(readFileSync(join(rep, 'f1-latency.svg'), 'utf8')).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(readFileSync(join(rep, 'report.md'), 'utf8')).toContain('## Pruning to a latency target');
    const report = JSON.parse(readFileSync(join(rep, 'report.json'), 'utf8')) as { details: PruneTargetDetails };
    expect(reportProblem(report)).toBeUndefined();
    const d = report.details;
    expect(d.mode).toBe('target');
    expect(d.costModel.samples).toHaveLength(5);
    expect(d.roundsRun[0].round).toBe(0);
    expect(d.roundsRun.length).toBeGreaterThanOrEqual(2);
    for (const row of d.roundsRun.slice(1)) {
      expect(row.maxAbsDiff!).toBeLessThan(1e-4);
      expect(row.speedup).toBeCloseTo(row.beforeP50Ms! / row.afterP50Ms!, 10);
      expect(row.devF1).toBeGreaterThanOrEqual(0);
    }
    expect(d.chosenRound).toBeGreaterThanOrEqual(1);
    const chosen = d.roundsRun.find((x) => x.round === d.chosenRound)!;

    // the written model against the original with the same units gated to zero
    const original = load(join(MODEL, 'model.onnx'));
    const blocks = findAttentionBlocks(original).blocks;
    const pruned = load(join(out, 'model.onnx'));
    const kept = findAttentionBlocks(pruned).blocks;
    expect(kept.reduce((a, b) => a + b.numHeads, 0)).toBe(chosen.heads);
    const removedHeads = d.layers.map((l) => Array.from({ length: l.headsBefore }, (_, h) => h).filter((h) => !l.keptHeads.includes(h)));
    const removedNeurons = d.layers.map((l) => l.removedNeurons);
    expect(removedNeurons.reduce((a, n) => a + n.length, 0)).toBe(blocks.reduce((a, b) => a + b.ffn!.intermediate.outFeatures, 0) - chosen.neurons);
    const gated = gatedModel(original, blocks, { heads: removedHeads, neurons: removedNeurons });
    for (const [B, T] of [
      [1, 9],
      [2, 20],
    ] as const) {
      const batch = randomBatch(B, T, vocabSize(original), 3 * B + T);
      expect(maxAbsDiff(await ortLogits(pruned, batch), await ortLogits(gated, batch)), `${B}×${T}`).toBeLessThan(1e-4);
    }
  });

  it('an original under --min-f1 stops before any round and writes it unchanged', async () => {
    const out = join(tmp, 'out-min');
    const r = await cli(...base, '--target-speedup', '1.5', '--dev', MSRA_DEV, '--min-f1', '99.9', '-o', out, '--report-dir', join(tmp, 'rep-min'), '--json');
    expect(r.code).toBe(1);
    const report = JSON.parse(r.out) as { details: PruneTargetDetails; warnings: string[] };
    expect(report.details.verdict).toBe('below-min-f1');
    expect(report.details.chosenRound).toBe(0);
    expect(report.details.roundsRun).toHaveLength(1);
    expect(report.warnings.join('\n')).toMatch(/target was not met: below-min-f1/);
  });
});
