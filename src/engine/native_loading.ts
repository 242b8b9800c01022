/**
 * Loading the optional native packages: `@tensorflow/tfjs-node(-gpu)` as the tensorflow backend, and for wasm and
 * cpu the matrix-product libraries (ONNX Runtime through `onnxruntime-node`, the system BLAS through `koffi`).
 */
import { tf } from '../tf.js';
import { blasWanted, KOFFI_PACKAGE, loadBlasMatMul, type BlasMatMul } from './blas/runtime.js';
import { BLAS_ENV, NATIVE_MATMUL_ENV } from './flags.js';
import { loadOrtMatMul, ORT_PACKAGE, type OrtMatMul } from './ort/runtime.js';
import { routeProducts, type MatrixProducts } from './products.js';
import { loadTfjsNode, tensorflowUsesGpu, TFJS_NODE_GPU } from './tensorflow/tfjs_node.js';
import { describeTensorflow } from './backend_description.js';
import {
  cudaError,
  defaultThreads,
  nativeMatmulWanted,
  tensorflowCandidates,
  type BackendInfo,
  type DeviceChoice,
  type InitBackendOptions,
} from './backend_policy.js';

/**
 * Starts the tensorflow backend from the first TensorFlow package for `device` that loads; undefined (reasons in
 * `skipped`) when none does.
 */
export async function startTensorflow(
  device: DeviceChoice,
  threads: number,
  modulePaths: string[],
  skipped: string[],
  threadsGiven: boolean,
): Promise<BackendInfo | undefined> {
  // TensorFlow reads its pool size when its context is created, i.e. at the first op.
  if (threadsGiven && process.env['TF_NUM_INTRAOP_THREADS'] === undefined) {
    process.env['TF_NUM_INTRAOP_THREADS'] = String(threads);
  }
  for (const pkg of tensorflowCandidates(device)) {
    const res = await loadTfjsNode(pkg, modulePaths);
    if (!res.ok) {
      skipped.push(res.reason);
      continue;
    }
    if (!(await tf.setBackend('tensorflow'))) {
      skipped.push(`${pkg} ${res.version} loaded but its backend failed to initialize`);
      continue;
    }
    const gpu = pkg === TFJS_NODE_GPU ? tensorflowUsesGpu() : false;
    if (device === 'cuda' && gpu === false) {
      throw cudaError(`${pkg} ${res.version} loaded but TensorFlow sees no usable GPU (check the NVIDIA driver and CUDA_VISIBLE_DEVICES)`);
    }
    const onGpu = gpu !== false && pkg === TFJS_NODE_GPU;
    const tfThreads = Number(process.env['TF_NUM_INTRAOP_THREADS'] ?? '') || defaultThreads();
    return {
      name: 'tensorflow',
      description: describeTensorflow(pkg, res.version, onGpu, tfThreads),
      threads: tfThreads,
      nativeMatmul: true,
      matmul: 'tensorflow',
      device: onGpu ? 'cuda' : 'cpu',
      packages: { [pkg]: res.version },
      kernels: [],
      fusedKernels: [],
      skipped: [...skipped],
    };
  }
  return undefined;
}

export interface NativeProducts {
  ort?: OrtMatMul;
  blas?: BlasMatMul;
  /** Where the engine's matrix products go: large ones to the BLAS, batches of small ones to ONNX Runtime. */
  products?: MatrixProducts;
  /** Versions of the packages loaded. */
  packages: Record<string, string>;
}

/** The native matrix-product libraries that load and are wanted (reasons for the others in `skipped`). */
export function loadNativeProducts(threads: number, opts: InitBackendOptions, skipped: string[]): NativeProducts {
  let ort: OrtMatMul | undefined;
  let blas: BlasMatMul | undefined;
  const packages: Record<string, string> = {};
  if (nativeMatmulWanted(opts.nativeMatmul)) {
    const res = loadOrtMatMul(threads, opts.modulePaths ?? []);
    if (res.ok) {
      ort = res.ort;
      packages[ORT_PACKAGE] = ort.version;
    } else {
      skipped.push(`native matmul off: ${res.reason}`);
    }
    const wanted = opts.blas === false ? 'off' : blasWanted();
    if (wanted === 'off') {
      skipped.push(`BLAS off (${opts.blas === false ? 'blas: false' : `${BLAS_ENV}=0`})`);
    } else {
      const loaded = loadBlasMatMul(threads, wanted);
      if (loaded.ok) {
        blas = loaded.blas;
        packages[KOFFI_PACKAGE] = blas.koffiVersion;
      } else {
        skipped.push(`BLAS off: ${loaded.reason}`);
      }
    }
  } else {
    skipped.push(`native matmul off (${opts.nativeMatmul === false ? 'nativeMatmul: false' : `${NATIVE_MATMUL_ENV}=0`})`);
  }
  const products = blas && ort ? routeProducts(blas, ort) : (blas ?? ort);
  return { ...(ort ? { ort } : {}), ...(blas ? { blas } : {}), ...(products ? { products } : {}), packages };
}
