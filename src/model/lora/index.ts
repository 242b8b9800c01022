/**
 * LoRA adapters for T5, in Hugging Face PEFT's math and files: a low-rank update beside the frozen model's linear
 * layers (adapter.ts, lora_math.ts), PEFT's adapter folder both ways (folder.ts, peft_config.ts), merging (merge.ts).
 */
export { LoraConfig, ALL_LINEAR, T5_DEFAULT_TARGETS, type LoraConfigOptions } from './config.js';
export { LoraAdapter, kaimingUniformBound, type AdapterBase, type LoraAdapterOptions, type LoraTarget } from './adapter.js';
export {
  isAdapterFolder,
  loadAdapter,
  readAdapter,
  saveAdapter,
  writeAdapterFiles,
  ADAPTER_WEIGHTS_FILE,
  type SaveAdapterOptions,
} from './folder.js';
export { ADAPTER_CONFIG_FILE, readAdapterBase, readAdapterConfig } from './peft_config.js';
export { mergeAdapter } from './merge.js';
export { fromPretrainedWithAdapter, type AdaptedModelOptions } from './pretrained.js';
