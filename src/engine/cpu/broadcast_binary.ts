/**
 * Element-wise binary float32 arithmetic with numpy broadcasting, in tight loops over the longest run of axes
 * that both operands walk the same way. The stock cpu kernels compute every broadcast element's source index
 * from scratch (some 50x slower); these run at memory speed.
 */
import { tf } from '../../tf.js';

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div';

/**
 * Strides of each operand in output coordinates (0 along broadcast axes), with adjacent axes merged where both
 * operands step through them contiguously or both stand still, so the inner loop is as long as it can be.
 */
export function broadcastPlan(
  aShape: readonly number[],
  bShape: readonly number[],
): { outShape: number[]; dims: number[]; aStrides: number[]; bStrides: number[] } {
  const outShape = tf.broadcast_util.assertAndGetBroadcastShape(aShape as number[], bShape as number[]);
  const rank = outShape.length;
  const pad = (s: readonly number[]) => [...new Array<number>(rank - s.length).fill(1), ...s];
  const a = pad(aShape);
  const b = pad(bShape);
  const strides = (s: number[]) => {
    const out = new Array<number>(rank);
    let st = 1;
    for (let i = rank - 1; i >= 0; i--) {
      out[i] = s[i] === 1 && outShape[i] !== 1 ? 0 : st;
      st *= s[i]!;
    }
    return out;
  };
  const as = strides(a);
  const bs = strides(b);
  // Merge axis i into axis i+1 (inner) when each operand's stride continues the inner axis's run.
  const dims: number[] = [];
  const aStrides: number[] = [];
  const bStrides: number[] = [];
  for (let i = 0; i < rank; i++) {
    const d = outShape[i]!;
    if (d === 1) continue;
    dims.push(d);
    aStrides.push(as[i]!);
    bStrides.push(bs[i]!);
  }
  // Merge from the innermost axis outwards: axis j-1 joins axis j when its stride is stride(j) * dim(j) for both.
  for (let j = dims.length - 1; j > 0; j--) {
    const merges = (st: number[]) => st[j - 1] === st[j]! * dims[j]!;
    if (merges(aStrides) && merges(bStrides)) {
      dims[j - 1] = dims[j - 1]! * dims[j]!;
      aStrides[j - 1] = aStrides[j]!;
      bStrides[j - 1] = bStrides[j]!;
      dims.splice(j, 1);
      aStrides.splice(j, 1);
      bStrides.splice(j, 1);
    }
  }
  if (dims.length === 0) {
    dims.push(1);
    aStrides.push(0);
    bStrides.push(0);
  }
  return { outShape, dims, aStrides, bStrides };
}

/** out = a op b over one run: a and b advance by sa and sb (each 0 or 1). */
function run(
  op: BinaryOp,
  out: Float32Array,
  o: number,
  n: number,
  a: Float32Array,
  ia: number,
  sa: number,
  b: Float32Array,
  ib: number,
  sb: number,
): void {
  const end = o + n;
  if (sa === 1 && sb === 1) {
    switch (op) {
      case 'add':
        for (; o < end; o++, ia++, ib++) out[o] = a[ia]! + b[ib]!;
        return;
      case 'sub':
        for (; o < end; o++, ia++, ib++) out[o] = a[ia]! - b[ib]!;
        return;
      case 'mul':
        for (; o < end; o++, ia++, ib++) out[o] = a[ia]! * b[ib]!;
        return;
      case 'div':
        for (; o < end; o++, ia++, ib++) out[o] = a[ia]! / b[ib]!;
        return;
    }
  }
  if (sb === 0) {
    const y = b[ib]!;
    switch (op) {
      case 'add':
        for (; o < end; o++, ia += sa) out[o] = a[ia]! + y;
        return;
      case 'sub':
        for (; o < end; o++, ia += sa) out[o] = a[ia]! - y;
        return;
      case 'mul':
        for (; o < end; o++, ia += sa) out[o] = a[ia]! * y;
        return;
      case 'div':
        for (; o < end; o++, ia += sa) out[o] = a[ia]! / y;
        return;
    }
  }
  const x = a[ia]!; // sa === 0, sb === 1
  switch (op) {
    case 'add':
      for (; o < end; o++, ib++) out[o] = x + b[ib]!;
      return;
    case 'sub':
      for (; o < end; o++, ib++) out[o] = x - b[ib]!;
      return;
    case 'mul':
      for (; o < end; o++, ib++) out[o] = x * b[ib]!;
      return;
    case 'div':
      for (; o < end; o++, ib++) out[o] = x / b[ib]!;
      return;
  }
}

/** out = a op b with broadcasting; `out` holds the broadcast shape's element count. */
export function broadcastBinary(
  op: BinaryOp,
  a: Float32Array,
  aShape: readonly number[],
  b: Float32Array,
  bShape: readonly number[],
  out: Float32Array,
): void {
  if (out.length === 0) return;
  const { dims, aStrides, bStrides } = broadcastPlan(aShape, bShape);
  const r = dims.length;
  const inner = dims[r - 1]!;
  const sa = aStrides[r - 1]!;
  const sb = bStrides[r - 1]!;
  const outer = out.length / inner;
  const idx = new Array<number>(r).fill(0);
  let ia = 0;
  let ib = 0;
  for (let k = 0, o = 0; k < outer; k++, o += inner) {
    run(op, out, o, inner, a, ia, sa, b, ib, sb);
    for (let ax = r - 2; ax >= 0; ax--) {
      idx[ax]!++;
      ia += aStrides[ax]!;
      ib += bStrides[ax]!;
      if (idx[ax]! < dims[ax]!) break;
      ia -= aStrides[ax]! * dims[ax]!;
      ib -= bStrides[ax]! * dims[ax]!;
      idx[ax] = 0;
    }
  }
}
