/**
 * When the cpu engine's large tensors go to ONNX Runtime: set by the cpu engine when it starts (cpu/), read by its
 * kernels and by the kernels both engines share (here), which route to ONNX Runtime only on the cpu backend.
 */
import type { OrtMatMul } from '../ort/runtime.js';

/**
 * From this many output elements on, arithmetic runs in ONNX Runtime (two threads and AVX beat one JavaScript
 * loop once the tensor is larger than the call's own cost).
 */
export const ORT_MIN_ELEMENTS = { value: 1 << 15 };

/** ONNX Runtime for the cpu engine's large tensors, when it loaded (set by registerCpuKernels). */
export const cpuEngineOrt: { ort?: OrtMatMul } = {};
