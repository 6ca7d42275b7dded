/** Shared helpers for test/onnx: fixture paths, onnxruntime runs, and a schema-free protobuf wire parser. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import type { onnx } from '../../src/onnx/codec.js';

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
export const fixture = (name: string): string => `${FIXTURES}${name}`;
export const ONNX_TESTDATA = '/usr/share/libonnx-testdata/data';

export interface BertReference {
  input_ids: number[][];
  attention_mask: number[][];
  token_type_ids: number[][];
  dims: number[];
  logits: number[];
  torchParameters: number;
}
export interface ModelFacts {
  irVersion: number;
  opset: Array<{ domain: string; version: number }>;
  nodes: number;
  initializers: number;
  floatParameters: number;
  ops: Record<string, number>;
  inputs: string[];
  outputs: string[];
  initializerShapes: Record<string, number[]>;
  initializerSums: Record<string, number>;
  /** Constant node output → flattened values (int64 beyond 2^53 as strings). */
  constants: Record<string, Array<number | string>>;
  /** Node name → attribute name → value, for int/ints/float/floats/string attributes. */
  attributes: Record<string, Record<string, { type: string; value: unknown }>>;
}
export interface Reference {
  bert: BertReference;
  models: Record<string, ModelFacts>;
  external: { externalTensors: string[]; inlineTensors: string[] };
  dtypes: Record<string, { dataType: number; dims: number[]; values: Array<number | string | boolean>; bits?: number[] }>;
  subgraph: { x: number[]; then: number[]; else: number[] };
}

export const reference: Reference = JSON.parse(readFileSync(fixture('reference.json'), 'utf8')) as Reference;

/** A session that keeps onnxruntime's warnings (unused initializers, ...) off the test output. */
export async function session(model: string | Uint8Array): Promise<ort.InferenceSession> {
  const opts: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3 };
  return typeof model === 'string' ? ort.InferenceSession.create(model, opts) : ort.InferenceSession.create(model, opts);
}

/** Run the tiny BERT fixture inputs through a model; returns the logits. */
export async function runBert(model: string | Uint8Array, ref: BertReference = reference.bert): Promise<ort.Tensor> {
  const s = await session(model);
  const [b, t] = [ref.input_ids.length, ref.input_ids[0].length];
  const i64 = (rows: number[][]): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [b, t]);
  const out = await s.run({
    input_ids: i64(ref.input_ids),
    attention_mask: i64(ref.attention_mask),
    token_type_ids: i64(ref.token_type_ids),
  });
  await s.release();
  return out[s.outputNames[0]];
}

export { ort };

/** The graph of a decoded model, typed as the class (its repeated fields are always arrays). */
export const graphOf = (m: onnx.IModelProto): onnx.GraphProto => m.graph as onnx.GraphProto;

// ------------------------------------------------------------------------------------ wire format

export interface WireField {
  no: number;
  wt: number;
  /** Value bytes: the varint / fixed bytes, or the payload of a length-delimited field (no length prefix). */
  value: Uint8Array;
}

export function encodeVarint(v: bigint): Uint8Array {
  const out: number[] = [];
  let x = BigInt.asUintN(64, v);
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x > 0n) b |= 0x80;
    out.push(b);
  } while (x > 0n);
  return Uint8Array.from(out);
}

function readVarint(buf: Uint8Array, pos: number): [bigint, number] {
  let v = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new RangeError('truncated varint');
    const b = buf[pos++];
    v |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return [v, pos];
    shift += 7n;
  }
}

/** Position after the value of a field with wire type `wt` starting at `p` (for groups: after the end tag). */
function skipValue(buf: Uint8Array, p: number, wt: number, no: number): number {
  if (wt === 0) return readVarint(buf, p)[1];
  if (wt === 1) return p + 8;
  if (wt === 5) return p + 4;
  if (wt === 2) {
    const [len, q] = readVarint(buf, p);
    return q + Number(len);
  }
  if (wt === 3) {
    for (let q = p; ; ) {
      const [t2, r] = readVarint(buf, q);
      if (Number(t2 & 7n) === 4) {
        if (Number(t2 >> 3n) !== no) throw new RangeError('mismatched end group');
        return r;
      }
      q = skipValue(buf, r, Number(t2 & 7n), Number(t2 >> 3n));
    }
  }
  throw new RangeError(`wire type ${wt}`);
}

/** Parse one message's fields (not recursively). Groups (wire type 3) keep their content, end tag excluded. */
export function parseWire(buf: Uint8Array): WireField[] {
  const out: WireField[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [tag, p] = readVarint(buf, pos);
    const no = Number(tag >> 3n);
    const wt = Number(tag & 7n);
    const end = skipValue(buf, p, wt, no);
    if (end > buf.length) throw new RangeError('field past end');
    if (wt === 2) {
      const q = readVarint(buf, p)[1];
      out.push({ no, wt, value: buf.subarray(q, end) });
    } else if (wt === 3) {
      out.push({ no, wt, value: buf.subarray(p, end - encodeVarint(BigInt(no * 8 + 4)).length) });
    } else out.push({ no, wt, value: buf.subarray(p, end) });
    pos = end;
  }
  return out;
}

export function serializeWire(fields: WireField[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const f of fields) {
    parts.push(encodeVarint(BigInt(f.no * 8 + f.wt)));
    if (f.wt === 2) parts.push(encodeVarint(BigInt(f.value.length)));
    parts.push(f.value);
    if (f.wt === 3) parts.push(encodeVarint(BigInt(f.no * 8 + 4)));
  }
  return Buffer.concat(parts);
}

/**
 * Rewrite the sub-message reached by `path` ([field number, occurrence] pairs) with `edit`,
 * re-serializing every enclosing message (lengths recomputed).
 */
export function editAt(buf: Uint8Array, path: Array<[number, number]>, edit: (fields: WireField[]) => WireField[]): Uint8Array {
  const fields = parseWire(buf);
  if (path.length === 0) return serializeWire(edit(fields));
  const [[no, occ], ...rest] = path;
  let seen = 0;
  const idx = fields.findIndex((f) => f.no === no && seen++ === occ);
  if (idx < 0) throw new Error(`no field ${no}#${occ}`);
  fields[idx] = { ...fields[idx], value: editAt(fields[idx].value, rest, edit) };
  return serializeWire(fields);
}

/** The fields of the sub-message at `path`. */
export function fieldsAt(buf: Uint8Array, path: Array<[number, number]>): WireField[] {
  let cur = buf;
  for (const [no, occ] of path) {
    const f = parseWire(cur).filter((x) => x.no === no)[occ];
    if (!f) throw new Error(`no field ${no}#${occ}`);
    cur = f.value;
  }
  return parseWire(cur);
}

/** Deterministic pseudo-random bytes (xorshift32). */
export function pseudoRandomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
