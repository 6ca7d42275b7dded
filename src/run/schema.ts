/**
 * Hand-written schema checks for recipes: each field is described by a `FieldSpec` (type, bounds,
 * default, one line of help), and `readField` turns the YAML value at a path into a typed setting or an
 * error naming the recipe line and the field. Values written by `--set` arrive as text and are converted
 * to the field's type here ("typed like the field").
 */
import type { LocatedTree, YamlPath, YamlValue } from './yaml.js';
import { describe } from './yaml.js';

/** A reference to another step's output (`${name.output}`) or to a recipe input (`${inputs.name}`). */
export interface Ref {
  ref: string;
  output: string;
}

/** A resolved-later path: a literal absolute path, or a reference. */
export type PathSetting = { path: string } | Ref;

/** A setting value after validation. */
export type SettingValue = string | number | boolean | number[] | string[] | null | PathSetting;

interface FieldBase {
  /** One line of help (recipes/README.md lists them). */
  doc: string;
  required?: boolean;
}

/** What a field holds. `model` and `file` are paths (or references) whose content is hashed for the cache. */
export type FieldSpec = FieldBase &
  (
    | { type: 'model' }
    | { type: 'file' }
    | { type: 'string'; default?: string }
    | { type: 'number'; min?: number; max?: number; default?: number; nullable?: boolean }
    | { type: 'integer'; min?: number; max?: number; default?: number; nullable?: boolean }
    | { type: 'boolean'; default?: boolean }
    | { type: 'enum'; values: readonly string[]; default?: string }
    | { type: 'int-list'; min?: number; default?: number[] }
    | { type: 'string-list'; default?: string[] }
  );

export const REF_RE = /^\$\{\s*([A-Za-z0-9][A-Za-z0-9_-]*)\.([A-Za-z0-9][A-Za-z0-9_-]*)\s*\}$/;
/** Names of steps, variants and inputs. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

export function isRef(v: unknown): v is Ref {
  return typeof v === 'object' && v !== null && 'ref' in v && 'output' in v;
}

export function isPathSetting(v: unknown): v is PathSetting {
  return typeof v === 'object' && v !== null && ('path' in v || isRef(v));
}

/** How a path-typed value is resolved: literal paths relative to the recipe (or the cwd for `--set`). */
export interface PathResolver {
  (value: string, fromOverride: boolean): string;
}

function numberText(raw: string): number | undefined {
  if (raw.trim() === '') return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : undefined;
}

function rangeText(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return ` in [${min}, ${max}]`;
  if (min !== undefined) return ` >= ${min}`;
  if (max !== undefined) return ` <= ${max}`;
  return '';
}

/** Parse a `${name.output}` reference, or undefined when `v` is not one. Text with `${` elsewhere is an error. */
export function parseRef(tree: LocatedTree, path: YamlPath, v: string): Ref | undefined {
  const m = REF_RE.exec(v.trim());
  if (m) return { ref: m[1], output: m[2] };
  if (v.includes('${')) {
    throw tree.error(path, `"${v}" is not a reference: write the whole value as \${step.output} or \${inputs.name}`, 'e.g. model: ${quantize.model}');
  }
  return undefined;
}

/**
 * Read and check the field at `path` against `spec`. Returns undefined for an absent optional field
 * without a default.
 */
export function readField(tree: LocatedTree, path: YamlPath, spec: FieldSpec, resolvePath: PathResolver): SettingValue | undefined {
  const raw = tree.get(path);
  const fromSet = tree.isOverridden(path);
  const bad = (want: string, hint = spec.doc): never => {
    throw tree.error(path, `must be ${want}, got ${describe(raw)}`, hint);
  };
  if (raw === undefined || (raw === null && !('nullable' in spec && spec.nullable))) {
    if (raw === null && spec.required) bad(expectation(spec));
    if (spec.required) {
      const parent = path.length > 1 ? ` under ${path.slice(0, -1).join('.')}` : '';
      throw tree.error(path, `is required (${spec.doc})`, `add "${String(path[path.length - 1])}:"${parent}`);
    }
    return 'default' in spec ? (spec.default ?? undefined) : undefined;
  }
  switch (spec.type) {
    case 'model':
    case 'file': {
      if (typeof raw !== 'string' || raw.trim() === '') return bad(spec.type === 'model' ? 'a model folder path or ${step.model}' : 'a file path or ${inputs.name}');
      const ref = parseRef(tree, path, raw as string);
      if (ref) return ref;
      return { path: resolvePath((raw as string).trim(), fromSet) };
    }
    case 'string':
      if (typeof raw === 'string') return raw;
      if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
      return bad('text');
    case 'number':
    case 'integer': {
      if (raw === null || (fromSet && typeof raw === 'string' && /^(null|none|off)$/i.test(raw.trim()))) {
        if (spec.nullable) return null;
        return bad(expectation(spec));
      }
      const n = typeof raw === 'number' ? raw : fromSet && typeof raw === 'string' ? numberText(raw) : undefined;
      if (n === undefined || !Number.isFinite(n)) return bad(expectation(spec));
      if (spec.type === 'integer' && !Number.isInteger(n)) return bad(expectation(spec));
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) return bad(expectation(spec));
      return n;
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return raw;
      if (fromSet && typeof raw === 'string' && /^(true|false)$/i.test(raw.trim())) return raw.trim().toLowerCase() === 'true';
      return bad('true or false');
    }
    case 'enum': {
      const s = typeof raw === 'string' ? raw.trim() : undefined;
      if (s === undefined || !spec.values.includes(s)) return bad(`one of ${spec.values.join(', ')}`);
      return s as string;
    }
    case 'int-list': {
      const min = spec.min ?? Number.MIN_SAFE_INTEGER;
      let items: YamlValue[];
      if (Array.isArray(raw)) items = raw;
      else if (typeof raw === 'number') items = [raw];
      else if (fromSet && typeof raw === 'string') items = raw.split(',').map((s) => numberText(s) ?? s);
      else return bad(`a list of integers >= ${min}`);
      if (items.length === 0) return bad(`a non-empty list of integers >= ${min}`);
      const out: number[] = [];
      for (const it of items) {
        if (typeof it !== 'number' || !Number.isInteger(it) || it < min) return bad(`a list of integers >= ${min}`);
        out.push(it);
      }
      return out;
    }
    case 'string-list': {
      let items: YamlValue[];
      if (Array.isArray(raw)) items = raw;
      else if (typeof raw === 'string') items = fromSet ? raw.split(',').map((s) => s.trim()).filter((s) => s) : [raw];
      else return bad('a list of text');
      const out: string[] = [];
      for (const it of items) {
        if (typeof it !== 'string' && typeof it !== 'number') return bad('a list of text');
        out.push(String(it));
      }
      return out;
    }
  }
}

/** "a number in [0, 1]" etc. */
export function expectation(spec: FieldSpec): string {
  switch (spec.type) {
    case 'number':
      return `a number${rangeText(spec.min, spec.max)}${spec.nullable ? ' (or null)' : ''}`;
    case 'integer':
      return `an integer${rangeText(spec.min, spec.max)}${spec.nullable ? ' (or null)' : ''}`;
    case 'boolean':
      return 'true or false';
    case 'enum':
      return `one of ${spec.values.join(', ')}`;
    case 'int-list':
      return `a list of integers${rangeText(spec.min, undefined)}`;
    case 'string-list':
      return 'a list of text';
    case 'model':
      return 'a model folder path or ${step.model}';
    case 'file':
      return 'a file path or ${inputs.name}';
    case 'string':
      return 'text';
  }
}

/** Reject keys of the map at `path` that are not in `allowed`, naming the closest known key. */
export function checkKeys(tree: LocatedTree, path: YamlPath, allowed: readonly string[], what: string): void {
  const v = tree.get(path);
  if (v === null || v === undefined || typeof v !== 'object' || Array.isArray(v)) return;
  for (const k of Object.keys(v)) {
    if (allowed.includes(k)) continue;
    const near = closest(k, allowed);
    throw tree.error([...path, k], `unknown field for ${what}`, `${near ? `did you mean "${near}"? ` : ''}fields: ${allowed.join(', ')}`);
  }
}

/** The known word nearest to `word` by edit distance, when it is close enough to be a likely typo. */
export function closest(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(word.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** Levenshtein distance. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}
