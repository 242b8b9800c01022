import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs';

import { storageFor } from '../../tfjs_internals.js';
import { ortGatedGelu, ortGatedGeluGrad } from '../../ort/gated_gelu.js';
import { cpuEngineOrt } from '../../kernels/ort_route.js';
import { GATED_GELU, GATED_GELU_GRAD } from '../../kernels/gated_gelu_gradient.js';

function ort() {
  const o = cpuEngineOrt.ort;
  if (!o) throw new Error(`${GATED_GELU} needs ONNX Runtime`);
  return o;
}

/** gelu_new(a) · b for same-shaped float32 a, b (see ort/gated_gelu.ts); registered only with ONNX Runtime. */
export const gatedGeluConfig: KernelConfig = {
  kernelName: GATED_GELU,
  backendName: 'cpu',
  kernelFunc: ({ inputs, backend }) => {
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const storage = storageFor(backend);
    const y = storage.alloc([...a.shape], 'float32');
    ortGatedGelu(ort(), storage.read(a) as Float32Array, storage.read(b) as Float32Array, y.data as Float32Array);
    return y.info;
  },
};

export const gatedGeluGradConfig: KernelConfig = {
  kernelName: GATED_GELU_GRAD,
  backendName: 'cpu',
  kernelFunc: ({ inputs, backend }) => {
    const { dy, a, b } = inputs as { dy: TensorInfo; a: TensorInfo; b: TensorInfo };
    const storage = storageFor(backend);
    const da = storage.alloc([...a.shape], 'float32');
    const db = storage.alloc([...a.shape], 'float32');
    const [dyv, av, bv] = [storage.read(dy), storage.read(a), storage.read(b)] as Float32Array[];
    ortGatedGeluGrad(ort(), dyv!, av!, bv!, da.data as Float32Array, db.data as Float32Array);
    return [da.info, db.info];
  },
};
