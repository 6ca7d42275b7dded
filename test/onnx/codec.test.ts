import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { decodeModel, encodeModel, knownFields, onnx, UNKNOWN_FIELDS, type WithUnknownFields } from '../../src/onnx/codec.js';
import {
  editAt,
  encodeVarint,
  fieldsAt,
  fixture,
  graphOf,
  maxAbsDiff,
  ONNX_TESTDATA,
  ort,
  parseWire,
  pseudoRandomBytes,
  reference,
  runBert,
  serializeWire,
  session,
  type WireField,
} from './helpers.js';

const BERTS = ['tiny_bert/model.onnx', 'tiny_bert_opset11.onnx', 'tiny_bert_opset17.onnx'];

const plain = (m: onnx.IModelProto): unknown =>
  onnx.ModelProto.toObject(m as onnx.ModelProto, { longs: String, bytes: String, defaults: false });

function expectInputError(fn: () => unknown, file: string): InputError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    const ie = e as InputError;
    expect(ie.where.file).toBe(file);
    expect(ie.hint).toBeTruthy();
    return ie;
  }
  throw new Error('expected an InputError');
}

describe('decodeModel / encodeModel on real exports', () => {
  it.each(BERTS)('%s decodes to what the onnx package sees', (name) => {
    const m = decodeModel(readFileSync(fixture(name)), name);
    const facts = reference.models[name];
    expect(Number(m.irVersion)).toBe(facts.irVersion);
    expect(m.opsetImport.map((o) => ({ domain: o.domain ?? '', version: Number(o.version) }))).toEqual(facts.opset);
    expect(graphOf(m).node.length).toBe(facts.nodes);
    expect(graphOf(m).initializer.length).toBe(facts.initializers);
    expect(graphOf(m).input.map((i) => i.name)).toEqual(facts.inputs);
    expect(graphOf(m).output.map((o) => o.name)).toEqual(facts.outputs);
    const ops: Record<string, number> = {};
    for (const n of graphOf(m).node) ops[n.opType!] = (ops[n.opType!] ?? 0) + 1;
    expect(ops).toEqual(facts.ops);
  });

  it.each(BERTS)('%s round-trips to the same content and identical onnxruntime outputs', async (name) => {
    const bytes = readFileSync(fixture(name));
    const m = decodeModel(bytes, name);
    const out = encodeModel(m);
    const again = decodeModel(out, 'round trip');
    expect(plain(again)).toEqual(plain(m));
    expect(Buffer.compare(Buffer.from(encodeModel(again)), Buffer.from(out))).toBe(0); // encoding is stable
    const [a, b] = [await runBert(bytes), await runBert(out)];
    expect(b.dims).toEqual(a.dims);
    expect(Array.from(b.data as Float32Array)).toEqual(Array.from(a.data as Float32Array));
    // and both match PyTorch
    expect(a.dims).toEqual(reference.bert.dims);
    expect(maxAbsDiff(a.data as Float32Array, reference.bert.logits)).toBeLessThan(1e-4);
  });

  it('raw_data is a view into the input bytes, not a copy', () => {
    const bytes = readFileSync(fixture('tiny_bert/model.onnx'));
    const m = decodeModel(bytes);
    const big = graphOf(m).initializer.find((t) => (t.rawData?.length ?? 0) > 1000)!;
    expect(big.rawData?.buffer).toBe(bytes.buffer);
    const u8 = new Uint8Array(bytes); // a plain Uint8Array (not a Buffer) too
    expect(graphOf(decodeModel(u8)).initializer.find((t) => t.name === big.name)?.rawData?.buffer).toBe(u8.buffer);
  });

  const testdata = existsSync(ONNX_TESTDATA);
  it.skipIf(!testdata)('every model in ONNX\'s own test data (libonnx-testdata) round-trips', () => {
    const models: string[] = [];
    for (const group of readdirSync(ONNX_TESTDATA)) {
      for (const t of readdirSync(join(ONNX_TESTDATA, group))) {
        const p = join(ONNX_TESTDATA, group, t, 'model.onnx');
        if (existsSync(p)) models.push(p);
      }
    }
    expect(models.length).toBeGreaterThan(900);
    let withFunctionsOrSubgraphs = 0;
    for (const p of models) {
      const bytes = readFileSync(p);
      const m = decodeModel(bytes, p);
      const out = encodeModel(m);
      const again = decodeModel(out, p);
      expect(plain(again), p).toEqual(plain(m));
      // nothing in these files is unknown to the v1.10.2 schema except what ONNX 1.12 added
      if (m.functions.length > 0 || graphOf(m).node.some((n) => (n.attribute ?? []).some((a) => a.g || a.graphs?.length))) withFunctionsOrSubgraphs++;
    }
    expect(withFunctionsOrSubgraphs).toBeGreaterThan(10);
  });
});

describe('unknown fields survive decode → encode', () => {
  const known = (t: string): ReadonlySet<number> => knownFields(t);

  it('knows the v1.10.2 field numbers of the schema', () => {
    expect([...known('ModelProto')].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 14, 20, 25]);
    expect(known('NodeProto').has(5)).toBe(true);
    expect(known('NodeProto').has(9)).toBe(false); // metadata_props came with ONNX 1.16
    expect(known('TypeProto.Tensor').has(1)).toBe(true);
    expect(known('TensorShapeProto.Dimension').has(3)).toBe(true); // denotation
  });

  /** One of each wire type (varint, fixed64, length-delimited, fixed32), plus a repeat, numbered from `base`. */
  const extras = (base: number): WireField[] => [
    { no: base, wt: 0, value: encodeVarint(300n + BigInt(base)) },
    { no: base + 1, wt: 1, value: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, base & 0xff]) },
    { no: base + 2, wt: 2, value: new TextEncoder().encode(`unknown payload ${base} \u4e2d`) },
    { no: base + 3, wt: 5, value: Uint8Array.from([9, 8, 7, base & 0xff]) },
    { no: base, wt: 0, value: encodeVarint(-5n) }, // a second occurrence: order must be kept
  ];

  // [message type, path of [field number, occurrence] from the ModelProto] in subgraph.onnx
  const sites: Array<[string, Array<[number, number]>]> = [
    ['ModelProto', []],
    ['GraphProto', [[7, 0]]],
    ['NodeProto (If)', [[7, 0], [1, 0]]],
    ['NodeProto (Relu)', [[7, 0], [1, 1]]],
    ['AttributeProto', [[7, 0], [1, 0], [5, 0]]],
    ['GraphProto (subgraph)', [[7, 0], [1, 0], [5, 0], [6, 0]]],
    ['NodeProto (in subgraph)', [[7, 0], [1, 0], [5, 0], [6, 0], [1, 0]]],
    ['TensorProto', [[7, 0], [5, 0]]],
    ['ValueInfoProto', [[7, 0], [11, 0]]],
    ['TypeProto', [[7, 0], [11, 0], [2, 0]]],
    ['TypeProto.Tensor', [[7, 0], [11, 0], [2, 0], [1, 0]]],
    ['TensorShapeProto', [[7, 0], [11, 0], [2, 0], [1, 0], [2, 0]]],
    ['TensorShapeProto.Dimension', [[7, 0], [11, 0], [2, 0], [1, 0], [2, 0], [1, 0]]],
    ['OperatorSetIdProto', [[8, 0]]],
    ['StringStringEntryProto', [[14, 0]]],
  ];

  function injected(): { original: Uint8Array; bytes: Uint8Array } {
    let bytes: Uint8Array = readFileSync(fixture('subgraph.onnx'));
    // give the model a metadata_props entry to carry unknown fields
    const entry = serializeWire([
      { no: 1, wt: 2, value: new TextEncoder().encode('source') },
      { no: 2, wt: 2, value: new TextEncoder().encode('ranerc test') },
    ]);
    bytes = editAt(bytes, [], (f) => [...f, { no: 14, wt: 2, value: entry }]);
    const original = bytes;
    sites.forEach(([, path], i) => {
      bytes = editAt(bytes, path, (f) => [...f, ...extras(1000 + 10 * i)]);
    });
    // a group (wire type 3) at the top level, with fields inside
    bytes = editAt(bytes, [], (f) => [
      ...f,
      { no: 3000, wt: 3, value: serializeWire([{ no: 1, wt: 0, value: encodeVarint(7n) }, { no: 2, wt: 2, value: Uint8Array.of(1, 2) }]) },
    ]);
    return { original, bytes };
  }

  it('keeps every injected field, in place and in order, at every depth', () => {
    const { bytes } = injected();
    const m = decodeModel(bytes, 'injected');
    const out = encodeModel(m);
    sites.forEach(([type, path], i) => {
      const got = fieldsAt(out, path).filter((f) => f.no >= 1000 && f.no < 2000);
      const want = extras(1000 + 10 * i);
      expect(got.map((f) => [f.no, f.wt, Buffer.from(f.value).toString('hex')]), type).toEqual(
        want.map((f) => [f.no, f.wt, Buffer.from(f.value).toString('hex')]),
      );
    });
    const group = parseWire(out).filter((f) => f.no === 3000);
    expect(group).toHaveLength(1);
    expect(group[0].wt).toBe(3);
    expect(parseWire(group[0].value).map((f) => f.no)).toEqual([1, 2]);
    // a second round trip changes nothing
    expect(Buffer.compare(Buffer.from(encodeModel(decodeModel(out))), Buffer.from(out))).toBe(0);
  });

  it('does not disturb the known content, and the decoded objects carry the fields', () => {
    const { original, bytes } = injected();
    const m = decodeModel(bytes);
    expect(plain(m)).toEqual(plain(decodeModel(original)));
    const relu = graphOf(m).node[1] as onnx.NodeProto & WithUnknownFields;
    expect(relu[UNKNOWN_FIELDS]).toHaveLength(5);
    expect((graphOf(decodeModel(original)).node[1] as WithUnknownFields)[UNKNOWN_FIELDS]).toBeUndefined();
    // a spread copy (how transforms rebuild nodes) keeps them
    const copy = { ...relu, name: 'renamed' };
    const encoded = onnx.NodeProto.encode(copy).finish();
    expect(parseWire(encoded).filter((f) => f.no >= 1000).length).toBe(5);
  });

  it('onnxruntime still loads the re-encoded model and computes the same outputs', async () => {
    const { original, bytes } = injected();
    const out = encodeModel(decodeModel(bytes));
    for (const cond of [true, false]) {
      const feeds = {
        x: new ort.Tensor('float32', Float32Array.from(reference.subgraph.x), [3]),
        cond: new ort.Tensor('bool', [cond], []),
      };
      const [a, b] = [await session(original), await session(out)];
      const ya = (await a.run(feeds)).y.data as Float32Array;
      const yb = (await b.run(feeds)).y.data as Float32Array;
      expect(Array.from(yb)).toEqual(Array.from(ya));
      expect(maxAbsDiff(ya, cond ? reference.subgraph.then : reference.subgraph.else)).toBeLessThan(1e-6);
    }
  });
});

describe('broken files are InputErrors naming the file', () => {
  const bytes = readFileSync(fixture('tiny_bert/model.onnx'));

  it('truncated anywhere', () => {
    const cuts = new Set<number>([1, 2, 10, 100, bytes.length - 1, bytes.length - 2, Math.floor(bytes.length / 2)]);
    for (let c = 3; c < bytes.length; c += 997) cuts.add(c);
    // every boundary between top-level fields
    let pos = 0;
    for (const f of parseWire(bytes)) {
      pos += serializeWire([f]).length;
      if (pos < bytes.length) cuts.add(pos);
    }
    for (const c of cuts) expectInputError(() => decodeModel(bytes.subarray(0, c), 'model.onnx'), 'model.onnx');
  });

  it('garbage, text, JSON, Git LFS pointers, zip/pickle checkpoints, empty files', () => {
    for (let seed = 1; seed <= 60; seed++) {
      expectInputError(() => decodeModel(pseudoRandomBytes(16 + seed * 37, seed), 'junk.onnx'), 'junk.onnx');
    }
    const text = (s: string): Uint8Array => new TextEncoder().encode(s);
    expectInputError(() => decodeModel(text('hello, this is not a model\n'), 'a.onnx'), 'a.onnx');
    expect(expectInputError(() => decodeModel(text('{"id2label": {}}'), 'b.onnx'), 'b.onnx').message).toMatch(/JSON/);
    const lfs = text('version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n');
    expect(expectInputError(() => decodeModel(lfs, 'c.onnx'), 'c.onnx').hint).toMatch(/git lfs pull/);
    expectInputError(() => decodeModel(Uint8Array.of(0x50, 0x4b, 3, 4, 0, 0, 0, 0), 'd.onnx'), 'd.onnx');
    expectInputError(() => decodeModel(Uint8Array.of(0x80, 2, 0x63, 0x6f, 0x6c, 0x6c, 0, 0), 'e.onnx'), 'e.onnx');
    expectInputError(() => decodeModel(new Uint8Array(0), 'f.onnx'), 'f.onnx');
  });

  it('a valid protobuf that is not a model (no graph) or has a corrupt length', () => {
    const noGraph = serializeWire(parseWire(bytes).filter((f) => f.no !== 7));
    expect(expectInputError(() => decodeModel(noGraph, 'g.onnx'), 'g.onnx').message).toMatch(/no graph/);
    const tensor = onnx.TensorProto.encode({ name: 'w', dataType: 1, dims: [1], floatData: [1] }).finish();
    expectInputError(() => decodeModel(tensor, 'h.onnx'), 'h.onnx');
    // the graph's length prefix claims more bytes than the file has
    const fields = parseWire(bytes);
    const graph = fields.find((f) => f.no === 7)!;
    const corrupt = Buffer.concat([encodeVarint(7n * 8n + 2n), encodeVarint(BigInt(graph.value.length + 1000)), graph.value]);
    expectInputError(() => decodeModel(corrupt, 'i.onnx'), 'i.onnx');
  });
});
