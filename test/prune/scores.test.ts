/**
 * Pure score arithmetic: run_bertology.py's layer-wise L2 normalisation, ranking, selection that never
 * empties a layer, removal counts and rounds, and Spearman's rho against scipy's documented example.
 */
import { describe, expect, it } from 'vitest';
import {
  averageRanks,
  byLayer,
  maxRemovable,
  minMaxNormalize,
  normalizeByLayer,
  rankAscending,
  ranksDescending,
  removalCount,
  selectRemovals,
  spearman,
  splitRounds,
} from '../../src/prune/scores.js';

describe('normalizeByLayer', () => {
  it('divides each layer by its L2 norm (+1e-20), as run_bertology normalize_scores_by_layer', () => {
    // rows [3, 4] and [5, 12]: norms 5 and 13 (Pythagorean triples)
    const n = normalizeByLayer([
      [3, 4],
      [5, 12, 0],
    ]);
    expect(n[0][0]).toBeCloseTo(0.6, 15);
    expect(n[0][1]).toBeCloseTo(0.8, 15);
    expect(n[1]).toEqual([5 / 13, 12 / 13, 0].map((v) => expect.closeTo(v, 15)));
    // every normalised row has unit L2 norm
    for (const row of n) expect(Math.hypot(...row)).toBeCloseTo(1, 12);
  });

  it('keeps empty and all-zero layers finite', () => {
    expect(normalizeByLayer([[], [0, 0]])).toEqual([[], [0, 0]]);
  });

  it('changes the global ranking when layers have different scales', () => {
    // raw: layer 1 dwarfs layer 0; after normalisation layer 1's weaker head ranks below layer 0's stronger
    const raw = [
      [1, 2],
      [100, 10],
    ];
    expect(rankAscending(raw)[0]).toEqual({ layer: 0, index: 0 });
    const norm = normalizeByLayer(raw);
    expect(rankAscending(norm)[0]).toEqual({ layer: 1, index: 1 }); // 10/√10100 ≈ 0.0995 < 1/√5 ≈ 0.447
  });

  it('min-max normalisation maps to [0, 1] without changing the order', () => {
    const s = [
      [2, 4],
      [6, 3],
    ];
    expect(minMaxNormalize(s)).toEqual([
      [0, 0.5],
      [1, 0.25],
    ]);
    expect(rankAscending(minMaxNormalize(s))).toEqual(rankAscending(s));
  });
});

describe('ranking and selection', () => {
  const s = [
    [0.9, 0.1, 0.5],
    [0.2, 0.3],
  ];

  it('ranks least important first, ties by layer then index', () => {
    expect(rankAscending(s)).toEqual([
      { layer: 0, index: 1 },
      { layer: 1, index: 0 },
      { layer: 1, index: 1 },
      { layer: 0, index: 2 },
      { layer: 0, index: 0 },
    ]);
    expect(rankAscending([[1, 1], [1]])).toEqual([
      { layer: 0, index: 0 },
      { layer: 0, index: 1 },
      { layer: 1, index: 0 },
    ]);
    expect(ranksDescending(s)).toEqual([
      [1, 5, 2],
      [4, 3],
    ]);
  });

  it('never empties a layer unless minKeep is 0', () => {
    // the three least important are 0.1 (L0), 0.2 (L1), 0.3 (L1); L1 must keep one head
    expect(selectRemovals(s, 3, 1)).toEqual([
      { layer: 0, index: 1 },
      { layer: 1, index: 0 },
      { layer: 0, index: 2 },
    ]);
    expect(selectRemovals(s, 3, 0)).toEqual([
      { layer: 0, index: 1 },
      { layer: 1, index: 0 },
      { layer: 1, index: 1 },
    ]);
    expect(maxRemovable([3, 2], 1)).toBe(3);
    expect(selectRemovals(s, 5, 1)).toHaveLength(3);
    expect(selectRemovals(s, 0, 1)).toEqual([]);
    expect(byLayer(selectRemovals(s, 3, 0), 2)).toEqual([[1], [0, 1]]);
  });

  it('removal counts are round(ratio × total), halves up', () => {
    expect(removalCount(0.25, 144)).toBe(36); // BERT-base: 12 × 12 heads
    expect(removalCount(0.25, 8)).toBe(2);
    expect(removalCount(0.5, 3)).toBe(2); // 1.5 → 2
    expect(removalCount(0.15, 10)).toBe(2); // 1.4999999999999998 in floating point → 1.5 → 2
    expect(removalCount(0, 12)).toBe(0);
    expect(removalCount(1, 12)).toBe(12);
    expect(() => removalCount(1.5, 12)).toThrow(RangeError);
  });

  it('splits removals over rounds evenly and completely', () => {
    expect(splitRounds(36, 1)).toEqual([36]);
    expect(splitRounds(36, 3)).toEqual([12, 12, 12]);
    expect(splitRounds(10, 4)).toEqual([3, 2, 3, 2]);
    expect(splitRounds(2, 3).reduce((a, b) => a + b, 0)).toBe(2);
    for (const [n, k] of [
      [7, 3],
      [1, 5],
      [0, 2],
      [100, 7],
    ]) {
      const parts = splitRounds(n, k);
      expect(parts).toHaveLength(k);
      expect(parts.reduce((a, b) => a + b, 0)).toBe(n);
      expect(Math.max(...parts) - Math.min(...parts)).toBeLessThanOrEqual(1);
    }
  });
});

describe('spearman', () => {
  it("equals scipy.stats.spearmanr's documented example", () => {
    // scipy docs: spearmanr([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) → statistic 0.8207826816681233
    expect(spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7])).toBeCloseTo(0.8207826816681233, 12);
  });

  it('is ±1 for monotone data and NaN for constant data', () => {
    expect(spearman([1, 2, 3], [10, 20, 30])).toBeCloseTo(1, 12);
    expect(spearman([1, 2, 3], [3, 2, 1])).toBeCloseTo(-1, 12);
    expect(spearman([1, 1, 1], [1, 2, 3])).toBeNaN();
  });

  it('gives tied values their average rank', () => {
    expect(averageRanks([10, 20, 20, 5])).toEqual([2, 3.5, 3.5, 1]);
  });
});
