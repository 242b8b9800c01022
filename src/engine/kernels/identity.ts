/**
 * `Identity` on wasm without a copy: tfjs clones every tensor it saves for the backward pass through Identity; the
 * stock wasm kernel copies the data, ours shares it by reference count as the cpu backend does.
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs';

import type { WasmBackendLike } from '../tfjs_internals.js';

export function zeroCopyIdentity(stock: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'string') return stock(args);
    (args.backend as WasmBackendLike).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}
