/**
 * Builds small ONNX token "classifiers" in memory (onnx-proto) whose logits are a closed-form function of
 * the inputs, so tests can compute the expected logits from the ONNX operator definitions alone:
 *
 *   logits[b, s, :] = E[input_ids[b, s]] + mask[b, s] · m + T[token_type_ids[b, s]] + P[position_ids[b, s]]
 *
 * (Gather on axis 0, Cast to float, Unsqueeze at axis -1, Mul and Add with broadcasting.) Terms whose
 * input the model lacks are left out.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const FLOAT = 1;
const INT32 = 6;
const INT64 = 7;

export interface ToyModelSpec {
  vocab: number;
  labels: number;
  idType?: 'int64' | 'int32';
  mask?: boolean;
  types?: boolean;
  positions?: number;
  /** Extra graph inputs ranerc does not know (float [batch, seq]), added to nothing. */
  extraInputs?: string[];
  /** Output name (default "logits"). */
  outputName?: string;
  /** Declare the output's label dimension statically (default true). */
  staticLabels?: boolean;
  /** Element type of the attention mask input (default idType). */
  maskType?: 'int64' | 'int32' | 'float';
  seed?: number;
}

export interface ToyModel {
  bytes: Uint8Array;
  E: number[][];
  m: number[];
  T: number[][];
  P: number[][];
  /** Expected logits for a padded batch, from the closed form. */
  expected(ids: number[][], mask?: number[][], typeIds?: number[][]): number[][][];
}

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A float32-representable random matrix. */
function matrix(rows: number, cols: number, r: () => number): number[][] {
  return Array.from({ length: rows }, () => Array.from({ length: cols }, () => Math.fround(r() * 2 - 1)));
}

function floatTensor(name: string, rows: number[][]): onnxProto.onnx.ITensorProto {
  return { name, dataType: FLOAT, dims: [rows.length, rows[0].length], floatData: rows.flat() };
}

function valueInfo(name: string, elemType: number, dims: Array<number | string>): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

const elem = (t: 'int64' | 'int32' | 'float') => (t === 'int64' ? INT64 : t === 'int32' ? INT32 : FLOAT);

export function buildToyModel(spec: ToyModelSpec): ToyModel {
  const r = rng(spec.seed ?? 7);
  const L = spec.labels;
  const E = matrix(spec.vocab, L, r);
  const m = matrix(1, L, r)[0];
  const T = matrix(2, L, r);
  const P = matrix(spec.positions ?? 1, L, r);
  const idType = elem(spec.idType ?? 'int64');
  const inputs = [valueInfo('input_ids', idType, ['batch', 'sequence'])];
  const init: onnxProto.onnx.ITensorProto[] = [floatTensor('E', E)];
  const nodes: onnxProto.onnx.INodeProto[] = [{ opType: 'Gather', input: ['E', 'input_ids'], output: ['emb'], name: 'gather_ids' }];
  let acc = 'emb';
  const add = (term: string, name: string) => {
    const out = `${name}_sum`;
    nodes.push({ opType: 'Add', input: [acc, term], output: [out], name: `${name}_add` });
    acc = out;
  };
  if (spec.mask ?? true) {
    const maskType = elem(spec.maskType ?? spec.idType ?? 'int64');
    inputs.push(valueInfo('attention_mask', maskType, ['batch', 'sequence']));
    init.push({ name: 'm', dataType: FLOAT, dims: [L], floatData: m });
    init.push({ name: 'axes', dataType: INT64, dims: [1], int64Data: [-1] });
    nodes.push({ opType: 'Cast', input: ['attention_mask'], output: ['maskf'], name: 'cast_mask', attribute: [{ name: 'to', type: 2, i: FLOAT }] });
    nodes.push({ opType: 'Unsqueeze', input: ['maskf', 'axes'], output: ['mask3'], name: 'unsq_mask' });
    nodes.push({ opType: 'Mul', input: ['mask3', 'm'], output: ['maskterm'], name: 'mul_mask' });
    add('maskterm', 'mask');
  }
  if (spec.types ?? true) {
    inputs.push(valueInfo('token_type_ids', idType, ['batch', 'sequence']));
    init.push(floatTensor('T', T));
    nodes.push({ opType: 'Gather', input: ['T', 'token_type_ids'], output: ['typeterm'], name: 'gather_types' });
    add('typeterm', 'types');
  }
  if (spec.positions) {
    inputs.push(valueInfo('position_ids', idType, ['batch', 'sequence']));
    init.push(floatTensor('P', P));
    nodes.push({ opType: 'Gather', input: ['P', 'position_ids'], output: ['posterm'], name: 'gather_pos' });
    add('posterm', 'pos');
  }
  for (const x of spec.extraInputs ?? []) inputs.push(valueInfo(x, FLOAT, ['batch', 'sequence']));
  const outName = spec.outputName ?? 'logits';
  nodes.push({ opType: 'Identity', input: [acc], output: [outName], name: 'out' });
  const model: onnxProto.onnx.IModelProto = {
    irVersion: 7,
    producerName: 'ranerc-test',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'toy',
      node: nodes,
      initializer: init,
      input: inputs,
      output: [valueInfo(outName, FLOAT, ['batch', 'sequence', (spec.staticLabels ?? true) ? L : 'labels'])],
    },
  };
  const bytes = onnx.ModelProto.encode(onnx.ModelProto.fromObject(model)).finish();
  const hasMask = spec.mask ?? true;
  const hasTypes = spec.types ?? true;
  return {
    bytes,
    E,
    m,
    T,
    P,
    expected(ids, mask, typeIds) {
      return ids.map((row, b) =>
        row.map((id, s) =>
          E[id].map((e, l) => {
            // float32 accumulation in the graph's order
            let v = e;
            if (hasMask) v = Math.fround(v + Math.fround((mask ? mask[b][s] : 1) * m[l]));
            if (hasTypes) v = Math.fround(v + T[typeIds ? typeIds[b][s] : 0][l]);
            if (spec.positions) v = Math.fround(v + P[s][l]);
            return v;
          }),
        ),
      );
    },
  };
}
