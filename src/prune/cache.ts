/**
 * On-disk cache of importance scores, keyed by SHA-256 of the model bytes, of the data file and of
 * the scoring settings (so a changed model, data file or setting never reuses old scores). One JSON
 * file per key, written atomically; an unreadable or mismatched entry is ignored and rewritten.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { atomicWriteFile, sha256 } from '../util/fs.js';
import type { ImportanceResult } from './importance.js';

const FORMAT = 'ranerc-importance/1';

/** `$XDG_CACHE_HOME/ranerc/importance`, else `~/.cache/ranerc/importance`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.length > 0 ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(base, 'ranerc', 'importance');
}

/** The cache key: SHA-256 over the model hash, the data hash and the settings (stable key order). */
export function cacheKey(modelSha256: string, dataSha256: string, settings: Record<string, unknown>): string {
  const sorted = Object.fromEntries(Object.entries(settings).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return sha256(JSON.stringify({ format: FORMAT, model: modelSha256, data: dataSha256, settings: sorted }));
}

function valid(x: unknown, key: string, shape: { heads: number[]; ffn?: number[] }): x is { key: string; result: ImportanceResult } {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as { format?: unknown; key?: unknown; result?: Partial<ImportanceResult> };
  if (r.format !== FORMAT || r.key !== key || !r.result) return false;
  const res = r.result;
  const rowsOk = (m: unknown, sizes: number[]): boolean =>
    Array.isArray(m) &&
    m.length === sizes.length &&
    m.every((row, i) => Array.isArray(row) && row.length === sizes[i] && row.every((v) => typeof v === 'number' && Number.isFinite(v)));
  if (!rowsOk(res.heads, shape.heads)) return false;
  if (shape.ffn && !rowsOk(res.ffn, shape.ffn)) return false;
  return typeof res.tokens === 'number' && typeof res.rows === 'number' && typeof res.loss === 'number';
}

/** The cached result for `key` if present and of the expected shape (units per layer), else undefined. */
export async function readCached(
  dir: string,
  key: string,
  shape: { heads: number[]; ffn?: number[] },
): Promise<ImportanceResult | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, `${key}.json`), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed: unknown = JSON.parse(text);
    return valid(parsed, key, shape) ? parsed.result : undefined;
  } catch {
    return undefined;
  }
}

/** Store a result under `key` (atomic write). */
export async function writeCached(dir: string, key: string, result: ImportanceResult): Promise<void> {
  await atomicWriteFile(join(dir, `${key}.json`), `${JSON.stringify({ format: FORMAT, key, result })}\n`);
}
