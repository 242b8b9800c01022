/**
 * Every `T5CLS_*` environment switch of the compute engine, read once when this module loads:
 *
 * - `T5CLS_NATIVE_MATMUL=0`: stock matmul kernels even when onnxruntime-node loads (`NATIVE_MATMUL_ENV`).
 * - `T5CLS_FUSED_KERNELS=0`: no fused kernels, in-place optimizer steps or lean backward pass (`fusedKernels`).
 * - `T5CLS_WASM_GEMM=0`: the wasm backend's own matmul (XNNPACK) instead of ours (`wasmGemm`).
 * - `T5CLS_NATIVE_GRAPHS=0`: inference on tfjs kernels instead of whole ONNX Runtime graphs (`nativeGraphs`).
 * - `T5CLS_CPU_KERNELS=0`: the cpu backend's stock arithmetic, softmax and activation kernels instead of the cpu
 *   engine's (`cpuKernels`).
 * - `T5CLS_CONCURRENT_GC=1`: keep V8's concurrent marking on the cpu engine (`CONCURRENT_GC_ENV`; see
 *   cpu/main_thread_gc.ts).
 * - `T5CLS_BLAS`: `0` keeps matrix products off the system BLAS; a library name or path (a CBLAS with 32-bit
 *   integers and `cblas_sgemm`: OpenBLAS, MKL's libmkl_rt; not the 64-bit-integer builds such as libopenblas64) to
 *   use instead of OpenBLAS (`BLAS_ENV`; see blas/runtime.ts).
 * - `T5CLS_ORT_PATH`: extra folders (path-delimiter separated) to find onnxruntime-node in (`ORT_PATH_ENV`).
 *
 * The mutable objects are the switches the code reads; tests flip their `enabled` to check both paths.
 */

/** Env var: `0` keeps the stock matmul kernels even when onnxruntime-node loads. */
export const NATIVE_MATMUL_ENV = 'T5CLS_NATIVE_MATMUL';

/**
 * Env var: `0` turns the fused kernels, the in-place optimizer steps and the lean backward pass off (the plain tfjs
 * ops and tfjs's own backward pass run instead).
 */
export const FUSED_ENV = 'T5CLS_FUSED_KERNELS';

/** Whether fused kernels are used where the backend allows; tests flip it to check both paths. */
export const fusedKernels = { enabled: process.env[FUSED_ENV] !== '0' };

/** Env var: `0` keeps the wasm backend's own matmul (XNNPACK) where ours would run. */
export const WASM_GEMM_ENV = 'T5CLS_WASM_GEMM';

/** Whether our WebAssembly product is installed on wasm without ONNX Runtime (read at install time). */
export const wasmGemm = { enabled: process.env[WASM_GEMM_ENV] !== '0' };

/** Env var: `0` keeps inference on tfjs kernels (with native matmuls) instead of whole native graphs. */
export const NATIVE_GRAPHS_ENV = 'T5CLS_NATIVE_GRAPHS';

/** Whether native graphs are used where they can run; tests flip it to check both paths. */
export const nativeGraphs = { enabled: process.env[NATIVE_GRAPHS_ENV] !== '0' };

/** Env var: `0` keeps matrix products off the system BLAS; else the CBLAS library to load (default: OpenBLAS). */
export const BLAS_ENV = 'T5CLS_BLAS';

/** Env var: extra folder to find onnxruntime-node in (the package folder, or one it resolves from). */
export const ORT_PATH_ENV = 'T5CLS_ORT_PATH';

/** Env var: `0` keeps the cpu backend's stock kernels where the cpu engine has its own (engine/cpu). */
export const CPU_KERNELS_ENV = 'T5CLS_CPU_KERNELS';

/** Whether the cpu engine's kernels replace the stock cpu ones when the cpu backend starts. */
export const cpuKernels = { enabled: process.env[CPU_KERNELS_ENV] !== '0' };

/** Env var: `1` keeps V8's concurrent marking when the cpu engine starts (it is turned off there by default). */
export const CONCURRENT_GC_ENV = 'T5CLS_CONCURRENT_GC';
