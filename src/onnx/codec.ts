/**
 * ONNX protobuf codec: decode/encode `ModelProto` with onnx-proto's static (ONNX v1.10.2) code,
 * keeping fields that schema does not know.
 *
 * protobufjs' generated `decode` skips unknown field numbers (`reader.skipType`), so a model written
 * by a newer exporter would silently lose them on a decode→encode round trip. When this module
 * loads it wraps every generated `onnx.<Type>.decode/encode` (nested messages are decoded/encoded
 * through the same static functions, so every depth is covered): decode keeps the raw wire bytes of
 * each unknown field (tag included) under the symbol {@link UNKNOWN_FIELDS}; encode writes them
 * back after the known fields. Import `onnx` from this module (not from 'onnx-proto') so the hooks
 * are always installed.
 *
 * Copies: decoding a Node Buffer or Uint8Array makes `bytes` fields (raw_data) views into the input,
 * so a model decodes without copying its weights; encoding copies each payload once into the output.
 */
import onnxProto from 'onnx-proto';
import protobuf from 'protobufjs/minimal.js';
import { InputError } from '../errors.js';

/** onnx-proto's `onnx` namespace (values and types), with the unknown-field hooks installed. */
export import onnx = onnxProto.onnx;

/**
 * Key under which a decoded message keeps the wire bytes of fields the ONNX v1.10.2 schema lacks
 * (each entry is one whole field: tag + value). Spreading a message (`{...node}`) copies it along.
 * `Symbol.for` so every copy of this module (test runners may load it twice) agrees on it.
 */
export const UNKNOWN_FIELDS: unique symbol = Symbol.for('ranerc.onnx.unknownFields') as never;

/** A message object that may carry unknown fields. */
export interface WithUnknownFields {
  [UNKNOWN_FIELDS]?: Uint8Array[];
}

const INSTALLED = Symbol.for('ranerc.onnx.codecHooks');
const KNOWN = Symbol.for('ranerc.onnx.knownFields');

interface GeneratedMessage {
  decode(reader: protobuf.Reader | Uint8Array, length?: number): object;
  encode(message: object, writer?: protobuf.Writer): protobuf.Writer;
}

/** protobufjs' Writer queue API (stable since 6.x, absent from its typings). */
interface WriterInternals {
  _push(fn: (val: Uint8Array, buf: Uint8Array, pos: number) => void, len: number, val: Uint8Array): protobuf.Writer;
}

/** Number of `skipType` calls so far: a decode that made none saw no unknown field. */
let skipCount = 0;

function writeRaw(val: Uint8Array, buf: Uint8Array, pos: number): void {
  buf.set(val, pos);
}

/** Read a varint at `pos`; returns [value (up to 2^53), next position]. Throws past `end`. */
function varint(buf: Uint8Array, pos: number, end: number): [number, number] {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new RangeError(`truncated varint at offset ${pos}`);
    const b = buf[pos++];
    value += (b & 0x7f) * mul;
    if (b < 0x80) return [value, pos];
    mul *= 128;
  }
  throw new RangeError(`varint longer than 10 bytes at offset ${pos}`);
}

/** Position just past the value of a field with wire type `wt` whose value starts at `pos`. */
function skipValue(buf: Uint8Array, pos: number, end: number, wt: number, fieldNo: number): number {
  switch (wt) {
    case 0:
      return varint(buf, pos, end)[1];
    case 1:
      pos += 8;
      break;
    case 2: {
      const [len, p] = varint(buf, pos, end);
      pos = p + len;
      break;
    }
    case 3: {
      // group: skip fields until the matching end-group tag
      for (;;) {
        const [tag, p] = varint(buf, pos, end);
        if ((tag & 7) === 4) {
          if (Math.floor(tag / 8) !== fieldNo) throw new RangeError(`mismatched end-group tag at offset ${pos}`);
          return p;
        }
        pos = skipValue(buf, p, end, tag & 7, Math.floor(tag / 8));
      }
    }
    case 5:
      pos += 4;
      break;
    default:
      throw new RangeError(`invalid wire type ${wt} at offset ${pos}`);
  }
  if (pos > end) throw new RangeError(`field runs past the end of its message at offset ${pos}`);
  return pos;
}

/** Raw bytes (tag + value, views into `buf`) of every field in [start, end) whose number is not in `known`. */
function unknownFields(buf: Uint8Array, start: number, end: number, known: ReadonlySet<number>): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pos = start;
  while (pos < end) {
    const tagStart = pos;
    const [tag, p] = varint(buf, pos, end);
    const fieldNo = Math.floor(tag / 8);
    if (fieldNo === 0) throw new RangeError(`invalid field number 0 at offset ${tagStart}`);
    pos = skipValue(buf, p, end, tag & 7, fieldNo);
    if (!known.has(fieldNo)) out.push(buf.subarray(tagStart, pos));
  }
  return out;
}

/** Field numbers a generated decoder handles: the `case N:` labels of its switch. */
function knownFieldNumbers(decode: (...args: never[]) => unknown): Set<number> {
  const src = Function.prototype.toString.call(decode);
  const nums = new Set<number>();
  for (const m of src.matchAll(/case (\d+):/g)) nums.add(Number(m[1]));
  return nums;
}

function isGeneratedMessage(v: unknown): v is GeneratedMessage & Record<string, unknown> {
  return (
    typeof v === 'function' &&
    typeof (v as unknown as GeneratedMessage).decode === 'function' &&
    typeof (v as unknown as GeneratedMessage).encode === 'function'
  );
}

function wrapMessage(ctor: GeneratedMessage, name: string): void {
  const origDecode = ctor.decode;
  const origEncode = ctor.encode;
  const known = knownFieldNumbers(origDecode);
  if (known.size === 0) throw new Error(`onnx-proto: cannot read the field numbers of ${name}.decode`);
  Object.defineProperty(ctor, KNOWN, { value: known });
  ctor.decode = function decode(this: GeneratedMessage, r: protobuf.Reader | Uint8Array, length?: number): object {
    const reader = r instanceof protobuf.Reader ? r : protobuf.Reader.create(r);
    const start = reader.pos;
    const before = skipCount;
    const message = origDecode.call(this, reader, length);
    if (skipCount !== before) {
      const end = length === undefined ? reader.len : start + length;
      const unknown = unknownFields(reader.buf, start, end, known);
      if (unknown.length > 0) (message as WithUnknownFields)[UNKNOWN_FIELDS] = unknown;
    }
    return message;
  };
  ctor.encode = function encode(this: GeneratedMessage, message: object, writer?: protobuf.Writer): protobuf.Writer {
    const w = origEncode.call(this, message, writer);
    const unknown = (message as WithUnknownFields)[UNKNOWN_FIELDS];
    if (unknown) for (const chunk of unknown) (w as unknown as WriterInternals)._push(writeRaw, chunk.length, chunk);
    return w;
  };
}

function install(): void {
  const root = onnx as unknown as Record<PropertyKey, unknown>;
  if (root[INSTALLED]) return;
  const reader = protobuf.Reader.prototype as unknown as { skipType(wt: number): unknown };
  const origSkip = reader.skipType;
  reader.skipType = function skipType(this: protobuf.Reader, wt: number) {
    skipCount++;
    return origSkip.call(this, wt);
  };
  const seen = new Set<unknown>();
  const visit = (ns: Record<string, unknown>, prefix: string): void => {
    for (const [key, value] of Object.entries(ns)) {
      if (!isGeneratedMessage(value) || seen.has(value)) continue;
      seen.add(value);
      wrapMessage(value, `${prefix}${key}`);
      visit(value, `${prefix}${key}.`); // nested types (TypeProto.Tensor, TensorShapeProto.Dimension, ...)
    }
  };
  visit(root as Record<string, unknown>, 'onnx.');
  Object.defineProperty(root, INSTALLED, { value: true });
}

install();

/** Field numbers of `onnx.<typeName>` (e.g. 'ModelProto', 'TypeProto.Tensor') the installed schema knows. */
export function knownFields(typeName: string): ReadonlySet<number> {
  let cur: unknown = onnx;
  for (const part of typeName.split('.')) cur = (cur as Record<string, unknown> | undefined)?.[part];
  const known = isGeneratedMessage(cur) ? (cur as Record<PropertyKey, unknown>)[KNOWN] : undefined;
  if (!(known instanceof Set)) throw new Error(`onnx.${typeName} is not a message type`);
  return known as Set<number>;
}

const LFS_POINTER = 'version https://git-lfs';

function describeNonOnnx(bytes: Uint8Array): string | undefined {
  const head = Buffer.from(bytes.subarray(0, 64)).toString('utf8');
  if (head.startsWith(LFS_POINTER)) return 'it is a Git LFS pointer, not the model itself';
  if (/^\s*[[{]/.test(head)) return 'it looks like JSON text';
  if (head.startsWith('PK\u0003\u0004')) return 'it is a zip archive (a PyTorch checkpoint?)';
  if (bytes.length >= 8 && bytes[0] === 0x80 && bytes[1] <= 5) return 'it looks like a Python pickle (a PyTorch checkpoint?)';
  return undefined;
}

/**
 * Decode an ONNX model. `source` names the file in errors.
 * Throws InputError for empty, truncated or corrupt bytes, non-ONNX files, and models without a
 * graph, an IR version or (IR ≥ 3) an opset import.
 */
export function decodeModel(bytes: Uint8Array, source = '<bytes>'): onnx.ModelProto {
  const hint = 're-export the model (torch.onnx.export / optimum-cli export onnx) or re-download it; check the path';
  if (bytes.length === 0) throw new InputError('ONNX file is empty', { file: source, hint });
  // Explain the usual wrong files (only once the bytes have failed as ONNX: no valid model is rejected by a guess).
  const invalid = (why: string, cause?: unknown): InputError => {
    const notOnnx = describeNonOnnx(bytes);
    if (notOnnx) {
      return new InputError(`not an ONNX model: ${notOnnx}`, {
        file: source,
        hint: notOnnx.includes('LFS') ? 'run `git lfs pull` to fetch the real file' : hint,
        cause,
      });
    }
    return new InputError(`not a valid ONNX model: ${why}`, { file: source, hint, cause });
  };
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw invalid(`truncated or corrupt protobuf (${e instanceof Error ? e.message : String(e)})`, e);
  }
  if (!model.graph) throw invalid('it has no graph');
  const ir = Object.prototype.hasOwnProperty.call(model, 'irVersion') ? Number(model.irVersion.toString()) : 0;
  if (ir <= 0) throw invalid('it has no ir_version (truncated, or not ONNX?)');
  if (ir >= 3 && model.opsetImport.length === 0) throw invalid('it has no opset_import (truncated?)');
  return model;
}

/** Encode a model (unknown fields kept). The result may be a Node Buffer. */
export function encodeModel(model: onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}
