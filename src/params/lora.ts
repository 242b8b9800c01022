/** LoRA adapters: training one (train) and applying one to its base model (test, predict, export, merge). */
import { z } from 'zod';
import { int, num, str } from './values.js';
import { baseModel } from './model.js';

export const loraR = int(1)
  .optional()
  .describe("train a LoRA adapter of this rank (PEFT's r) instead of every weight; the base model stays frozen");
export const loraAlpha = num(0).default(8).describe("LoRA alpha: the adapter's update is scaled by alpha / r (PEFT's lora_alpha)");
export const loraDropout = num(0)
  .max(0.999999, 'expected a number below 1')
  .default(0)
  .describe("dropout on the LoRA branch's input while training (PEFT's lora_dropout)");
export const loraTargetModules = str()
  .default('q,v')
  .describe(
    "the linear layers that get an adapter: module names, comma-separated (PEFT's matching: q, k, v, o, wi, wi_0, wi_1, wo, " +
      'EncDecAttention.q, …) or all-linear (every linear layer of the blocks; the LM head stays frozen)',
  );

/**
 * An adapter folder: train trains it further (its r, alpha, dropout and targets); test, predict, export and merge
 * apply it to its base model.
 */
export const adapter = str()
  .optional()
  .describe(
    'a PEFT LoRA adapter folder: train trains it further on its frozen base; test, predict, export and merge apply it to ' +
      'its base (--model, else the base its adapter_config.json names)',
  );
export const lora = { loraR, loraAlpha, loraDropout, loraTargetModules, adapter };

/** test, predict, export, merge: an adapter folder and the base model it is applied to (no default model here). */
export const adapterSource = { adapter, model: baseModel };
export type AdapterSourceParams = z.infer<z.ZodObject<typeof adapterSource>>;
