/**
 * Direct access to tensor memory of the two embedded tfjs backends, for kernels written in TypeScript: `cpu`
 * keeps typed arrays in `backend.data`, `wasm` keeps tensors in the WebAssembly heap.
 */
import type { DataType, TensorInfo } from '@tensorflow/tfjs';

import { tf } from '../tf.js';

export interface CpuBackendLike {
  data: { get(dataId: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: DataType, values?: unknown): TensorInfo;
  disposeIntermediateTensorInfo(info: TensorInfo): void;
  incRef(dataId: object): void;
}

export interface WasmBackendLike {
  wasm: { HEAPU8: Uint8Array };
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object, force?: boolean): boolean;
  incRef(dataId: object): void;
}

type Numeric = Float32Array | Int32Array | Uint8Array;

/**
 * Uniform float32/int32/bool access for a kernel: `read` gives the tensor's memory (a view, no copy), `alloc`
 * makes an output and gives its memory. On wasm, any `alloc` may grow the heap and detach earlier views, so
 * allocate outputs first and read inputs after.
 */
export interface TensorStorage {
  readonly backendName: 'cpu' | 'wasm';
  /** True when reads and allocations live on a SharedArrayBuffer (threaded wasm). */
  readonly shared: boolean;
  read(t: TensorInfo): Numeric;
  alloc(shape: number[], dtype: DataType): { info: TensorInfo; data: Numeric };
  dispose(t: TensorInfo): void;
}

export function storageFor(backend: unknown): TensorStorage {
  const name = backendNameOf(backend);
  if (name === 'wasm') {
    const b = backend as WasmBackendLike;
    return {
      backendName: 'wasm',
      get shared() {
        return b.wasm.HEAPU8.buffer instanceof SharedArrayBuffer;
      },
      read: (t) => b.typedArrayFromHeap(t),
      alloc(shape, dtype) {
        const info = b.makeOutput(shape, dtype);
        return { info, data: b.typedArrayFromHeap(info) };
      },
      dispose: (t) => void b.disposeData(t.dataId),
    };
  }
  const b = backend as CpuBackendLike;
  return {
    backendName: 'cpu',
    shared: false,
    read(t) {
      const values = b.data.get(t.dataId).values;
      if (values instanceof Float32Array || values instanceof Int32Array || values instanceof Uint8Array) return values;
      throw new Error(`tensor of dtype ${t.dtype} has no numeric storage on the cpu backend`);
    },
    alloc(shape, dtype) {
      const data = tf.util.getTypedArrayFromDType(dtype as 'float32', tf.util.sizeFromShape(shape)) as Numeric;
      return { info: b.makeTensorInfo(shape, dtype, data), data };
    },
    dispose: (t) => b.disposeIntermediateTensorInfo(t),
  };
}

/** 'wasm' or 'cpu' for those backends' instances, else undefined. */
export function backendNameOf(backend: unknown): 'cpu' | 'wasm' | undefined {
  const b = backend as { wasm?: unknown; data?: unknown; makeTensorInfo?: unknown };
  if (b && typeof b === 'object') {
    if (b.wasm && typeof (b as Partial<WasmBackendLike>).typedArrayFromHeap === 'function') return 'wasm';
    if (b.data && typeof b.makeTensorInfo === 'function') return 'cpu';
  }
  return undefined;
}
