/**
 * Checkpoints: an HF model folder (config.json, model.safetensors, tokenizer files) plus `t5cls.json` (base model,
 * prefix, classes map, options, metrics; see checkpoint_meta.ts). A LoRA run's checkpoint is PEFT's adapter folder
 * (adapter_config.json naming the base, adapter_model.safetensors) with the same tokenizer files and `t5cls.json`. A checkpoint is written into a temp folder and renamed into place when
 * complete, so an existing checkpoint is never overwritten and a crash never leaves a half-written one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFolderAtomic, writeJsonAtomic } from '../fsutil.js';
import { T5clsError, UsageError } from '../errors.js';
import { CHECKPOINT_META, type CheckpointMeta } from '../checkpoint_meta.js';
import type { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import { writeAdapterFiles } from '../model/lora/index.js';

export interface SavableTokenizer {
  savePretrained(dir: string): void | Promise<void>;
}

export async function saveCheckpoint(
  dir: string,
  model: T5ForConditionalGeneration,
  tokenizer: SavableTokenizer,
  meta: CheckpointMeta,
): Promise<void> {
  if (fs.existsSync(dir)) throw new UsageError(`${dir} already exists; a checkpoint is never overwritten`);
  try {
    await writeFolderAtomic(dir, async (tmp) => {
      if (model.adapter) writeAdapterFiles(tmp, model.adapter);
      else model.savePretrained(tmp);
      await tokenizer.savePretrained(tmp);
      writeJsonAtomic(path.join(tmp, CHECKPOINT_META), meta);
    });
  } catch (e) {
    throw new T5clsError(`could not save the checkpoint ${dir}: ${(e as Error).message}; earlier checkpoints are intact`, 1, { cause: e });
  }
}

/** A checkpoint or run name used as a folder name: no separators, no `..`, no NUL. */
export function assertSafeName(name: string, what: string): void {
  if (!name || name === '.' || name === '..' || /[/\\\0]/.test(name) || path.isAbsolute(name)) {
    throw new UsageError(`${what} "${name}" must be a plain folder name (no "/", "\\", ".." or NUL)`);
  }
}
