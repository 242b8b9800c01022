/**
 * What the model and the training code ask of the engine, in one place: the fused ops (their gradients registered),
 * whole inference stacks as ONNX Runtime graphs, the optimizers' in-place steps, the wasm heap's tensor limit and the
 * embedding gradient a model used without initBackend registers.
 * src/model/ and src/train/ reach the engine through this file only (the layout test checks it).
 */
export {
  fusedAvailable,
  fusedDropout,
  fusedGatedGelu,
  fusedLogProbsAt,
  fusedReluDropout,
  fusedRmsNorm,
  fusedTokenNll,
} from './kernels/fused.js';
export { nativeGraphAvailable, runNativeGraph, withNativeGraphFallback, type GraphDefinition } from './ort/graph_kernel.js';
export { onnxModel, type OnnxNode } from './onnx/builder.js';
export { fusedAdamWStep, type AdamWScalars } from './kernels/adamw_step.js';
export { fusedAdafactorStep } from './kernels/adafactor_step.js';
export { WASM_TENSOR_BYTES } from './wasm/activate.js';
export { useLibraryDefaultsOnce } from './library_defaults.js';
