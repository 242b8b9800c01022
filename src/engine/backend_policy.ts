/**
 * Which backend to start and how: the requests refused up front, the order `auto` tries (TensorFlow, then wasm when
 * the job's tensors fit its heap, then the cpu engine), threads, the native matmul on or off, and the wasm build.
 */
import * as os from 'node:os';

import { T5clsError, UsageError } from '../errors.js';
import { tf } from '../tf.js';
import { NATIVE_MATMUL_ENV } from './flags.js';
import { CUDA_REQUIREMENT, TFJS_NODE, TFJS_NODE_GPU, type TfjsNodePackage } from './tensorflow/tfjs_node.js';
import { WASM_TENSOR_BYTES, type WasmBuild } from './wasm/activate.js';

export type BackendChoice = 'auto' | 'tensorflow' | 'wasm' | 'cpu';
export type DeviceChoice = 'auto' | 'cuda' | 'cpu';

export interface InitBackendOptions {
  /** CPU threads for wasm and the native matmul (default: os.availableParallelism()). */
  threads?: number;
  device?: DeviceChoice;
  /** Receives one line naming the backend chosen (and why others were not). */
  log?: (line: string) => void;
  /** Native matmul through a system BLAS or onnxruntime-node (default: on unless T5CLS_NATIVE_MATMUL=0). */
  nativeMatmul?: boolean;
  /**
   * Large matrix products through the system BLAS (OpenBLAS, or the CBLAS that T5CLS_BLAS names) when it loads
   * (default: on unless T5CLS_BLAS=0); products stay in ONNX Runtime without it.
   */
  blas?: boolean;
  /**
   * wasm build. Default: `simd` when the native matmul is in use (matmul is the only wasm kernel that threads
   * speed up, and the native binding reads the single-threaded build's memory without copies), otherwise
   * `threaded-simd`.
   */
  wasmBuild?: WasmBuild;
  /** Extra folders to find the optional native packages in, besides t5cls's own node_modules. */
  modulePaths?: string[];
  /**
   * Bytes the job's tensors need at their peak (`estimateMemory(...).tensorBytes`). `auto` leaves wasm out when its
   * heap cannot hold them and takes the cpu engine, whose tensors have no such ceiling; `--backend wasm` refuses.
   */
  tensorBytes?: number;
}

export interface BackendInfo {
  /** The tfjs backend in use. */
  name: 'tensorflow' | 'wasm' | 'cpu';
  /** One line, e.g. "wasm (SIMD build) + ONNX Runtime 1.30.0 matmul, 2 threads". */
  description: string;
  /** Threads the heavy kernels use (native matmul or wasm pool; TensorFlow's own pool for tensorflow). */
  threads: number;
  /** True when matrix products run in native code (TensorFlow or ONNX Runtime). */
  nativeMatmul: boolean;
  /** Where matrix products run ('blas': a system BLAS for the large ones, ONNX Runtime for batches of small ones). */
  matmul: 'tensorflow' | 'blas' | 'onnxruntime' | 'wasm' | 'js';
  /** The BLAS library in use, e.g. "OpenBLAS 0.3.21 (Zen)". */
  blas?: string;
  device: 'cuda' | 'cpu';
  /** The wasm build when name is 'wasm'. */
  wasmBuild?: WasmBuild;
  /** Package versions in use beyond @tensorflow/tfjs, e.g. { 'onnxruntime-node': '1.30.0' }. */
  packages: Record<string, string>;
  /** Kernels of ours registered on the backend in place of tfjs's. */
  kernels: string[];
  /**
   * Further kernels of ours on this backend: fused T5 kernels (no tfjs counterpart), and tfjs kernels replaced only
   * to skip copies.
   */
  fusedKernels: string[];
  /** Why better-ranked candidates were not used. */
  skipped: string[];
}

export function defaultThreads(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** Refuses the requests no backend can meet: a thread count below 1, CUDA on wasm or cpu. */
export function checkBackendRequest(choice: BackendChoice, device: DeviceChoice, threads: number): void {
  if (!Number.isInteger(threads) || threads < 1) {
    throw new UsageError(`--threads: expected a whole number >= 1, got ${threads}`);
  }
  if (device === 'cuda' && (choice === 'wasm' || choice === 'cpu')) {
    throw new UsageError(`--device cuda runs only on the tensorflow backend (${TFJS_NODE_GPU}), not on --backend ${choice}`);
  }
}

/** The TensorFlow packages to try for `device`, best first. */
export function tensorflowCandidates(device: DeviceChoice): TfjsNodePackage[] {
  return device === 'cpu' ? [TFJS_NODE] : device === 'cuda' ? [TFJS_NODE_GPU] : [TFJS_NODE_GPU, TFJS_NODE];
}

export function cudaError(reason: string): T5clsError {
  return new T5clsError(`--device cuda needs ${TFJS_NODE_GPU}@${tf.version_core} (which needs ${CUDA_REQUIREMENT}): ${reason}`);
}

export function tensorflowMissingError(skipped: string[]): T5clsError {
  return new T5clsError(`--backend tensorflow needs ${TFJS_NODE_GPU} or ${TFJS_NODE} (version ${tf.version_core}): ${skipped.join('; ')}`);
}

const gb = (bytes: number) => `${(bytes / 1e9).toFixed(1)} GB`;

/** Whether the job's tensors (bytes at their peak, when known) are more than the wasm heap holds. */
export function tooLargeForWasm(tensorBytes: number | undefined): boolean {
  return tensorBytes !== undefined && tensorBytes > WASM_TENSOR_BYTES;
}

export function wasmTooSmallError(tensorBytes: number): UsageError {
  return new UsageError(
    `--backend wasm cannot hold this job: its tensors need about ${gb(tensorBytes)} and the wasm heap holds ` +
      `${gb(WASM_TENSOR_BYTES)} of tensors at most (4 GiB in all); use --backend auto or cpu`,
  );
}

export function wasmLeftOutReason(tensorBytes: number): string {
  return `wasm left out: the job's tensors need about ${gb(tensorBytes)}, more than its heap holds`;
}

export function nativeMatmulWanted(opt: boolean | undefined): boolean {
  if (opt !== undefined) return opt;
  return process.env[NATIVE_MATMUL_ENV] !== '0';
}

/** The wasm build to start: the one asked for (or the default), stepped down to what this runtime supports. */
export function chooseWasmBuild(
  requested: WasmBuild | undefined,
  nativeProducts: boolean,
  support: { simd: boolean; threads: boolean },
): WasmBuild {
  let build: WasmBuild = requested ?? (nativeProducts ? 'simd' : 'threaded-simd');
  if (build === 'threaded-simd' && !(support.threads && support.simd)) build = 'simd';
  if (build === 'simd' && !support.simd) build = 'plain';
  return build;
}
