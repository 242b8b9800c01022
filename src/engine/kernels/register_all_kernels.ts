/**
 * The kernels both embedded engines (wasm, cpu) get on top of their own: T5's fused kernels, the copy-avoiding
 * ones, matrix products (native where a library loaded) and the ONNX Runtime graph kernel. The cpu engine's
 * cpu/register_all_kernels.ts calls this after registering its own; the wasm engine's registration is here
 * (`registerWasmKernels`), since its own kernels are the shared ones over wasm/'s SIMD code.
 */
import { GRAPH_KERNEL, installGraphKernel } from '../ort/graph_kernel.js';
import type { OrtMatMul } from '../ort/runtime.js';
import type { MatrixProducts } from '../products.js';
import { installCopyAvoidingKernels, installExtraKernels } from './extra.js';
import { FUSED_KERNELS, installFusedKernels } from './fused.js';
import { installMatMulKernels } from './matmul.js';

/** The native libraries an engine's kernels may call, as initBackend loaded them. */
export interface EngineLibraries {
  /** Where matrix products run natively (a system BLAS, ONNX Runtime, or both routed by shape). */
  products: MatrixProducts | undefined;
  /** ONNX Runtime, for its graphs. */
  ort: OrtMatMul | undefined;
  /** Threads of the wasm backend's own pool (1 on cpu). */
  poolThreads: number;
}

export interface RegisteredKernels {
  /** Kernels of ours registered in place of tfjs's (or that tfjs lacks). */
  kernels: string[];
  /** Fused T5 kernels, and tfjs kernels replaced only to skip copies. */
  fusedKernels: string[];
}

/** Registers the kernels common to both engines on `backendName`, after the engine's own `kernels`. */
export function registerCommonKernels(backendName: 'cpu' | 'wasm', kernels: string[], libs: EngineLibraries): RegisteredKernels {
  installFusedKernels(backendName);
  const fusedKernels = [...FUSED_KERNELS, ...installCopyAvoidingKernels(backendName)];
  if (installMatMulKernels(backendName, libs.products, libs.poolThreads) !== 'stock') kernels.push('BatchMatMul', '_FusedMatMul');
  installGraphKernel(backendName, libs.ort);
  if (libs.ort) kernels.push(GRAPH_KERNEL);
  return { kernels, fusedKernels };
}

/**
 * The wasm engine: tfjs's WebAssembly backend with the kernels T5 training needs that it lacks or runs slowly
 * (extra.ts), then the kernels both engines share.
 */
export function registerWasmKernels(libs: EngineLibraries): RegisteredKernels {
  return registerCommonKernels('wasm', installExtraKernels('wasm'), libs);
}
