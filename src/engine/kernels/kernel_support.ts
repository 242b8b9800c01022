/** Helpers shared by the fused kernels: their SIMD variants on the wasm heap, and scratch buffers. */
import type { TensorInfo } from '@tensorflow/tfjs';

import { storageFor, wasmMemoryOf } from '../tfjs_internals.js';
import { kernelFor, type CompiledKernel, type ElementwiseSpec } from '../wasm/simd.js';

export const f32 = Math.fround;

/** The SIMD kernels for `specs` when the backend is wasm and every array lies on its heap, else undefined. */
export function simdKernels(
  backend: unknown,
  arrays: readonly Float32Array[],
  specs: readonly ElementwiseSpec[],
): CompiledKernel[] | undefined {
  const memory = wasmMemoryOf(backend);
  if (!memory || arrays.some((a) => a.buffer !== memory.buffer)) return undefined;
  const kernels = specs.map((spec) => kernelFor(spec, memory));
  return kernels.every((k) => k !== undefined) ? (kernels as CompiledKernel[]) : undefined;
}

/** A scratch float32 buffer on the backend (allocate before taking other views); dispose with `storage.dispose`. */
export function scratch(storage: ReturnType<typeof storageFor>, n: number): TensorInfo {
  return storage.alloc([n], 'float32').info;
}

export const laneSum = (v: Float32Array, k: number): number => v[4 * k]! + v[4 * k + 1]! + v[4 * k + 2]! + v[4 * k + 3]!;
