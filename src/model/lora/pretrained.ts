/**
 * A T5 with a PEFT LoRA adapter applied, from two folders: the base model (HF layout) and the adapter. For inference
 * the adapter is merged in (one product per projection, and ONNX Runtime's graphs run the merged weights); for
 * training it stays attached beside the frozen base.
 */
import { T5ForConditionalGeneration } from '../modeling_t5.js';
import { loadAdapter } from './folder.js';
import { mergeAdapter } from './merge.js';

export interface AdaptedModelOptions {
  /** Fold the adapter into the base weights (PEFT's merge_and_unload) and free it: a plain T5 comes back. */
  merge?: boolean;
  onWarning?: (message: string) => void;
}

export function fromPretrainedWithAdapter(
  baseDir: string,
  adapterDir: string,
  options: AdaptedModelOptions = {},
): T5ForConditionalGeneration {
  const model = T5ForConditionalGeneration.fromPretrained(baseDir, { onWarning: options.onWarning });
  try {
    const adapter = loadAdapter(adapterDir, model);
    if (options.merge) {
      mergeAdapter(model, adapter);
      adapter.dispose();
    }
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  }
}
