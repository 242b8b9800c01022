/**
 * Shared by the cpu engine's kernels: float32 outputs on the cpu backend, with the stock kernel taking every case
 * ours does not handle (other dtypes).
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';

import { tf } from '../../../tf.js';
import { stockKernel, storageFor } from '../../tfjs_internals.js';
import { broadcastBinary, type BinaryOp } from '../broadcast_binary.js';
import { ortBinary, type OrtBinaryOp } from '../../ort/elementwise.js';
import { cpuEngineOrt, ORT_MIN_ELEMENTS } from '../../kernels/ort_route.js';

const ORT_OPS: Record<BinaryOp, OrtBinaryOp> = { add: 'Add', sub: 'Sub', mul: 'Mul', div: 'Div' };

function stock(kernelName: string): KernelFunc {
  const config = stockKernel(kernelName, 'cpu');
  if (!config) throw new Error(`the cpu backend has no ${kernelName} kernel`);
  return config.kernelFunc;
}

/** A binary kernel: float32 ⊕ float32 with broadcasting in our loops, anything else in the stock kernel. */
export function binaryKernel(kernelName: string, op: BinaryOp): KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') return stock(kernelName)(args);
    const storage = storageFor(args.backend);
    const outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const out = storage.alloc(outShape, 'float32');
    const [av, bv, ov] = [storage.read(a), storage.read(b), out.data] as Float32Array[];
    const ort = cpuEngineOrt.ort;
    if (ort && ov!.length >= ORT_MIN_ELEMENTS.value) ortBinary(ort, ORT_OPS[op], av!, a.shape, bv!, b.shape, ov!, outShape);
    else broadcastBinary(op, av!, a.shape, bv!, b.shape, ov!);
    return out.info;
  };
}

/** A unary kernel: `fill(x, y, attrs)` writes y from x for float32, the stock kernel does the rest. */
export function unaryKernel(
  kernelName: string,
  fill: (x: Float32Array, y: Float32Array, attrs: Record<string, unknown>) => void,
): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype !== 'float32') return stock(kernelName)(args);
    const storage = storageFor(args.backend);
    const out = storage.alloc([...x.shape], 'float32');
    fill(storage.read(x) as Float32Array, out.data as Float32Array, (args.attrs ?? {}) as Record<string, unknown>);
    return out.info;
  };
}
