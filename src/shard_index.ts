/** `model.safetensors.index.json`: how transformers lists the shards of a checkpoint too large for one file. */
import * as fs from 'node:fs';
import { FormatError } from './errors.js';

/** The index of a sharded checkpoint, as transformers writes it beside its shards. */
export const SHARD_INDEX_FILE = 'model.safetensors.index.json';

/**
 * The shard files a `model.safetensors.index.json` names (its `weight_map` values), each once, in order; names that
 * could leave the folder are refused.
 */
export function readShardIndex(indexFile: string): { weightMap: Record<string, string>; shards: string[] } {
  let weightMap: unknown;
  try {
    weightMap = JSON.parse(fs.readFileSync(indexFile, 'utf-8')).weight_map;
  } catch (e) {
    throw new FormatError(`${indexFile}: not valid JSON (${(e as Error).message})`);
  }
  if (!weightMap || typeof weightMap !== 'object' || Array.isArray(weightMap)) throw new FormatError(`${indexFile}: missing "weight_map"`);
  const shards = [...new Set(Object.values(weightMap as Record<string, unknown>))];
  for (const shard of shards) {
    if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\') || shard.startsWith('.')) {
      throw new FormatError(`${indexFile}: invalid shard file name ${JSON.stringify(shard)}`);
    }
  }
  return { weightMap: weightMap as Record<string, string>, shards: shards as string[] };
}
