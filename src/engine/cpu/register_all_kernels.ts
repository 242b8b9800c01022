/**
 * The cpu engine: the stock cpu backend (tensors in JavaScript typed arrays, so no 4 GiB heap ceiling, which is why
 * large T5s train here) with these kernels in place of its slow general ones. Matrix products come from the system
 * BLAS and ONNX Runtime (engine/products.ts), inference graphs from ONNX Runtime (engine/ort), T5's fused kernels
 * from engine/kernels, as on wasm.
 */
import type { KernelConfig } from '@tensorflow/tfjs';

import { replaceKernel, restoreKernel } from '../tfjs_internals.js';
import type { OrtMatMul } from '../ort/runtime.js';
import { addConfig } from './kernels/add.js';
import { cpuEngineOrt } from '../kernels/ort_route.js';
import { multiplyConfig } from './kernels/multiply.js';
import { realDivConfig } from './kernels/real_div.js';
import { reluConfig } from './kernels/relu.js';
import { softmaxConfig } from './kernels/softmax.js';
import { stepConfig } from './kernels/step.js';
import { subConfig } from './kernels/sub.js';
import { sumConfig } from './kernels/sum.js';
import { tanhConfig } from './kernels/tanh.js';
import { reluGradConfig, reluGradientConfig } from './kernels/relu_grad.js';
import { reluDropoutConfig } from './kernels/relu_dropout.js';
import { gatedGeluConfig, gatedGeluGradConfig } from './kernels/gated_gelu.js';
import { tf } from '../../tf.js';
import { cpuKernels } from '../flags.js';
import { installExtraKernels } from '../kernels/extra.js';
import { registerCommonKernels, type EngineLibraries, type RegisteredKernels } from '../kernels/register_all_kernels.js';
import { installArrayPool, uninstallArrayPool } from './array_pool.js';
import { keepMarkingOnMainThread } from './main_thread_gc.js';

const CPU_KERNELS: KernelConfig[] = [
  addConfig,
  subConfig,
  multiplyConfig,
  realDivConfig,
  softmaxConfig,
  reluConfig,
  stepConfig,
  tanhConfig,
  sumConfig,
];
/** Kernels the stock backend does not have at all. */
const OWN_KERNELS: KernelConfig[] = [reluGradConfig, reluDropoutConfig];
/** Kernels that exist only as ONNX Runtime graphs. */
const ORT_KERNELS: KernelConfig[] = [gatedGeluConfig, gatedGeluGradConfig];

/**
 * Starts the cpu engine on the (active) cpu backend: the extra kernels, the cpu engine's own kernels and array reuse
 * (unless T5CLS_CPU_KERNELS=0), then the kernels both engines share.
 */
export function registerCpuEngine(libs: EngineLibraries): RegisteredKernels {
  const kernels = installExtraKernels('cpu');
  if (cpuKernels.enabled) {
    kernels.push(...registerCpuKernels(libs.ort));
    installArrayPool(tf.backend());
    keepMarkingOnMainThread();
  } else {
    restoreCpuKernels();
    uninstallArrayPool(tf.backend());
  }
  return registerCommonKernels('cpu', kernels, libs);
}

/**
 * Registers the cpu engine's kernels on the cpu backend; returns their names. With `ort`, large tensors' arithmetic
 * and transposes run in ONNX Runtime.
 */
export function registerCpuKernels(ort?: OrtMatMul): string[] {
  cpuEngineOrt.ort = ort;
  for (const k of CPU_KERNELS) replaceKernel(k.kernelName, 'cpu', 'cpu-engine', k.kernelFunc);
  for (const k of OWN_KERNELS) if (!tf.getKernel(k.kernelName, 'cpu')) tf.registerKernel(k);
  if (ort) for (const k of ORT_KERNELS) if (!tf.getKernel(k.kernelName, 'cpu')) tf.registerKernel(k);
  // Relu's gradient takes the one-pass kernel where a backend registers it, tfjs's own formula elsewhere.
  tf.registerGradient(reluGradientConfig);
  return [...CPU_KERNELS, ...OWN_KERNELS, ...(ort ? ORT_KERNELS : [])].map((k) => k.kernelName);
}

/** Puts the stock cpu kernels back. */
export function restoreCpuKernels(): void {
  cpuEngineOrt.ort = undefined;
  for (const k of CPU_KERNELS) restoreKernel(k.kernelName, 'cpu');
  for (const k of [...OWN_KERNELS, ...ORT_KERNELS]) if (tf.getKernel(k.kernelName, 'cpu')) tf.unregisterKernel(k.kernelName, 'cpu');
}
