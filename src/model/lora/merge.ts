import { tf } from '../../tf.js';
import { UsageError } from '../../errors.js';
import type { T5ForConditionalGeneration } from '../modeling_t5.js';
import type { LoraAdapter } from './adapter.js';
import { mergedWeight } from './lora_math.js';

/**
 * PEFT's `merge_and_unload()`: every weight the adapter targets becomes W + (B·A)·scaling, in place (the model's
 * same variables), and the adapter is detached if it was attached. The model is then a plain T5, which
 * `savePretrained` writes as an HF model folder. The adapter keeps its values; the caller disposes it.
 */
export function mergeAdapter(model: T5ForConditionalGeneration, adapter: LoraAdapter): T5ForConditionalGeneration {
  if (model.adapter && model.adapter !== adapter) throw new UsageError('mergeAdapter: another LoRA adapter is attached to the model');
  const params = model.namedParameters();
  adapter.assertFits((name) => params.get(name)?.shape);
  for (const name of adapter.targetWeights()) {
    const weight = params.get(name)!;
    const merged = mergedWeight(weight, adapter.target(name)!);
    weight.assign(merged);
    tf.dispose(merged);
  }
  if (model.adapter === adapter) model.detachAdapter();
  return model;
}
