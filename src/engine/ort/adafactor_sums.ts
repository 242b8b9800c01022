/**
 * The sums of Adafactor's factored step as ONNX Runtime graphs, for the cpu engine's large parameters: the row and
 * column sums of grad² + eps1 with the parameter's Σp², then Σu² of the update u = (rFactor·cFactor)·grad. Two
 * threads and vectorised reductions where the optimizer's loops run on one (engine/kernels/adafactor_passes.ts).
 * The element values are the loops' (the same float32 operations); the graphs sum in float32 along a row (or down
 * the columns of a chunk of rows), and those sums are added in float64 here: a float32 sum over a whole large
 * parameter would be off by ~1e-5.
 */
import { onnxModel } from '../onnx/builder.js';
import type { OrtMatMul } from './runtime.js';

/** Rows per run: about 2^20 elements, so a run's float32 sums stay short and its intermediates small. */
function chunkRows(rows: number, cols: number): number {
  return Math.min(rows, Math.max(1, Math.floor((1 << 20) / cols)));
}

/** One run's rows: batch item `b`, `n` rows from row `row` (counted over all batch items), elements [from, to). */
interface RowChunk {
  b: number;
  row: number;
  n: number;
  from: number;
  to: number;
}

/** The runs over an array of shape [..., rows, cols]: whole rows, never across two batch items. */
function rowChunks(size: number, rows: number, cols: number): RowChunk[] {
  const step = chunkRows(rows, cols);
  const chunks: RowChunk[] = [];
  for (let b = 0; b < size / (rows * cols); b++) {
    for (let r0 = 0; r0 < rows; r0 += step) {
      const n = Math.min(step, rows - r0);
      const row = b * rows + r0;
      chunks.push({ b, row, n, from: row * cols, to: (row + n) * cols });
    }
  }
  return chunks;
}

export interface FactoredSums {
  /** Σ p² over the whole parameter. */
  paramSumSq: number;
  /** Σ over each row of grad² + eps1 ([batch · rows]). */
  rowSums: Float64Array;
  /** Σ over each column of grad² + eps1, per batch item ([batch · cols]). */
  colSums: Float64Array;
}

/** Sums over p and g, shape [..., rows, cols] (batch = the product of the leading axes). */
export function ortFactoredSums(ort: OrtMatMul, p: Float32Array, g: Float32Array, rows: number, cols: number, eps1: number): FactoredSums {
  const batches = g.length / (rows * cols);
  const rowSums = new Float64Array(batches * rows);
  const colSums = new Float64Array(batches * cols);
  const rowOut = new Float32Array(chunkRows(rows, cols));
  const colOut = new Float32Array(cols);
  const pOut = new Float32Array(rowOut.length);
  const eps = new Float32Array([eps1]);
  let paramSumSq = 0;
  for (const { b, row, n, from, to } of rowChunks(g.length, rows, cols)) {
    const dims = [n, cols];
    ort.runGraph(
      'adafactor_sums',
      () =>
        onnxModel(
          [
            { op: 'Mul', inputs: ['G', 'G'], outputs: ['G2'] },
            { op: 'Add', inputs: ['G2', 'EPS'], outputs: ['SQ'] },
            { op: 'ReduceSum', inputs: ['SQ', 'LAST'], outputs: ['ROW'], attributes: { keepdims: 0 } },
            { op: 'ReduceSum', inputs: ['SQ', 'FIRST'], outputs: ['COL'], attributes: { keepdims: 0 } },
            { op: 'ReduceSumSquare', inputs: ['P'], outputs: ['PSS'], attributes: { axes: [-1], keepdims: 0 } },
          ],
          ['P', 'G', 'EPS'],
          ['ROW', 'COL', 'PSS'],
          undefined,
          { LAST: [-1], FIRST: [0] },
        ),
      { P: { data: p.subarray(from, to), dims }, G: { data: g.subarray(from, to), dims }, EPS: { data: eps, dims: [1] } },
      {
        ROW: { data: rowOut.subarray(0, n), dims: [n] },
        COL: { data: colOut, dims: [cols] },
        PSS: { data: pOut.subarray(0, n), dims: [n] },
      },
    );
    for (let r = 0; r < n; r++) {
      rowSums[row + r] = rowOut[r]!;
      paramSumSq += pOut[r]!;
    }
    for (let c = 0; c < cols; c++) colSums[b * cols + c]! += colOut[c]!;
  }
  return { paramSumSq, rowSums, colSums };
}

/** Σ u² for u = (rFactor[row] · cFactor[col]) · g, rounded as the loops round each element. */
export function ortUpdateSumSq(
  ort: OrtMatMul,
  g: Float32Array,
  rows: number,
  cols: number,
  rFactor: Float32Array,
  cFactor: Float32Array,
): number {
  const out = new Float32Array(chunkRows(rows, cols));
  let total = 0;
  for (const { b, row, n, from, to } of rowChunks(g.length, rows, cols)) {
    ort.runGraph(
      'adafactor_update_sum_sq',
      () =>
        onnxModel(
          [
            { op: 'Mul', inputs: ['RF', 'CF'], outputs: ['F'] },
            { op: 'Mul', inputs: ['F', 'G'], outputs: ['U'] },
            { op: 'ReduceSumSquare', inputs: ['U'], outputs: ['S'], attributes: { axes: [-1], keepdims: 0 } },
          ],
          ['G', 'RF', 'CF'],
          ['S'],
        ),
      {
        G: { data: g.subarray(from, to), dims: [n, cols] },
        RF: { data: rFactor.subarray(row, row + n), dims: [n, 1] },
        CF: { data: cFactor.subarray(b * cols, (b + 1) * cols), dims: [1, cols] },
      },
      { S: { data: out.subarray(0, n), dims: [n] } },
    );
    for (let r = 0; r < n; r++) total += out[r]!;
  }
  return total;
}
