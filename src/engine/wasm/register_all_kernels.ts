/**
 * The wasm engine: tfjs's WebAssembly backend with the kernels T5 training needs that it lacks or runs slowly
 * (kernels/extra.ts), then the kernels both engines share (kernels/register_all_kernels.ts).
 */
import { installExtraKernels } from '../kernels/extra.js';
import { registerCommonKernels, type EngineLibraries, type RegisteredKernels } from '../kernels/register_all_kernels.js';

export function registerWasmKernels(libs: EngineLibraries): RegisteredKernels {
  return registerCommonKernels('wasm', installExtraKernels('wasm'), libs);
}
