/**
 * ONNX tensor data for the autodiff executor, on top of src/onnx/tensor.ts: values as Float64Array
 * (the host representation; bool as 0/1, int64 clamped to ±2^53 as Slice's INT64_MAX sentinels need).
 */
import type Long from 'long';
import { GraphError } from '../errors.js';
import type { onnx } from '../onnx/codec.js';
import {
  DataType,
  dataTypeName,
  dimsOf,
  isFloatType,
  readTensor,
  tensorToFloat32,
  tensorToNumbers,
  toNumber,
} from '../onnx/tensor.js';

export { DataType as DT, dataTypeName, isFloatType };

/** number | Long → number, int64 sentinels beyond 2^53 clamped. */
export function num(v: number | Long | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return toNumber(v, { clamp: true });
}

/** Tensor payload as plain numbers (Float64Array; bool as 0/1), row-major. */
export interface DecodedTensor {
  dataType: number;
  dims: number[];
  data: Float64Array;
}

/** Whether tfjs can hold the element type (float32 / int32 / bool). */
export function isNumericType(dt: number): boolean {
  return dt !== DataType.STRING && dt !== DataType.COMPLEX64 && dt !== DataType.COMPLEX128 && dt !== DataType.UNDEFINED;
}

/** Read a TensorProto's values as Float64Array (float32 values are exact; float16 & co decoded). */
export function decodeTensor(t: onnx.ITensorProto, where = t.name ?? '?'): DecodedTensor {
  const dataType = t.dataType ?? 0;
  if (!isNumericType(dataType)) {
    throw new GraphError(`tensor "${where}" has data type ${dataTypeName(dataType)}, which the tfjs executor cannot hold`, {
      node: where,
      hint: 'tfjs has float32, int32 and bool tensors only; strings and complex numbers are not supported',
    });
  }
  const dims = dimsOf(t);
  let data: Float64Array;
  if (dataType === DataType.DOUBLE) data = Float64Array.from(readTensor(t, { view: true }).data as Float64Array);
  else if (isFloatType(dataType)) data = Float64Array.from(tensorToFloat32(t));
  else data = Float64Array.from(tensorToNumbers(t, { clamp: true }));
  return { dataType, dims, data };
}

/** A float initializer's values as a fresh Float32Array. */
export function float32Values(t: onnx.ITensorProto): { dims: number[]; data: Float32Array } {
  return { dims: dimsOf(t), data: tensorToFloat32(t) };
}
