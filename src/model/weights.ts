/**
 * Loading checkpoint tensors into a T5: both layouts HF writes (tied models with only `shared.weight`, or every
 * state_dict key including the `embed_tokens` / `lm_head` aliases), single-file or sharded safetensors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError } from '../errors.js';
import { readShardIndex, SHARD_INDEX_FILE } from '../shard_index.js';
import { dtypeBytes, openSafetensorsFile, type LazyTensor, type RawTensor, type SafetensorsDtype } from '../safetensors.js';

/** Keys HF itself drops on load (an old T5 layout kept a bias table in cross-attention). */
const IGNORED_ON_LOAD = /^decoder\.block\.0\.layer\.1\.EncDecAttention\.relative_attention_bias\.weight$/;

/**
 * The tensors of `model.safetensors`, or of every shard listed in `model.safetensors.index.json`, of a model
 * folder: headers are read and checked now, each tensor's data when it is read (one at a time, so that loading
 * never holds the checkpoint twice).
 */
export function loadCheckpointTensors(dir: string): Map<string, LazyTensor> {
  const single = path.join(dir, 'model.safetensors');
  if (fs.existsSync(single)) return openSafetensorsFile(single).tensors;
  const index = path.join(dir, SHARD_INDEX_FILE);
  if (fs.existsSync(index)) {
    const out = new Map<string, LazyTensor>();
    for (const shard of readShardIndex(index).shards) {
      for (const [k, v] of openSafetensorsFile(path.join(dir, shard)).tensors) out.set(k, v);
    }
    return out;
  }
  const hint = fs.existsSync(path.join(dir, 'pytorch_model.bin'))
    ? ' (found pytorch_model.bin: t5cls reads safetensors only; convert it in Python with model.save_pretrained(dir, ' +
      'safe_serialization=True))'
    : '';
  throw new FormatError(`${dir}: no model weights found; expected model.safetensors or model.safetensors.index.json${hint}`);
}

const FLOAT_DTYPES: ReadonlySet<SafetensorsDtype> = new Set(['F64', 'F32', 'F16', 'BF16']);

/** The checkpoint keys that may hold a model parameter, first match wins. */
function sourceKeys(name: string, tied: boolean): string[] {
  if (name === 'shared.weight') {
    const keys = ['shared.weight', 'encoder.embed_tokens.weight', 'decoder.embed_tokens.weight'];
    return tied ? [...keys, 'lm_head.weight'] : keys;
  }
  return [name];
}

/**
 * Matches checkpoint tensors to the parameters a config defines, checking names and shapes before anything is
 * allocated: a mismatch names the tensor and both shapes, missing tensors are listed, unexpected ones reported.
 */
export function resolveStateDict<T extends { dtype: SafetensorsDtype; shape: number[] }>(
  expected: [name: string, shape: number[]][],
  tieWordEmbeddings: boolean,
  tensors: Map<string, T>,
  source: string,
): { values: Map<string, T>; unexpected: string[] } {
  const values = new Map<string, T>();
  const used = new Set<string>();
  const missing: string[] = [];
  for (const [name, shape] of expected) {
    const keys = sourceKeys(name, tieWordEmbeddings);
    keys.forEach((k) => used.add(k));
    const key = keys.find((k) => tensors.has(k));
    if (!key) {
      missing.push(name);
      continue;
    }
    const t = tensors.get(key)!;
    if (!FLOAT_DTYPES.has(t.dtype))
      throw new FormatError(`${source}: tensor "${key}" has dtype ${t.dtype}; expected a floating-point type`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new FormatError(`${source}: tensor "${key}" has shape [${t.shape.join(', ')}] but the config expects [${shape.join(', ')}]`);
    }
    values.set(name, t);
  }
  if (missing.length) throw new FormatError(`${source}: missing tensors: ${missing.join(', ')}`);
  const unexpected = [...tensors.keys()].filter((k) => !used.has(k) && !IGNORED_ON_LOAD.test(k));
  return { values, unexpected };
}

/** Bytes compared at a time when both tensors are on disk, so that comparing two embeddings holds neither whole. */
const COMPARE_CHUNK = 16 << 20;

/** Whether two checkpoint tensors hold the same shape and values (as torch.equal: stored bytes, or decoded values). */
export function sameTensorValues(a: LazyTensor | RawTensor, b: LazyTensor | RawTensor): boolean {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) return false;
  if (a.dtype === b.dtype && 'readBytes' in a && 'readBytes' in b && a.readBytes && b.readBytes) {
    const bytes = a.shape.reduce((n, d) => n * d, 1) * dtypeBytes(a.dtype);
    for (let at = 0; at < bytes; at += COMPARE_CHUNK) {
      const n = Math.min(COMPARE_CHUNK, bytes - at);
      if (Buffer.compare(a.readBytes(at, n), b.readBytes(at, n)) !== 0) return false;
    }
    return true;
  }
  const x = 'data' in a ? a.data : a.read();
  const y = 'data' in b ? b.data : b.read();
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}
