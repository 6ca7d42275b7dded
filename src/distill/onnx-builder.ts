/** A small ONNX graph builder for the students' exports (opset 14, inputs input_ids/attention_mask). */
import { onnx } from '../onnx/codec.js';
import { DataType, makeTensor } from '../onnx/tensor.js';

type AttrValue = number | string | number[] | { float: number } | { floats: number[] };

function attribute(name: string, v: AttrValue): onnx.AttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') return onnx.AttributeProto.create({ name, type: T.INT, i: v });
  if (typeof v === 'string') return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(v) });
  if (Array.isArray(v)) return onnx.AttributeProto.create({ name, type: T.INTS, ints: v });
  if ('float' in v) return onnx.AttributeProto.create({ name, type: T.FLOAT, f: v.float });
  return onnx.AttributeProto.create({ name, type: T.FLOATS, floats: v.floats });
}

function valueInfo(name: string, elemType: number, dims: Array<number | string>): onnx.ValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  });
}

export class GraphBuilder {
  readonly nodes: onnx.NodeProto[] = [];
  readonly initializers: onnx.TensorProto[] = [];
  private counter = 0;

  /** Add a node; returns its first output name (generated from `op` when not given). */
  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs?: string[]): string {
    const outs = outputs ?? [`${op.toLowerCase()}_${this.counter++}`];
    this.nodes.push(
      onnx.NodeProto.create({
        name: `${op}_${this.nodes.length}`,
        opType: op,
        input: inputs,
        output: outs,
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      }),
    );
    return outs[0];
  }

  /** A float32 initializer. */
  float(name: string, dims: number[], data: ArrayLike<number>): string {
    this.initializers.push(makeTensor(name, DataType.FLOAT, dims, Float32Array.from(data)));
    return name;
  }

  /** An int64 initializer (shape constants, axes). */
  int64(name: string, values: number[]): string {
    this.initializers.push(makeTensor(name, DataType.INT64, [values.length], values));
    return name;
  }

  /** The model: int64 inputs input_ids/attention_mask [batch, sequence], float output `logits` [batch, sequence, labels]. */
  model(output: string, numLabels: number, producer: string, opset = 14): onnx.ModelProto {
    return onnx.ModelProto.create({
      irVersion: 7,
      producerName: 'ranerc',
      producerVersion: producer,
      opsetImport: [{ domain: '', version: opset }],
      graph: {
        name: 'ranerc_student',
        node: this.nodes,
        initializer: this.initializers,
        input: [
          valueInfo('input_ids', DataType.INT64, ['batch', 'sequence']),
          valueInfo('attention_mask', DataType.INT64, ['batch', 'sequence']),
        ],
        output: [valueInfo(output, DataType.FLOAT, ['batch', 'sequence', numLabels])],
      },
    });
  }
}
