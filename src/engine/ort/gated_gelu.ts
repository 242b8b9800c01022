/**
 * T5 v1.1's gated feed-forward activation, gelu_new(a) · b, and its gradient as ONNX Runtime graphs: one call each
 * (two threads, vectorised tanh) where tfjs ops take some fifteen element-wise kernels and their temporaries. The
 * forward pass is written as model/layers.ts writes gelu_new; values agree to a few float32 units in the last place.
 */
import { onnxModel, type OnnxNode } from '../onnx/builder.js';
import type { OrtMatMul } from './runtime.js';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** y = gelu_new(a) · b */
export function ortGatedGelu(ort: OrtMatMul, a: Float32Array, b: Float32Array, y: Float32Array): void {
  ort.runGraph(
    'gated_gelu',
    () => onnxModel([...geluNodes(), { op: 'Mul', inputs: ['GELU', 'B'], outputs: ['Y'] }], ['A', 'B'], ['Y']),
    { A: { data: a, dims: [a.length] }, B: { data: b, dims: [b.length] } },
    { Y: { data: y, dims: [y.length] } },
  );
}

/** da = dy · b · gelu_new'(a), db = dy · gelu_new(a) */
export function ortGatedGeluGrad(
  ort: OrtMatMul,
  dy: Float32Array,
  a: Float32Array,
  b: Float32Array,
  da: Float32Array,
  db: Float32Array,
): void {
  const n = a.length;
  ort.runGraph(
    'gated_gelu_grad',
    () =>
      onnxModel(
        [
          ...geluNodes(),
          { op: 'Mul', inputs: ['DY', 'GELU'], outputs: ['DB'] },
          // gelu_new'(a) = ½(1 + t) + ½a · (1 - t²) · √(2/π) · (1 + 3 · 0.044715 · a²)
          constant('THREE_C', 3 * 0.044715),
          { op: 'Mul', inputs: ['ONE_T', 'HALF'], outputs: ['HALF_ONE_T'] },
          { op: 'Mul', inputs: ['T', 'T'], outputs: ['T2'] },
          { op: 'Sub', inputs: ['ONE', 'T2'], outputs: ['SECH2'] },
          { op: 'Mul', inputs: ['A2', 'THREE_C'], outputs: ['P'] },
          { op: 'Add', inputs: ['P', 'ONE'], outputs: ['Q'] },
          { op: 'Mul', inputs: ['Q', 'K'], outputs: ['DINNER'] },
          { op: 'Mul', inputs: ['SECH2', 'DINNER'], outputs: ['U'] },
          { op: 'Mul', inputs: ['HALF_A', 'U'], outputs: ['V'] },
          { op: 'Add', inputs: ['HALF_ONE_T', 'V'], outputs: ['DGELU'] },
          { op: 'Mul', inputs: ['DY', 'B'], outputs: ['DG'] },
          { op: 'Mul', inputs: ['DG', 'DGELU'], outputs: ['DA'] },
        ],
        ['DY', 'A', 'B'],
        ['DA', 'DB'],
      ),
    { DY: { data: dy, dims: [n] }, A: { data: a, dims: [n] }, B: { data: b, dims: [n] } },
    { DA: { data: da, dims: [n] }, DB: { data: db, dims: [n] } },
  );
}

function constant(name: string, value: number): OnnxNode {
  return { op: 'Constant', inputs: [], outputs: [name], attributes: { value_float: { float: value } } };
}

/** GELU = ½a · (1 + tanh(√(2/π) · (a + 0.044715 · a · a²))), keeping A2, T, ONE_T and HALF_A for the gradient. */
function geluNodes(): OnnxNode[] {
  return [
    constant('K', SQRT_2_OVER_PI),
    constant('C', 0.044715),
    constant('HALF', 0.5),
    constant('ONE', 1),
    { op: 'Mul', inputs: ['A', 'A'], outputs: ['A2'] },
    { op: 'Mul', inputs: ['A', 'A2'], outputs: ['A3'] },
    { op: 'Mul', inputs: ['A3', 'C'], outputs: ['CA3'] },
    { op: 'Add', inputs: ['A', 'CA3'], outputs: ['S'] },
    { op: 'Mul', inputs: ['S', 'K'], outputs: ['INNER'] },
    { op: 'Tanh', inputs: ['INNER'], outputs: ['T'] },
    { op: 'Add', inputs: ['T', 'ONE'], outputs: ['ONE_T'] },
    { op: 'Mul', inputs: ['A', 'HALF'], outputs: ['HALF_A'] },
    { op: 'Mul', inputs: ['HALF_A', 'ONE_T'], outputs: ['GELU'] },
  ];
}
