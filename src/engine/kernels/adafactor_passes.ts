/**
 * Adafactor's per-parameter step on float32 arrays (cpu and wasm): the tensor path's float32 element operations, in
 * its order, as loops and as SIMD kernels (on the wasm heap, or on staged copies for the cpu backend's arrays).
 */
import { kernelFor, stagingSlots, SUM_OF_SQUARES, type ElementwiseSpec } from '../wasm/simd.js';

const f32 = Math.fround;

// The fused step (cpu and wasm): the tensor path's float32 element operations, in its order. Sums are accumulated in
// float64 (the SIMD kernels sum short runs in float32 lanes first), which is closer to torch's pairwise float32 sums
// than the tensor path's float32 running sums.

/** The value of one piece of state before the step (`in`) and the array it is written to (`out`; may be `in`). */
export interface InOut {
  in: Float32Array;
  out: Float32Array;
}

/** One factored parameter (shape [..., rows, cols]) at one step: its arrays and the second moment's decay. */
export interface FactoredParameter {
  p: InOut;
  g: Float32Array;
  rows: number;
  cols: number;
  /** Decayed row and column means of grad² + eps1 (one set per leading index). */
  row: InOut;
  col: InOut;
  /** The first moment, when β1 is set. */
  m: InOut | undefined;
  eps1: number;
  /** Second-moment decay: new = old·keep + mean·take. */
  keep: number;
  take: number;
  /** Written by the step: 1/sqrt(row / mean row) of every row. */
  rFactor: Float32Array;
}

export interface AdafactorElementStep {
  lr: number;
  /** max(1, RMS(update) / clipThreshold). */
  clip: number;
  /** Weight-decay factor (-weightDecay · lr), if any. */
  decay: number | undefined;
  /** [β1, 1-β1] when there is a first moment. */
  beta1: [number, number] | undefined;
}

/** Σ x² in float64 (with SIMD: float32 lane sums over runs of 16384 elements, added in float64). */
export function sumOfSquares(x: Float32Array, memory: WebAssembly.Memory | undefined, sums: Float32Array | undefined): number {
  let total = 0;
  const kernel = sums ? kernelFor(SUM_OF_SQUARES, memory) : undefined;
  const n4 = x.length & ~3;
  let from = 0;
  if (kernel && sums && n4 > 0 && x.buffer === memory!.buffer) {
    // Chunks keep each float32 lane sum short.
    const chunk = 1 << 14;
    for (let start = 0; start < n4; start += chunk) {
      const len = Math.min(chunk, n4 - start);
      kernel(x.byteOffset + 4 * start, sums.byteOffset, 4 * len);
      total += sums[0]! + sums[1]! + sums[2]! + sums[3]!;
    }
    from = n4;
  }
  for (let i = from; i < x.length; i++) total += x[i]! * x[i]!;
  return total;
}

// Per-row SIMD kernels of the factored step (rows of a multiple of 4 columns, all arrays on the wasm heap).

/** Row statistics: lane sums of p² and of grad² + eps1; column sums of grad² + eps1 added into a block. */
const ROW_STATS_KERNEL: ElementwiseSpec = {
  outputs: 1,
  inputs: 3,
  scalars: 1,
  sums: 2,
  body(k) {
    const g = k.input(1);
    const sq = k.bind(k.add(k.mul(g, g), k.scalar(0)));
    const p = k.input(0);
    k.sum(0, k.mul(p, p));
    k.sum(1, sq);
    k.output(0, k.add(k.input(2), sq));
  },
};

/** Σ u² of the row's update u = (rFactor · cFactor) · grad. */
const UPDATE_SUM_SQ_KERNEL: ElementwiseSpec = {
  outputs: 0,
  inputs: 2,
  scalars: 1,
  sums: 1,
  body(k) {
    const u = k.bind(k.mul(k.mul(k.scalar(0), k.input(1)), k.input(0)));
    k.sum(0, k.mul(u, u));
  },
};

const applyKernels = new Map<string, ElementwiseSpec>();

/**
 * The row's parameter (and first-moment) update: inputs p, grad, cFactor[, m]; scalars rFactor, clip, lr[, decay]
 * [, β1, 1-β1]; outputs p[, m].
 */
function applyKernel(decay: boolean, beta1: boolean): ElementwiseSpec {
  const key = `${decay}${beta1}`;
  let spec = applyKernels.get(key);
  if (!spec) {
    spec = {
      outputs: beta1 ? 2 : 1,
      inputs: beta1 ? 4 : 3,
      scalars: 3 + (decay ? 1 : 0) + (beta1 ? 2 : 0),
      body(k) {
        const p = k.input(0);
        let u = k.mul(k.div(k.mul(k.mul(k.scalar(0), k.input(2)), k.input(1)), k.scalar(1)), k.scalar(2));
        if (beta1) {
          const b = decay ? 4 : 3;
          u = k.bind(k.add(k.mul(k.input(3), k.scalar(b)), k.mul(u, k.scalar(b + 1))));
          k.output(1, u);
        }
        const next = decay ? k.add(p, k.mul(p, k.scalar(3))) : p;
        k.output(0, k.sub(next, u));
      },
    };
    applyKernels.set(key, spec);
  }
  return spec;
}

/**
 * One row through the apply kernel: byte offsets of the row's parameter (out, in), gradient, column factors and
 * first moment (out, in) on the kernel's memory.
 */
function applyRow(
  apply: (...args: number[]) => void,
  at: { pOut: number; pIn: number; g: number; cf: number; mOut?: number; mIn?: number },
  rowBytes: number,
  rFactor: number,
  step: AdafactorElementStep,
  tail: readonly number[],
): void {
  const ptrs = at.mOut !== undefined ? [at.pOut, at.mOut, at.pIn, at.g, at.cf, at.mIn!] : [at.pOut, at.pIn, at.g, at.cf];
  apply(...ptrs, rowBytes, rFactor, step.clip, step.lr, ...tail);
}

/** The apply kernel's scalars after rFactor, clip and lr: [decay][, β1, 1-β1] (see applyKernel). */
function applyTail(step: AdafactorElementStep): number[] {
  return [...(step.decay !== undefined ? [step.decay] : []), ...(step.beta1 ?? [])];
}

/** Elements of each array staged at a time by `stagedApply`. */
const STAGED_ELEMENTS = 1 << 16;

/**
 * factoredApply through the SIMD apply kernel, for arrays outside any wasm heap: blocks of rows of the parameter,
 * gradient (and first moment) are copied into the staging memory, updated there and copied back. False (nothing
 * done) when the kernel cannot run here.
 */
export function stagedApply(f: FactoredParameter, cFactor: Float32Array, step: AdafactorElementStep): boolean {
  const {
    p: { out: pOut, in: pIn },
    g,
    rows,
    cols,
    rFactor,
    m,
  } = f;
  const blockRows = Math.max(1, Math.floor(STAGED_ELEMENTS / cols));
  const span = blockRows * cols;
  const { memory, slots } = stagingSlots([cols, span, span, m ? span : 0]);
  const apply = kernelFor(applyKernel(step.decay !== undefined, step.beta1 !== undefined), memory);
  if (!apply) return false;
  const [cf, sp, sg, sm] = slots as [Float32Array, Float32Array, Float32Array, Float32Array];
  const rowBytes = 4 * cols;
  const tail = applyTail(step);
  const totalRows = rFactor.length;
  for (let first = 0; first < totalRows; first += blockRows) {
    const n = Math.min(blockRows, totalRows - first);
    const from = first * cols;
    const to = from + n * cols;
    sp.set(pIn.subarray(from, to));
    sg.set(g.subarray(from, to));
    if (m) sm.set(m.in.subarray(from, to));
    for (let r = 0; r < n; r++) {
      const row = first + r;
      // Each batch of `rows` rows has its own column factors.
      if (r === 0 || row % rows === 0) cf.set(cFactor.subarray(Math.floor(row / rows) * cols, Math.floor(row / rows) * cols + cols));
      const off = 4 * r * cols;
      const p = sp.byteOffset + off;
      const mAt = m ? sm.byteOffset + off : undefined;
      applyRow(
        apply,
        { pOut: p, pIn: p, g: sg.byteOffset + off, cf: cf.byteOffset, mOut: mAt, mIn: mAt },
        rowBytes,
        rFactor[row]!,
        step,
        tail,
      );
    }
    pOut.set(sp.subarray(0, n * cols), from);
    if (m) m.out.set(sm.subarray(0, n * cols), from);
  }
  return true;
}

/** The factored step with SIMD kernels row by row; false (nothing done) when they cannot run here. */
export function factoredSimd(
  memory: WebAssembly.Memory,
  f: FactoredParameter,
  scratch: Float32Array[],
  clip: { sqrtNumel: number; threshold: number },
  step: AdafactorElementStep,
): boolean {
  const {
    p: { out: pOut, in: pIn },
    g,
    rows,
    cols,
    eps1,
    keep,
    take,
    row: { in: rowIn, out: rowOut },
    rFactor,
    m,
  } = f;
  const [cFactor, colBlock, sums] = scratch as [Float32Array, Float32Array, Float32Array];
  const stats = kernelFor(ROW_STATS_KERNEL, memory);
  const sumSq = kernelFor(UPDATE_SUM_SQ_KERNEL, memory);
  const apply = kernelFor(applyKernel(step.decay !== undefined, step.beta1 !== undefined), memory);
  const arrays = [pOut, pIn, g, cFactor, colBlock, sums, ...(m ? [m.out, m.in] : [])];
  if (!stats || !sumSq || !apply || arrays.some((a) => a.buffer !== memory.buffer)) return false;
  const rowBytes = 4 * cols;
  const batches = rowOut.length / rows;
  const colSum = new Float64Array(cols);
  // Column sums run in float32 over blocks of rows, then in float64.
  const block = 256;
  for (let b = 0; b < batches; b++) {
    colSum.fill(0);
    for (let r = 0; r < rows; r++) {
      if (r % block === 0) colBlock.fill(0);
      const off = 4 * (b * rows + r) * cols;
      stats(colBlock.byteOffset, pIn.byteOffset + off, g.byteOffset + off, colBlock.byteOffset, sums.byteOffset, rowBytes, eps1);
      const rowSum = sums[4]! + sums[5]! + sums[6]! + sums[7]!;
      const ri = b * rows + r;
      rowOut[ri] = decayedMean(rowIn[ri]!, rowSum, cols, keep, take);
      if (r % block === block - 1 || r === rows - 1) for (let c = 0; c < cols; c++) colSum[c]! += colBlock[c]!;
    }
    factorsOfBatch(f, b, colSum, cFactor);
  }
  let total = 0;
  for (let b = 0; b < batches; b++) {
    const cf = cFactor.byteOffset + 4 * b * cols;
    for (let r = 0; r < rows; r++) {
      sumSq(g.byteOffset + 4 * (b * rows + r) * cols, cf, sums.byteOffset, rowBytes, rFactor[b * rows + r]!);
      total += sums[0]! + sums[1]! + sums[2]! + sums[3]!;
    }
  }
  step.clip = clipFactor(total, clip.sqrtNumel, clip.threshold);
  const tail = applyTail(step);
  for (let b = 0; b < batches; b++) {
    const cf = cFactor.byteOffset + 4 * b * cols;
    for (let r = 0; r < rows; r++) {
      const off = 4 * (b * rows + r) * cols;
      const at = { pOut: pOut.byteOffset + off, pIn: pIn.byteOffset + off, g: g.byteOffset + off, cf };
      const mAt = m ? { mOut: m.out.byteOffset + off, mIn: m.in.byteOffset + off } : {};
      applyRow(apply, { ...at, ...mAt }, rowBytes, rFactor[b * rows + r]!, step, tail);
    }
  }
  return true;
}

/** old·β2t + (sum / n)·(1 - β2t), rounded as torch's float32 ops round it. */
function decayedMean(old: number, sum: number, n: number, keep: number, take: number): number {
  return f32(f32(old * keep) + f32(f32(f32(sum) / n) * take));
}

/**
 * For batch item b, once its row averages (`rowOut`) are set: the row factors (1/sqrt(row / mean row)), the column
 * averages from the float64 column sums `colSum`, and the column factors (1/sqrt(column)).
 */
function factorsOfBatch(f: FactoredParameter, b: number, colSum: Float64Array, cFactor: Float32Array): void {
  const {
    rows,
    cols,
    keep,
    take,
    row: { out: rowOut },
    col: { in: colIn, out: colOut },
    rFactor,
  } = f;
  let rowTotal = 0;
  for (let r = 0; r < rows; r++) rowTotal += rowOut[b * rows + r]!;
  const rowMean = f32(f32(rowTotal) / rows);
  for (let r = 0; r < rows; r++) {
    const ri = b * rows + r;
    rFactor[ri] = f32(1 / f32(Math.sqrt(f32(rowOut[ri]! / rowMean))));
  }
  for (let c = 0; c < cols; c++) {
    const ci = b * cols + c;
    colOut[ci] = decayedMean(colIn[ci]!, colSum[c]!, rows, keep, take);
    cFactor[ci] = f32(1 / f32(Math.sqrt(colOut[ci]!)));
  }
}

export function clipFactor(sumSq: number, sqrtNumel: number, clipThreshold: number): number {
  const rmsUpdate = f32(f32(Math.sqrt(f32(sumSq))) / sqrtNumel);
  return Math.max(f32(rmsUpdate / f32(clipThreshold)), 1);
}

/** Row and column means of grad² + eps1 into the decayed averages, then the row and column factors of the update. */
export function factoredSecondMoments(f: FactoredParameter, cFactor: Float32Array): void {
  const {
    g,
    rows,
    cols,
    eps1,
    keep,
    take,
    row: { in: rowIn, out: rowOut },
  } = f;
  const batches = rowOut.length / rows;
  const colSum = new Float64Array(cols);
  for (let b = 0; b < batches; b++) {
    colSum.fill(0);
    for (let r = 0; r < rows; r++) {
      const base = (b * rows + r) * cols;
      let rowSum = 0;
      for (let c = 0; c < cols; c++) {
        const gi = g[base + c]!;
        const sq = f32(f32(gi * gi) + eps1);
        rowSum += sq;
        colSum[c]! += sq;
      }
      const ri = b * rows + r;
      rowOut[ri] = decayedMean(rowIn[ri]!, rowSum, cols, keep, take);
    }
    factorsOfBatch(f, b, colSum, cFactor);
  }
}

/** factoredSecondMoments from row and column sums computed elsewhere (the cpu engine's ONNX Runtime graphs). */
export function factoredSecondMomentsFromSums(
  f: FactoredParameter,
  rowSums: Float64Array,
  colSums: Float64Array,
  cFactor: Float32Array,
): void {
  const {
    rows,
    cols,
    keep,
    take,
    row: { in: rowIn, out: rowOut },
  } = f;
  const batches = rowOut.length / rows;
  for (let b = 0; b < batches; b++) {
    for (let r = 0; r < rows; r++) {
      const ri = b * rows + r;
      rowOut[ri] = decayedMean(rowIn[ri]!, rowSums[ri]!, cols, keep, take);
    }
    factorsOfBatch(f, b, colSums.subarray(b * cols, (b + 1) * cols), cFactor);
  }
}

export function factoredUpdateSumSq(f: FactoredParameter, cFactor: Float32Array): number {
  const { g, rows, cols, rFactor } = f;
  let sum = 0;
  const batches = rFactor.length / rows;
  for (let b = 0; b < batches; b++) {
    for (let r = 0; r < rows; r++) {
      const base = (b * rows + r) * cols;
      const rf = rFactor[b * rows + r]!;
      const cb = b * cols;
      for (let c = 0; c < cols; c++) {
        const u = f32(f32(rf * cFactor[cb + c]!) * g[base + c]!);
        sum += u * u;
      }
    }
  }
  return sum;
}

export function factoredApply(f: FactoredParameter, cFactor: Float32Array, step: AdafactorElementStep): void {
  const {
    p: { out: pOut, in: pIn },
    g,
    rows,
    cols,
    rFactor,
    m,
  } = f;
  const batches = rFactor.length / rows;
  for (let b = 0; b < batches; b++) {
    for (let r = 0; r < rows; r++) {
      const base = (b * rows + r) * cols;
      const rf = rFactor[b * rows + r]!;
      const cb = b * cols;
      for (let c = 0; c < cols; c++) {
        const i = base + c;
        applyOne(pOut, pIn, i, f32(f32(rf * cFactor[cb + c]!) * g[i]!), step, m);
      }
    }
  }
}

/** The full (unfactored) second moment; returns the sum of squares of the update before clipping. */
export function unfactoredSecondMoment(
  g: Float32Array,
  eps1: number,
  keep: number,
  take: number,
  vIn: Float32Array,
  vOut: Float32Array,
): number {
  let sum = 0;
  for (let i = 0; i < g.length; i++) {
    const gi = g[i]!;
    const v = f32(f32(vIn[i]! * keep) + f32(f32(f32(gi * gi) + eps1) * take));
    vOut[i] = v;
    const u = f32(f32(1 / f32(Math.sqrt(v))) * gi);
    sum += u * u;
  }
  return sum;
}

export function unfactoredApply(
  pOut: Float32Array,
  pIn: Float32Array,
  g: Float32Array,
  v: Float32Array,
  step: AdafactorElementStep,
  m: InOut | undefined,
): void {
  for (let i = 0; i < g.length; i++) applyOne(pOut, pIn, i, f32(f32(1 / f32(Math.sqrt(v[i]!))) * g[i]!), step, m);
}

function applyOne(
  pOut: Float32Array,
  pIn: Float32Array,
  i: number,
  update: number,
  step: AdafactorElementStep,
  m: InOut | undefined,
): void {
  let u = f32(f32(update / step.clip) * step.lr);
  if (m && step.beta1) {
    u = f32(f32(m.in[i]! * step.beta1[0]) + f32(u * step.beta1[1]));
    m.out[i] = u;
  }
  const p = pIn[i]!;
  const next = step.decay === undefined ? p : f32(p + f32(p * step.decay));
  pOut[i] = f32(next - u);
}
