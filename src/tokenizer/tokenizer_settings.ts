/** The settings t5cls reads from a tokenizer folder's tokenizer_config.json (HF transformers 4.x or 5.x). */
import * as path from 'node:path';
import { FormatError } from '../errors.js';
import { readJsonObject } from '../fsutil.js';

export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

export interface TokenizerSettings {
  /**
   * Number of `<extra_id_N>` sentinels the config states: `extra_ids`, or else how many sentinels its special-token
   * list names (`additional_special_tokens` in 4.x, `extra_special_tokens` in 5.x); undefined when it says nothing.
   */
  extraIds: number | undefined;
  cleanUpTokenizationSpaces: boolean;
  modelMaxLength?: number;
  legacy?: boolean;
}

const SENTINEL = /^<extra_id_\d+>$/;

/** Sentinels in a special-token list: an array of strings or AddedToken objects, or (5.x) an object of them. */
function countSentinels(list: unknown): number | undefined {
  if (list === null || typeof list !== 'object') return undefined;
  const entries = Array.isArray(list) ? list : Object.values(list);
  const contents = entries.map((e) => (typeof e === 'string' ? e : (e as { content?: unknown } | null)?.content));
  const n = contents.filter((c) => typeof c === 'string' && SENTINEL.test(c)).length;
  return n > 0 ? n : undefined;
}

export function readSettings(dir: string): TokenizerSettings {
  const file = path.join(dir, TOKENIZER_CONFIG_FILE);
  const settings: TokenizerSettings = { extraIds: undefined, cleanUpTokenizationSpaces: true };
  const cfg = readJsonObject(file);
  if (!cfg) return settings;
  if (cfg.extra_ids !== undefined) {
    if (!Number.isInteger(cfg.extra_ids) || (cfg.extra_ids as number) < 0) {
      throw new FormatError(`${file}: field "extra_ids" must be an integer ≥ 0, got ${JSON.stringify(cfg.extra_ids)}`);
    }
    settings.extraIds = cfg.extra_ids as number;
  } else {
    settings.extraIds = countSentinels(cfg.additional_special_tokens) ?? countSentinels(cfg.extra_special_tokens);
  }
  if (cfg.clean_up_tokenization_spaces !== undefined) {
    if (typeof cfg.clean_up_tokenization_spaces !== 'boolean') {
      throw new FormatError(`${file}: field "clean_up_tokenization_spaces" must be true or false`);
    }
    settings.cleanUpTokenizationSpaces = cfg.clean_up_tokenization_spaces;
  }
  // HF writes a huge placeholder (1e30) when a checkpoint has no limit; only a real limit is kept.
  if (Number.isInteger(cfg.model_max_length) && (cfg.model_max_length as number) > 0 && (cfg.model_max_length as number) < 1e12) {
    settings.modelMaxLength = cfg.model_max_length as number;
  }
  if (typeof cfg.legacy === 'boolean') settings.legacy = cfg.legacy;
  return settings;
}
