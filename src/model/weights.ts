/**
 * Loading checkpoint tensors into a T5: both layouts HF writes (tied models with only `shared.weight`, or every
 * state_dict key including the `embed_tokens` / `lm_head` aliases), single-file or sharded safetensors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../tf.js';
import { FormatError } from '../errors.js';
import { readSafetensorsFile, type RawTensor } from '../safetensors.js';

export interface LoadReport {
  /** Checkpoint tensors the model has no use for (HF warns about these too). */
  unexpected: string[];
}

/** Keys HF itself drops on load (an old T5 layout kept a bias table in cross-attention). */
const IGNORED_ON_LOAD = /^decoder\.block\.0\.layer\.1\.EncDecAttention\.relative_attention_bias\.weight$/;

/** Reads `model.safetensors`, or every shard listed in `model.safetensors.index.json`, of a model folder. */
export function loadCheckpointTensors(dir: string): Map<string, RawTensor> {
  const single = path.join(dir, 'model.safetensors');
  if (fs.existsSync(single)) return readSafetensorsFile(single).tensors;
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(index)) {
    let weightMap: Record<string, string>;
    try {
      weightMap = JSON.parse(fs.readFileSync(index, 'utf-8')).weight_map;
    } catch (e) {
      throw new FormatError(`${index}: not valid JSON (${(e as Error).message})`);
    }
    if (!weightMap || typeof weightMap !== 'object') throw new FormatError(`${index}: missing "weight_map"`);
    const out = new Map<string, RawTensor>();
    for (const shard of new Set(Object.values(weightMap))) {
      if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\') || shard.startsWith('.')) {
        throw new FormatError(`${index}: invalid shard file name ${JSON.stringify(shard)}`);
      }
      for (const [k, v] of readSafetensorsFile(path.join(dir, shard)).tensors) out.set(k, v);
    }
    return out;
  }
  const hint = fs.existsSync(path.join(dir, 'pytorch_model.bin'))
    ? ' (found pytorch_model.bin: t5cls reads safetensors only; convert it in Python with model.save_pretrained(dir, safe_serialization=True))'
    : '';
  throw new FormatError(`${dir}: no model weights found; expected model.safetensors or model.safetensors.index.json${hint}`);
}

/** The checkpoint keys that may hold a model parameter, first match wins. */
function sourceKeys(name: string, tied: boolean): string[] {
  if (name === 'shared.weight') {
    const keys = ['shared.weight', 'encoder.embed_tokens.weight', 'decoder.embed_tokens.weight'];
    return tied ? [...keys, 'lm_head.weight'] : keys;
  }
  return [name];
}

interface ModelLike {
  readonly config: { tie_word_embeddings: boolean };
  namedParameters(): Map<string, tf.Variable>;
}

/** Assigns checkpoint tensors to the model's variables, checking names and shapes first (nothing is half-loaded). */
export function loadStateDict(model: ModelLike, tensors: Map<string, RawTensor>, source: string): LoadReport {
  const tied = model.config.tie_word_embeddings;
  const params = model.namedParameters();
  const used = new Set<string>();
  const plan: [tf.Variable, RawTensor][] = [];
  const missing: string[] = [];
  for (const [name, variable] of params) {
    const key = sourceKeys(name, tied).find((k) => tensors.has(k));
    if (!key) {
      missing.push(name);
      continue;
    }
    const t = tensors.get(key)!;
    if (!(t.data instanceof Float32Array)) throw new FormatError(`${source}: tensor "${key}" has dtype ${t.dtype}; expected a floating-point type`);
    if (t.shape.length !== variable.shape.length || t.shape.some((d, i) => d !== variable.shape[i])) {
      throw new FormatError(`${source}: tensor "${key}" has shape [${t.shape.join(', ')}] but the config expects [${variable.shape.join(', ')}]`);
    }
    plan.push([variable, t]);
  }
  if (missing.length) throw new FormatError(`${source}: missing tensors: ${missing.join(', ')}`);
  for (const name of params.keys()) for (const k of sourceKeys(name, tied)) used.add(k);
  for (const [variable, t] of plan) {
    const value = tf.tensor(t.data, t.shape, 'float32');
    variable.assign(value);
    value.dispose();
  }
  const unexpected = [...tensors.keys()].filter((k) => !used.has(k) && !IGNORED_ON_LOAD.test(k));
  return { unexpected };
}
