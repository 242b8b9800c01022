/**
 * The T5 a model folder holds, read as transformers 5.x rebuilds it from what either generation saved:
 * `config.json`; `generation_config.json`'s token ids where config.json lacks them (5.x moves generation fields
 * there); and the LM head tied to the shared embedding unless the checkpoint keeps an `lm_head.weight` that differs
 * from it — whatever `tie_word_embeddings` says, since 5.x writes `true` for every T5, untied v1.1 models included.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError } from '../errors.js';
import { readJsonObject } from '../fsutil.js';
import type { LazyTensor, RawTensor } from '../safetensors.js';
import { T5Config } from './config.js';
import { loadCheckpointTensors, sameTensorValues } from './weights.js';

const GENERATION_FIELDS = ['decoder_start_token_id', 'eos_token_id', 'pad_token_id'] as const;
const EMBEDDING_KEYS = ['shared.weight', 'encoder.embed_tokens.weight', 'decoder.embed_tokens.weight'];

/** The config of the model folder `dir`, its head's tying decided by the checkpoint `tensors` (read from `dir` if not given). */
export function readModelConfig(dir: string, tensors?: Map<string, LazyTensor | RawTensor>): T5Config {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) throw new FormatError(`${dir}: not a model folder: config.json is missing`);
  const generation = readJsonObject(path.join(dir, 'generation_config.json')) ?? {};
  const fallback = Object.fromEntries(GENERATION_FIELDS.filter((k) => generation[k] !== undefined).map((k) => [k, generation[k]]));
  const config = T5Config.fromFile(file, fallback);
  const tied = headIsTied(tensors ?? loadCheckpointTensors(dir), dir);
  if (tied === config.tie_word_embeddings) return config;
  return config.withFields({ tie_word_embeddings: tied }, file);
}

/**
 * Whether the checkpoint's LM head is its shared embedding: no `lm_head.weight`, no embedding to differ from (5.x
 * then ties the embedding to the head), or the same values. Embedding aliases that differ from `shared.weight` are
 * refused: this T5 embeds both stacks' tokens with one matrix.
 */
function headIsTied(tensors: Map<string, LazyTensor | RawTensor>, source: string): boolean {
  const present = EMBEDDING_KEYS.filter((k) => tensors.has(k));
  for (const alias of present.slice(1)) {
    if (!sameTensorValues(tensors.get(present[0]!)!, tensors.get(alias)!))
      throw new FormatError(
        `${source}: tensor "${alias}" differs from "${present[0]}"; t5cls's T5 embeds the encoder's and decoder's tokens ` +
          `with one shared embedding`,
      );
  }
  const head = tensors.get('lm_head.weight');
  if (!head || present.length === 0) return true;
  return sameTensorValues(head, tensors.get(present[0]!)!);
}
