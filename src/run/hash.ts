/**
 * Content hashes for the step cache: a file's SHA-256, a folder's tree hash (every file's relative path
 * and SHA-256, in sorted order), canonical JSON (sorted keys) and a step's key. Moving or renaming an
 * input does not change its hash; changing one byte does.
 *
 * A folder's `ranerc.json` (provenance: when and by which command it was written) is left out of its
 * tree hash, so a step that rewrites an identical model does not make every later step re-run.
 */
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { sha256, sha256File } from '../util/fs.js';

/** Files a folder's content hash ignores: provenance, and temp files of interrupted atomic writes. */
export function ignoredInTree(name: string): boolean {
  return name === 'ranerc.json' || (name.startsWith('.') && name.endsWith('.tmp'));
}

/** Every file under `dir` (relative paths with '/', sorted by code unit), skipping ignored names. */
export async function listFiles(dir: string, opts: { all?: boolean } = {}): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (!opts.all && ignoredInTree(e.name)) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(relative(dir, p).split(sep).join('/'));
      else if (e.isSymbolicLink()) {
        const st = await stat(p);
        if (st.isDirectory()) await walk(p);
        else if (st.isFile()) out.push(relative(dir, p).split(sep).join('/'));
      }
    }
  };
  await walk(dir);
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The `sha256sum`-style lines of a folder's files ("<hex>  <path>\n", sorted by path). */
export async function treeLines(dir: string, opts: { all?: boolean; exclude?: (rel: string) => boolean } = {}): Promise<string> {
  let text = '';
  for (const rel of await listFiles(dir, opts)) {
    if (opts.exclude?.(rel)) continue;
    text += `${await sha256File(join(dir, rel))}  ${rel}\n`;
  }
  return text;
}

/** Content hash of a file (its SHA-256) or of a folder (SHA-256 of its sorted `<sha256>  <path>` lines). */
export async function contentHash(path: string): Promise<string> {
  const st = await stat(path);
  if (st.isDirectory()) return sha256(`ranerc.tree/1\n${await treeLines(path)}`);
  return sha256File(path);
}

/** Memoized content hashes for one run (the same input is often used by several steps). */
export class HashCache {
  private readonly memo = new Map<string, Promise<string>>();

  hash(path: string): Promise<string> {
    let p = this.memo.get(path);
    if (!p) {
      p = contentHash(path);
      this.memo.set(path, p);
    }
    return p;
  }

  /** Record a hash computed elsewhere (a step output hashed where it was written). */
  remember(path: string, hash: string): void {
    this.memo.set(path, Promise.resolve(hash));
  }

  /** Forget a path (after it was rewritten). */
  forget(path: string): void {
    this.memo.delete(path);
  }
}

/** JSON with object keys sorted at every depth (a stable text to hash). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as Record<string, unknown>).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  }
  return v;
}

/** What a step's cache key is made of. */
export interface KeyMaterial {
  format: 'ranerc.run-key/1';
  /** ranerc's version. */
  ranerc: string;
  kind: string;
  /** The step implementation's version. */
  kindVersion: number;
  /** Resolved settings; path settings replaced by `{ sha256 }` of their content. */
  settings: Record<string, unknown>;
  /** For machine-dependent steps (timings): the machine. */
  machine?: Record<string, unknown>;
  /** The output folder layout (`--layout`), when not the default ranerc layout. */
  layout?: string;
}

/** The cache key: SHA-256 of the canonical JSON of the key material. */
export function stepKey(material: KeyMaterial): string {
  return sha256(canonicalJson(material));
}
