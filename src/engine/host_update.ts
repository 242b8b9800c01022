/**
 * Updating tensors in place from TypeScript on the embedded backends (cpu, wasm), for the optimizers' fused
 * per-parameter steps: one pass over parameter, state and gradient instead of a dozen full-size tensor ops (each
 * with its own full-size temporary).
 *
 * A target's memory is written in place only when nothing else can see it: on wasm when the backend holds a single
 * reference to it (a zero-copy clone shares it, and `dataSync` returns copies there). On cpu `dataSync` and
 * `tf.tensor(array)` hand out the backing array itself, so targets always get a fresh array there.
 */
import { tf } from '../tf.js';
import { fusedKernels } from './flags.js';
import {
  backendNameOf,
  renewWasmId,
  storageFor,
  wasmMemoryOf,
  type EngineLike,
  type RefCounting,
  type TensorStorage,
  type WasmIds,
} from './tfjs_internals.js';

/** The current backend's storage when fused kernels may run on it (cpu or wasm), else undefined. */
export function hostStorage(): TensorStorage | undefined {
  if (!fusedKernels.enabled) return undefined;
  const engine = tf.engine() as unknown as EngineLike;
  const backend = engine.backend;
  return backendNameOf(backend) ? storageFor(backend) : undefined;
}

/**
 * Runs `update(outs, ins, memory, scratch)` over float32 views: for each target, `outs[k]` is where its new value
 * goes (its own memory when it may be written in place, else a fresh buffer that the variable is then pointed at)
 * and `ins[k]` its current value (the same array when in place); then come the read-only `inputs`, in `ins` after
 * the targets. `scratch` holds temporary float32 buffers of the sizes asked for, in the same memory (freed after).
 * `memory` is the wasm heap's WebAssembly.Memory on wasm (for SIMD kernels), else undefined.
 * `owned[k]` says that target k's memory is the caller's alone (optimizer state that never leaves it but through a
 * clone): on cpu it is then written in place too, unless a clone shares it.
 * Returns false, doing nothing, when the backend is not cpu/wasm, fused kernels are off, or some tensor is not
 * float32 or lives on another backend; the caller then takes the tensor-op path.
 */
export function updateInPlace(
  targets: readonly tf.Variable[],
  inputs: readonly tf.Tensor[],
  update: (outs: Float32Array[], ins: Float32Array[], memory: WebAssembly.Memory | undefined, scratch: Float32Array[]) => void,
  scratchSizes: readonly number[] = [],
  owned: readonly boolean[] = [],
): boolean {
  const storage = hostStorage();
  if (!storage) return false;
  const engine = tf.engine() as unknown as EngineLike;
  const backend = engine.backend;
  for (const t of [...targets, ...inputs]) {
    if (t.dtype !== 'float32' || t.isDisposed || engine.state.tensorInfo.get(t.dataId)?.backend !== backend) return false;
  }
  const inPlace = targets.map(
    (t, k) => (storage.backendName === 'wasm' || owned[k] === true) && (backend as RefCounting).refCount(t.dataId) === 1,
  );
  // Allocate first: on wasm an allocation may grow the heap and detach views taken before it.
  const fresh = targets.map((t, k) => (inPlace[k] ? undefined : storage.alloc([...t.shape], 'float32').info));
  const scratchInfo = scratchSizes.map((n) => storage.alloc([n], 'float32').info);
  try {
    const ins = [...targets, ...inputs].map((t) => storage.read(t) as Float32Array);
    const outs = targets.map((t, k) => (fresh[k] ? (storage.read(fresh[k]!) as Float32Array) : ins[k]!));
    const scratch = scratchInfo.map((info) => storage.read(info) as Float32Array);
    update(outs, ins, storage.backendName === 'wasm' ? wasmMemoryOf(backend) : undefined, scratch);
  } catch (e) {
    for (const info of fresh) if (info) storage.dispose(info);
    throw e;
  } finally {
    targets.forEach((t, k) => {
      if (inPlace[k] && storage.backendName === 'wasm') renewWasmId(backend as WasmIds, t.dataId);
    });
    for (const info of scratchInfo) storage.dispose(info);
  }
  targets.forEach((v, k) => {
    const info = fresh[k];
    if (!info) return;
    const t = engine.makeTensorFromTensorInfo(info, backend);
    v.assign(t);
    t.dispose();
  });
  return true;
}
