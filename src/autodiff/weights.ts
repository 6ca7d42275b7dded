/**
 * Writing trained values back into an ONNX model's initializers (for fine-tuning / pruning that
 * trains through the executor): a new model object sharing everything but the changed tensors.
 */
import { GraphError } from '../errors.js';
import type { onnx } from '../onnx/codec.js';
import { dimsOf, elementCount, encodeRaw } from '../onnx/tensor.js';
import { DT, isFloatType } from './tensordata.js';

/** A copy of a protobufjs message keeping its prototype and symbol-keyed (unknown-field) data. */
function cloneMessage<T extends object>(m: T, patch: Partial<T>): T {
  return Object.assign(Object.create(Object.getPrototypeOf(m) as object) as T, m, patch);
}

/**
 * A model whose float initializers named in `values` hold the given values (in their original
 * element type: FLOAT, DOUBLE, FLOAT16 or BFLOAT16, stored as raw_data). The input model is not
 * mutated; untouched initializers and everything else are shared with it.
 * Throws GraphError for an unknown name, a non-float initializer, or a wrong element count.
 */
export function withInitializers(model: onnx.IModelProto, values: ReadonlyMap<string, Float32Array>): onnx.IModelProto {
  const graph = model.graph;
  if (!graph) throw new GraphError('the model has no graph', { hint: 'pass a complete ONNX ModelProto' });
  const pending = new Set(values.keys());
  const initializer = (graph.initializer ?? []).map((t) => {
    const name = t.name ?? '';
    const v = values.get(name);
    if (!v) return t;
    pending.delete(name);
    const dt = t.dataType ?? 0;
    if (!isFloatType(dt) || (dt !== DT.FLOAT && dt !== DT.DOUBLE && dt !== DT.FLOAT16 && dt !== DT.BFLOAT16)) {
      throw new GraphError(`initializer "${name}" is not a float tensor`, {
        node: name,
        hint: 'only FLOAT/DOUBLE/FLOAT16/BFLOAT16 initializers hold trainable values',
      });
    }
    const dims = dimsOf(t);
    if (elementCount(dims) !== v.length) {
      throw new GraphError(`initializer "${name}" has ${elementCount(dims)} elements, ${v.length} values given`, {
        node: name,
        hint: 'pass values of the initializer\'s own shape (OnnxExecutor.exportInitializers gives them)',
      });
    }
    return cloneMessage(t, {
      rawData: encodeRaw(dt, v, `initializer "${name}"`),
      floatData: [],
      doubleData: [],
      int32Data: [],
      dataLocation: 0,
      externalData: [],
    } as Partial<onnx.ITensorProto>);
  });
  if (pending.size > 0) {
    const first = [...pending][0];
    throw new GraphError(`the model has no initializer "${first}"${pending.size > 1 ? ` (and ${pending.size - 1} more)` : ''}`, {
      node: first,
      hint: 'write back values exported from an executor compiled from this model',
    });
  }
  return cloneMessage(model, { graph: cloneMessage(graph, { initializer }) } as Partial<onnx.IModelProto>);
}
