/**
 * Sliding token windows for texts longer than a model's input, identical to `windows` / `owner_window`
 * in fixtures/tools/bert_ner.py (the code the fixture teacher was scored with).
 *
 * `size` counts tokens per window WITHOUT [CLS]/[SEP] (a model with max length 256 has size 254);
 * consecutive windows overlap by `overlap` tokens, so each window starts `size - overlap` after the previous
 * one and the last window ends at the last token. Each token's prediction is taken from its owner window:
 * the window in which the token's nearer edge is farthest away (the most context on both sides), the
 * earlier window on ties.
 */
import { UsageError } from '../errors.js';

/** Token windows [a, b) of at most `size` tokens; consecutive windows overlap by `overlap` tokens. */
export function planWindows(nTokens: number, size: number, overlap: number): Array<[number, number]> {
  if (!Number.isInteger(nTokens) || nTokens < 0) {
    throw new UsageError(`token count must be a non-negative integer, got ${nTokens}`, {
      hint: 'this is a bug in the caller: pass the number of tokens of the text',
    });
  }
  if (!Number.isInteger(size) || size < 1) {
    throw new UsageError(`window size must be a positive integer, got ${size}`, {
      hint: 'the window size is the model max length minus 2 ([CLS] and [SEP]); use a max length of at least 3',
    });
  }
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= size) {
    throw new UsageError(`window overlap must be an integer in [0, ${size - 1}] for windows of ${size} tokens, got ${overlap}`, {
      hint: `pass an overlap smaller than the window size (the default is ${defaultOverlap(size)})`,
    });
  }
  if (nTokens <= size) return [[0, nTokens]];
  const out: Array<[number, number]> = [];
  const step = size - overlap;
  for (let a = 0; ; a += step) {
    const b = Math.min(a + size, nTokens);
    out.push([a, b]);
    if (b === nTokens) break;
  }
  return out;
}

/**
 * The index of the window that owns token `t`: among the windows containing t, the one where
 * min(t - a, b - 1 - t) is largest; the earlier window on ties.
 */
export function ownerWindow(windows: ReadonlyArray<readonly [number, number]>, t: number): number {
  let best = -1;
  let bi = -1;
  for (let i = 0; i < windows.length; i++) {
    const [a, b] = windows[i];
    if (a <= t && t < b) {
      const d = Math.min(t - a, b - 1 - t);
      if (d > best) {
        best = d;
        bi = i;
      }
    }
  }
  if (bi < 0) {
    throw new RangeError(`token ${t} is in none of the ${windows.length} windows`);
  }
  return bi;
}

/**
 * The default overlap for windows of `size` tokens: 64 when size ≤ 256, else 128, and never more than
 * half the window (so small windows still advance): min(rule, floor(size / 2)).
 * The fixture teacher (max length 256 → size 254) uses 64.
 */
export function defaultOverlap(size: number): number {
  const rule = size <= 256 ? 64 : 128;
  return Math.max(0, Math.min(rule, Math.floor(size / 2)));
}

/**
 * Merge per-window rows into one row per token: token t takes row `t - a` of its owner window [a, b).
 * `perWindow[i]` must hold one row per token of window i.
 */
export function mergeWindows<T>(nTokens: number, windows: ReadonlyArray<readonly [number, number]>, perWindow: T[][]): T[] {
  if (perWindow.length !== windows.length) {
    throw new RangeError(`got rows for ${perWindow.length} windows, expected ${windows.length}`);
  }
  windows.forEach(([a, b], i) => {
    if (perWindow[i].length !== b - a) {
      throw new RangeError(`window ${i} [${a}, ${b}) has ${perWindow[i].length} rows, expected ${b - a}`);
    }
  });
  const out: T[] = new Array<T>(nTokens);
  for (let t = 0; t < nTokens; t++) {
    const w = ownerWindow(windows, t);
    out[t] = perWindow[w][t - windows[w][0]];
  }
  return out;
}
