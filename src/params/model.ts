/** The model a command starts from or runs, and how its inputs are made. */
import { z } from 'zod';
import { int, str } from './values.js';

const MODEL_HELP =
  'Hub model id (t5-small, google/flan-t5-small, …) or a local model folder; with --adapter (test, predict, export, merge), ' +
  "the adapter's base (default: the one its adapter_config.json names)";
export const model = str().default('t5-small').describe(MODEL_HELP);
/** `--model` where it names an adapter's base: no default (the adapter's config names one). */
export const baseModel = str().optional().describe(MODEL_HELP);
export const init = z
  .enum(['pretrained', 'random'])
  .default('pretrained')
  .describe("start from the checkpoint's weights or from a random initialisation");
export const modelConfig = str()
  .default('small')
  .describe("with --init random: a config.json file or a named shape (tiny, mini, small, base, large: T5 v1.0's; xl: flan-t5-xl's)");
export const tokenizer = str()
  .optional()
  .describe("tokenizer folder with spiece.model or tokenizer.json (export needs tokenizer.json) (default: the model's)");
export const revision = str().default('main').describe('Hub revision (branch, tag or commit) of the data set or model');

/** Where `train` and `pretrain` get their model and tokenizer. */
export const modelSource = { model, init, modelConfig, tokenizer, revision };
export type ModelSourceParams = z.infer<z.ZodObject<typeof modelSource>>;

export const prefixText = z.string().default('tweet_eval emotion sentence: ').describe('text put before every input');
export const maxSourceLength = int(2).default(512).describe('inputs are truncated to this many tokens');
