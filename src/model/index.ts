export { T5Config, NAMED_CONFIGS, type T5ConfigFields } from './config.js';
export {
  T5ForConditionalGeneration,
  shiftRight,
  type DecodeOptions,
  type ForwardArgs,
  type ForwardOutput,
  type GenerateArgs,
} from './modeling_t5.js';
export { parameterShapes } from './parameters.js';
export { DropoutStream } from './dropout_stream.js';
export { tokenNll, sequenceCrossEntropy } from './loss.js';
export { loadCheckpointTensors } from './weights.js';
export * from './lora/index.js';
