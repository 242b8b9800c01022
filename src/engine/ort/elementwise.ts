/**
 * Element-wise float32 operations, transposes and softmax as one-node ONNX Runtime graphs: multithreaded and
 * vectorised, for the cpu engine's large tensors (a call costs some 0.1 ms, so small tensors stay in JavaScript
 * loops). Each gives exactly what the stock tfjs kernel gives (IEEE float32 arithmetic, numpy broadcasting, data
 * movement), except softmax, whose vectorised exponential is within a few units in the last place.
 */
import { onnxModel } from '../onnx/builder.js';
import type { OrtMatMul } from './runtime.js';

export type OrtBinaryOp = 'Add' | 'Sub' | 'Mul' | 'Div';

export function ortBinary(
  ort: OrtMatMul,
  op: OrtBinaryOp,
  a: Float32Array,
  aShape: readonly number[],
  b: Float32Array,
  bShape: readonly number[],
  out: Float32Array,
  outShape: readonly number[],
): void {
  ort.runGraph(
    `elementwise/${op}`,
    () => onnxModel([{ op, inputs: ['A', 'B'], outputs: ['Y'] }], ['A', 'B'], ['Y']),
    { A: { data: a, dims: aShape }, B: { data: b, dims: bShape } },
    { Y: { data: out, dims: outShape } },
  );
}

export function ortRelu(ort: OrtMatMul, x: Float32Array, y: Float32Array): void {
  ort.runGraph(
    'elementwise/Relu',
    () => onnxModel([{ op: 'Relu', inputs: ['X'], outputs: ['Y'] }], ['X'], ['Y']),
    { X: { data: x, dims: [x.length] } },
    { Y: { data: y, dims: [y.length] } },
  );
}

export function ortTranspose(ort: OrtMatMul, x: Float32Array, shape: readonly number[], perm: readonly number[], out: Float32Array): void {
  ort.runGraph(
    `transpose/${perm.join(',')}`,
    () => onnxModel([{ op: 'Transpose', inputs: ['X'], outputs: ['Y'], attributes: { perm: [...perm] } }], ['X'], ['Y']),
    { X: { data: x, dims: shape } },
    { Y: { data: out, dims: perm.map((p) => shape[p]!) } },
  );
}

/** Softmax over the last axis. */
export function ortSoftmax(ort: OrtMatMul, x: Float32Array, shape: readonly number[], y: Float32Array): void {
  ort.runGraph(
    'softmax/last',
    () => onnxModel([{ op: 'Softmax', inputs: ['X'], outputs: ['Y'], attributes: { axis: -1 } }], ['X'], ['Y']),
    { X: { data: x, dims: shape } },
    { Y: { data: y, dims: shape } },
  );
}
