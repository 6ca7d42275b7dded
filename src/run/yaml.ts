/**
 * Recipe YAML with line numbers: the document is parsed with the `yaml` package (`parseDocument` +
 * `LineCounter`) into plain values plus a map from each value's path to the 1-based line it is on, so
 * every validation message can name the file, the line and the field. `--set key=value` overrides are
 * applied to the same tree and remembered, so a bad override is reported as the `--set` it came from.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { InputError, UsageError } from '../errors.js';

/** A plain YAML value (what a recipe is made of). */
export type YamlValue = null | boolean | number | string | YamlValue[] | YamlMap;
export interface YamlMap {
  [key: string]: YamlValue;
}

/** A path into the tree: map keys and sequence indices. */
export type YamlPath = ReadonlyArray<string | number>;

/** The dotted form of a path, as messages print it (`steps.pq.calib-size`, `measure.bench.seq.0`). */
export function pathText(path: YamlPath): string {
  return path.length === 0 ? '(top level)' : path.map(String).join('.');
}

function pathKey(path: YamlPath): string {
  return JSON.stringify(path);
}

/** One `--set key=value` override. */
export interface Override {
  /** The dotted key split on '.'. */
  path: string[];
  /** The value as typed; the recipe validator converts it to the field's type. */
  raw: string;
  /** `--set key=value` as the user wrote it, for messages. */
  text: string;
}

/** Parse `key=value` (the key dotted, the value everything after the first '='). */
export function parseOverride(text: string): Override {
  const eq = text.indexOf('=');
  const key = eq < 0 ? '' : text.slice(0, eq).trim();
  const path = key.split('.');
  if (eq < 0 || key === '' || path.some((p) => p.trim() === '')) {
    throw new UsageError(`--set ${text}: expected key=value with a dotted key`, {
      hint: 'e.g. --set steps.quantize.calib-size=100 or --set gates.max-f1-drop=1.5',
    });
  }
  return { path: path.map((p) => p.trim()), raw: text.slice(eq + 1).trim(), text: `--set ${text}` };
}

/** A parsed recipe document: the values, where each one is, and which ones `--set` replaced. */
export class LocatedTree {
  private readonly lines = new Map<string, number>();
  private readonly overrides = new Map<string, Override>();

  private constructor(
    /** The file the tree was read from. */
    readonly file: string,
    /** The root value. */
    public root: YamlValue,
  ) {}

  /** Parse YAML text; a syntax error is an InputError naming the file and line. */
  static parse(text: string, file: string): LocatedTree {
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
    const problem = doc.errors[0] ?? doc.warnings[0];
    if (problem) {
      const pos = problem.linePos?.[0];
      const first = problem.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
      throw new InputError(`recipe is not valid YAML: ${first}${pos ? ` (column ${pos.col})` : ''}`, {
        file,
        line: pos?.line,
        hint: 'fix the YAML syntax at that line (indentation, a missing ":" or closing bracket, a duplicate key)',
      });
    }
    const tree = new LocatedTree(file, null);
    tree.root = tree.convert(doc, doc.contents, [], lineCounter);
    return tree;
  }

  private convert(doc: Document, node: unknown, path: Array<string | number>, lc: LineCounter): YamlValue {
    if (node === null || node === undefined) return null;
    if (isAlias(node)) return this.convert(doc, node.resolve(doc), path, lc);
    const n = node as Node;
    if (n.range) this.lines.set(pathKey(path), lc.linePos(n.range[0]).line);
    if (isScalar(n)) {
      const v = n.value;
      if (v === null || v === undefined) return null;
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
      if (typeof v === 'bigint') return Number(v);
      if (v instanceof Date) return v.toISOString();
      return String(v);
    }
    if (isSeq(n)) return n.items.map((item, i) => this.convert(doc, item, [...path, i], lc));
    if (isMap(n)) {
      const out: YamlMap = {};
      for (const pair of n.items) {
        if (!isPair(pair)) continue;
        const keyNode = pair.key;
        const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
        const keyLine = isScalar(keyNode) && keyNode.range ? lc.linePos(keyNode.range[0]).line : undefined;
        if (keyLine !== undefined) this.lines.set(pathKey([...path, key]), keyLine);
        const value = this.convert(doc, pair.value, [...path, key], lc);
        // A map entry is located at its key (where `field:` is written), also when the value is a block.
        if (keyLine !== undefined) this.lines.set(pathKey([...path, key]), keyLine);
        out[key] = value;
      }
      return out;
    }
    throw new InputError(`unsupported YAML node at ${pathText(path)}`, { file: this.file, hint: 'use plain maps, lists and scalars' });
  }

  /** The value at `path` (undefined when absent). */
  get(path: YamlPath): YamlValue | undefined {
    let cur: YamlValue | undefined = this.root;
    for (const p of path) {
      if (cur === null || cur === undefined || typeof cur !== 'object') return undefined;
      cur = Array.isArray(cur) ? (typeof p === 'number' ? cur[p] : undefined) : (cur as YamlMap)[String(p)];
    }
    return cur;
  }

  /** The `--set` that wrote `path` or one of its ancestors. */
  overrideAt(path: YamlPath): Override | undefined {
    for (let n = path.length; n >= 0; n--) {
      const o = this.overrides.get(pathKey(path.slice(0, n)));
      if (o) return o;
    }
    return undefined;
  }

  /** The 1-based line of `path`, or of its nearest located ancestor. */
  lineOf(path: YamlPath): number | undefined {
    for (let n = path.length; n >= 0; n--) {
      const l = this.lines.get(pathKey(path.slice(0, n)));
      if (l !== undefined) return l;
    }
    return undefined;
  }

  /**
   * The error for a problem with the value at `path`: a UsageError naming the `--set` when an override
   * wrote it, else an InputError naming the recipe file and line. The message starts with the field.
   */
  error(path: YamlPath, message: string, hint: string): InputError | UsageError {
    const o = this.overrideAt(path);
    if (o) return new UsageError(`${o.text}: ${pathText(path)}: ${message}`, { hint });
    return new InputError(`${pathText(path)}: ${message}`, { file: this.file, line: this.lineOf(path), hint });
  }

  /**
   * Apply an override: intermediate maps are created when missing; the leaf becomes the raw string,
   * which the validator converts to the field's type.
   */
  applyOverride(o: Override): void {
    if (this.root === null) this.root = {};
    let cur: YamlValue = this.root;
    for (let i = 0; i < o.path.length; i++) {
      const key = o.path[i];
      const last = i === o.path.length - 1;
      if (cur === null || typeof cur !== 'object') {
        throw new UsageError(`${o.text}: ${o.path.slice(0, i).join('.')} is ${describe(cur)}, not a map or list`, {
          hint: 'point --set at a field inside a map (see recipes/README.md for the fields)',
        });
      }
      if (Array.isArray(cur)) {
        const idx = Number(key);
        if (!Number.isInteger(idx) || idx < 0 || idx > cur.length) {
          throw new UsageError(`${o.text}: ${o.path.slice(0, i).join('.')} is a list; "${key}" is not an index in [0, ${cur.length}]`, {
            hint: 'use a list index, or give the whole list as a comma-separated value',
          });
        }
        if (last) cur[idx] = o.raw;
        else {
          if (cur[idx] === undefined || cur[idx] === null) cur[idx] = {};
          cur = cur[idx];
        }
      } else {
        const map: YamlMap = cur;
        if (last) map[key] = o.raw;
        else {
          if (map[key] === undefined || map[key] === null) map[key] = {};
          cur = map[key];
        }
      }
    }
    const path: Array<string | number> = [];
    let node: YamlValue | undefined = this.root;
    for (const p of o.path) {
      const idx: string | number = Array.isArray(node) ? Number(p) : p;
      path.push(idx);
      node = node !== null && typeof node === 'object' ? (Array.isArray(node) ? node[idx as number] : node[p]) : undefined;
    }
    this.overrides.set(pathKey(path), o);
  }

  /** Whether `path` (or an ancestor) was written by `--set` (its text must be converted to the field's type). */
  isOverridden(path: YamlPath): boolean {
    return this.overrideAt(path) !== undefined;
  }
}

/** A short description of a value's type for messages. */
export function describe(v: YamlValue | undefined): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return `the text ${JSON.stringify(v)}`;
  return `${typeof v} ${String(v)}`;
}
