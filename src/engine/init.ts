/**
 * Choosing and starting the TensorFlow.js backend.
 *
 * auto: `@tensorflow/tfjs-node-gpu` when installed and loadable, else `@tensorflow/tfjs-node`, else wasm with our
 * kernels (UnsortedSegmentSum, zero-copy Identity, fast transposed matmul) when the job's tensors fit its heap, else
 * the cpu engine (tfjs's cpu backend with the kernels of engine/cpu). On wasm and cpu, matrix products go to native
 * code: the system's OpenBLAS (through the optional `koffi` package) for large products, ONNX Runtime's kernels (the
 * optional `onnxruntime-node` package) for batches of small ones and wherever there is no OpenBLAS (env
 * T5CLS_NATIVE_MATMUL=0 turns both off, T5CLS_BLAS=0 the BLAS); see kernels/matmul.ts and products.ts.
 *
 * The policy is in backend_policy.ts, loading the native packages in native_loading.ts, the wasm self-check in
 * self_check.ts, the descriptions in backend_description.ts, doctor's probes in backend_probes.ts.
 */
import { T5clsError } from '../errors.js';
import { tf } from '../tf.js';
import { registerCpuEngine } from './cpu/register_all_kernels.js';
import { registerWasmKernels } from './kernels/register_all_kernels.js';
import { leaveDefaultsToInitBackend } from './library_defaults.js';
import { installLeanGradients } from './kernels/lean_gradients.js';
import { activateWasm, wasmSupport, type WasmBuild } from './wasm/activate.js';
import { describeEmbedded } from './backend_description.js';
import {
  checkBackendRequest,
  chooseWasmBuild,
  cudaError,
  defaultThreads,
  tensorflowMissingError,
  tooLargeForWasm,
  wasmLeftOutReason,
  wasmTooSmallError,
  type BackendChoice,
  type BackendInfo,
  type InitBackendOptions,
} from './backend_policy.js';
import { loadNativeProducts, startTensorflow } from './native_loading.js';
import { useProductionMode } from './production_mode.js';
import { wasmSelfCheck } from './self_check.js';

export type { BackendChoice, BackendInfo, DeviceChoice, InitBackendOptions } from './backend_policy.js';

/**
 * Starts the backend `choice` (the first of auto's order that starts) with our kernels, puts tfjs in production mode,
 * and logs one line naming what runs.
 */
export async function initBackend(choice: BackendChoice = 'auto', opts: InitBackendOptions = {}): Promise<BackendInfo> {
  const device = opts.device ?? 'auto';
  const threads = opts.threads ?? defaultThreads();
  checkBackendRequest(choice, device, threads);
  const log = opts.log ?? (() => {});
  const skipped: string[] = [];
  useProductionMode();
  leaveDefaultsToInitBackend();
  // Frees intermediate gradients during the backward pass (any backend); see kernels/lean_gradients.ts.
  installLeanGradients();
  let info: BackendInfo | undefined;

  if (choice === 'auto' || choice === 'tensorflow') {
    info = await startTensorflow(device, threads, opts.modulePaths ?? [], skipped, opts.threads !== undefined);
    if (!info) {
      if (device === 'cuda') throw cudaError(skipped.join('; '));
      if (choice === 'tensorflow') throw tensorflowMissingError(skipped);
    }
  }
  const wasmTooSmall = tooLargeForWasm(opts.tensorBytes);
  if (choice === 'wasm' && wasmTooSmall) throw wasmTooSmallError(opts.tensorBytes!);
  if (!info && choice === 'auto' && wasmTooSmall) {
    skipped.push(wasmLeftOutReason(opts.tensorBytes!));
  } else if (!info && (choice === 'auto' || choice === 'wasm')) {
    try {
      info = await startEmbedded('wasm', threads, opts, skipped);
    } catch (e) {
      if (choice === 'wasm') throw new T5clsError(`the wasm backend failed to start: ${(e as Error).message}`, 1, { cause: e });
      skipped.push(`wasm failed: ${(e as Error).message}`);
    }
  }
  if (!info) info = await startEmbedded('cpu', threads, opts, skipped);

  log(`backend: ${info.description}${skipped.length ? ` (${skipped.join('; ')})` : ''}`);
  return info;
}

/** Starts wasm or the cpu engine with the native products that load, and registers their kernels. */
async function startEmbedded(name: 'wasm' | 'cpu', threads: number, opts: InitBackendOptions, skipped: string[]): Promise<BackendInfo> {
  const { ort, blas, products, packages } = loadNativeProducts(threads, opts, skipped);

  let wasmBuild: WasmBuild | undefined;
  let poolThreads = 1;
  if (name === 'wasm') {
    const started = await activateWasm(chooseWasmBuild(opts.wasmBuild, products !== undefined, wasmSupport()), threads);
    wasmBuild = started.build;
    poolThreads = started.threads;
  } else if (!(await tf.setBackend('cpu'))) {
    throw new T5clsError('the cpu backend failed to initialize');
  }

  const libs = { products, ort, poolThreads };
  const { kernels, fusedKernels } = name === 'wasm' ? registerWasmKernels(libs) : registerCpuEngine(libs);

  if (name === 'wasm') {
    const problem = wasmSelfCheck();
    if (problem) throw new Error(`self-check failed: ${problem}`);
  }

  const engine = { name, ...(wasmBuild ? { wasmBuild } : {}), poolThreads, ...(blas ? { blas } : {}), ...(ort ? { ort } : {}) };
  const { description, matmul, threads: nativeThreads } = describeEmbedded(engine);
  return {
    name,
    description,
    threads: nativeThreads,
    nativeMatmul: products !== undefined,
    matmul,
    ...(blas ? { blas: blas.name } : {}),
    device: 'cpu',
    ...(wasmBuild ? { wasmBuild } : {}),
    packages,
    kernels,
    fusedKernels,
    skipped: [...skipped],
  };
}
