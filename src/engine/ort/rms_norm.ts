/**
 * T5's scale-only layer norm and its gradient as ONNX Runtime graphs over [rows, d], for the cpu engine's large
 * tensors: two threads and vectorised reductions, where the fused kernels' loops run on one. The arithmetic is the
 * fused kernels' (engine/kernels/fused.ts), with sums in float32 instead of float64.
 */
import { onnxModel } from '../onnx/builder.js';
import type { OrtMatMul } from './runtime.js';

/** y = w · (x · s), s = 1 / sqrt(Σx² / d + eps) per row. */
export function ortRmsNorm(ort: OrtMatMul, x: Float32Array, w: Float32Array, eps: number, y: Float32Array): void {
  const d = w.length;
  const rows = x.length / d;
  ort.runGraph(
    'rms_norm',
    () =>
      onnxModel(
        [...rowScale('X', 'S'), { op: 'Mul', inputs: ['X', 'S'], outputs: ['XS'] }, { op: 'Mul', inputs: ['W', 'XS'], outputs: ['Y'] }],
        ['X', 'W', 'EPS', 'D'],
        ['Y'],
      ),
    { X: { data: x, dims: [rows, d] }, W: { data: w, dims: [d] }, ...scalars(eps, d) },
    { Y: { data: y, dims: [rows, d] } },
  );
}

/** dx = w·dy·s - x·s³·Σ(dy·w·x)/d per row; dw = Σ over rows of dy·x·s. */
export function ortRmsNormGrad(
  ort: OrtMatMul,
  dy: Float32Array,
  x: Float32Array,
  w: Float32Array,
  eps: number,
  dx: Float32Array,
  dw: Float32Array,
): void {
  const d = w.length;
  const rows = x.length / d;
  ort.runGraph(
    'rms_norm_grad',
    () =>
      onnxModel(
        [
          ...rowScale('X', 'S'),
          { op: 'Mul', inputs: ['W', 'DY'], outputs: ['G'] },
          { op: 'Mul', inputs: ['G', 'X'], outputs: ['GX'] },
          { op: 'ReduceSum', inputs: ['GX', 'LAST'], outputs: ['DOT'], attributes: { keepdims: 1 } },
          { op: 'Mul', inputs: ['S', 'S'], outputs: ['S2'] },
          { op: 'Mul', inputs: ['S2', 'S'], outputs: ['S3'] },
          { op: 'Mul', inputs: ['S3', 'DOT'], outputs: ['S3DOT'] },
          { op: 'Div', inputs: ['S3DOT', 'D'], outputs: ['C'] },
          { op: 'Mul', inputs: ['G', 'S'], outputs: ['GS'] },
          { op: 'Mul', inputs: ['X', 'C'], outputs: ['XC'] },
          { op: 'Sub', inputs: ['GS', 'XC'], outputs: ['DX'] },
          { op: 'Mul', inputs: ['DY', 'X'], outputs: ['DYX'] },
          { op: 'Mul', inputs: ['DYX', 'S'], outputs: ['DYXS'] },
          { op: 'ReduceSum', inputs: ['DYXS', 'FIRST'], outputs: ['DW'], attributes: { keepdims: 0 } },
        ],
        ['DY', 'X', 'W', 'EPS', 'D'],
        ['DX', 'DW'],
        undefined,
        { LAST: [-1], FIRST: [0] },
      ),
    { DY: { data: dy, dims: [rows, d] }, X: { data: x, dims: [rows, d] }, W: { data: w, dims: [d] }, ...scalars(eps, d) },
    { DX: { data: dx, dims: [rows, d] }, DW: { data: dw, dims: [d] } },
  );
}

/** Nodes computing the per-row scale `out` [rows, 1] = 1 / sqrt(Σ x² / D + EPS). */
function rowScale(x: string, out: string) {
  return [
    { op: 'ReduceSumSquare', inputs: [x], outputs: ['SS'], attributes: { axes: [-1], keepdims: 1 } },
    { op: 'Div', inputs: ['SS', 'D'], outputs: ['MS'] },
    { op: 'Add', inputs: ['MS', 'EPS'], outputs: ['V'] },
    { op: 'Sqrt', inputs: ['V'], outputs: ['R'] },
    { op: 'Reciprocal', inputs: ['R'], outputs: [out] },
  ];
}

function scalars(eps: number, d: number) {
  return { EPS: { data: new Float32Array([eps]), dims: [1] }, D: { data: new Float32Array([d]), dims: [1] } };
}
