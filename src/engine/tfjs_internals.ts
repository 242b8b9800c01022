/**
 * The one place for the tfjs internals t5cls relies on (tfjs 4.22), beyond its public API:
 *
 * - tensor memory of the two embedded backends, for kernels written in TypeScript: `cpu` keeps typed arrays in
 *   `backend.data`, `wasm` keeps tensors in the WebAssembly heap (`TensorStorage`, `storageFor`, `backendNameOf`);
 * - the wasm backend's heap and tensor ids (`wasmMemoryOf`, `WasmIds`, `renewWasmId`) and the engine's tensor
 *   bookkeeping (`EngineLike`, `RefCounting`);
 * - the kernel registry: replacing a backend's kernel with ours while keeping the stock one reachable (for
 *   fallbacks) and restorable (`stockKernel`, `replaceKernel`, `restoreKernel`, `replacementOf`, `callKernel`).
 */
import type { DataType, KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';

import { tf } from '../tf.js';

// Tensor memory of the embedded backends.

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
 * makes an output and gives its memory, not zeroed (write every element). On wasm, any `alloc` may grow the heap
 * and detach earlier views, so allocate outputs first and read inputs after.
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
      const n = tf.util.sizeFromShape(shape);
      const reused = dtype === 'float32' ? cpuArrayPools.get(backend as object)?.take(n) : undefined;
      const data = reused ?? (tf.util.getTypedArrayFromDType(dtype as 'float32', n) as Numeric);
      return { info: b.makeTensorInfo(shape, dtype, data), data };
    },
    dispose: (t) => b.disposeIntermediateTensorInfo(t),
  };
}

/**
 * Arrays of freed tensors that a cpu backend instance may hand out again (engine/cpu/array_pool.ts): a reused array
 * has stale contents, so an output taken from `alloc` must be written whole.
 */
export const cpuArrayPools = new WeakMap<object, { take(n: number): Float32Array | undefined }>();

/** 'wasm' or 'cpu' for those backends' instances, else undefined. */
export function backendNameOf(backend: unknown): 'cpu' | 'wasm' | undefined {
  const b = backend as { wasm?: unknown; data?: unknown; makeTensorInfo?: unknown };
  if (b && typeof b === 'object') {
    if (b.wasm && typeof (b as Partial<WasmBackendLike>).typedArrayFromHeap === 'function') return 'wasm';
    if (b.data && typeof b.makeTensorInfo === 'function') return 'cpu';
  }
  return undefined;
}

// The engine's bookkeeping and the wasm backend's heap.

export interface EngineLike {
  backend: unknown;
  state: { tensorInfo: WeakMap<object, { backend: unknown }> };
  makeTensorFromTensorInfo(info: tf.TensorInfo, backend?: unknown): tf.Tensor;
}

export interface WasmIds {
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number; shape: number[] } | undefined };
  dataIdNextNumber: number;
  wasm: { tfjs: { disposeData(id: number): void; registerTensor(id: number, size: number, memoryOffset: number): void } };
}

/**
 * The wasm backend caches XNNPACK operators with prepacked weights by tensor id (its matmul packs the right-hand
 * operand once per id): after writing a tensor's memory in place, it gets a new id, which drops those caches.
 */
export function renewWasmId(backend: WasmIds, dataId: object): void {
  const data = backend.dataIdMap.get(dataId);
  if (!data) return;
  backend.wasm.tfjs.disposeData(data.id);
  data.id = backend.dataIdNextNumber++;
  backend.wasm.tfjs.registerTensor(data.id, tf.util.sizeFromShape(data.shape), data.memoryOffset);
}

export interface RefCounting {
  refCount(dataId: object): number;
}

/** The WebAssembly memory behind a wasm backend's heap (single-threaded or threaded build). */
export function wasmMemoryOf(backend: unknown): WebAssembly.Memory | undefined {
  const mod = (backend as { wasm?: { asm?: { memory?: unknown }; wasmMemory?: unknown } }).wasm;
  const memory = mod?.asm?.memory ?? mod?.wasmMemory;
  return memory instanceof WebAssembly.Memory ? memory : undefined;
}

// The kernel registry: replacing a backend's kernel with ours while keeping the stock one reachable (for
// fallbacks) and restorable.

const stockKernels = new Map<string, KernelConfig | undefined>();
const replaced = new Map<string, string>();

function key(kernelName: string, backendName: string): string {
  return `${backendName}/${kernelName}`;
}

/** The kernel the backend package registered (before any of ours), or undefined if it has none. */
export function stockKernel(kernelName: string, backendName: string): KernelConfig | undefined {
  const k = key(kernelName, backendName);
  if (!stockKernels.has(k)) stockKernels.set(k, tf.getKernel(kernelName, backendName));
  return stockKernels.get(k);
}

/**
 * Registers `kernelFunc` for (kernelName, backendName) in place of whatever is there; `tag` names the
 * replacement (see `replacementOf`). The stock kernel's setup/dispose hooks are kept, so that the stock
 * function stays callable from ours even when the backend initializes after the swap.
 */
export function replaceKernel(kernelName: string, backendName: string, tag: string, kernelFunc: KernelFunc): void {
  const stock = stockKernel(kernelName, backendName);
  if (tf.getKernel(kernelName, backendName)) tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({
    kernelName,
    backendName,
    kernelFunc,
    ...(stock?.setupFunc ? { setupFunc: stock.setupFunc } : {}),
    ...(stock?.disposeFunc ? { disposeFunc: stock.disposeFunc } : {}),
  });
  replaced.set(key(kernelName, backendName), tag);
}

/** Puts the stock kernel back (or removes ours if the backend had none). */
export function restoreKernel(kernelName: string, backendName: string): void {
  const k = key(kernelName, backendName);
  if (!replaced.has(k)) return;
  const stock = stockKernel(kernelName, backendName);
  if (tf.getKernel(kernelName, backendName)) tf.unregisterKernel(kernelName, backendName);
  if (stock) tf.registerKernel(stock);
  replaced.delete(k);
}

/** The tag of our kernel registered for (kernelName, backendName), or undefined when the stock one is in use. */
export function replacementOf(kernelName: string, backendName: string): string | undefined {
  return replaced.get(key(kernelName, backendName));
}

/** Calls the stock kernel `name` of `backendName` (or whatever is registered when it has none) from a kernel of ours. */
export function callKernel(
  name: string,
  backendName: string,
  inputs: Record<string, TensorInfo>,
  backend: unknown,
  attrs: NamedAttrMap = {},
): TensorInfo {
  const config = stockKernel(name, backendName) ?? tf.getKernel(name, backendName);
  if (!config) throw new Error(`kernel ${name} is not registered for backend ${backendName}`);
  return config.kernelFunc({ inputs, backend: backend as object, attrs }) as TensorInfo;
}
