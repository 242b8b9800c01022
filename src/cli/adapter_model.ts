/**
 * The model `test`, `predict`, `export` and `merge` run: a checkpoint folder, or a PEFT LoRA adapter folder (one a
 * LoRA run saved, or one PEFT wrote) applied to its base model — `--model`, else the base its adapter_config.json
 * names (a folder, or a Hub id fetched into the cache).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CheckpointParams } from '../params/checkpoint.js';
import type { AdapterSourceParams } from '../params/lora.js';
import { CHECKPOINT_META, readCheckpointMeta, type CheckpointMeta } from '../checkpoint_meta.js';
import { writeFolderAtomic, writeJsonAtomic } from '../fsutil.js';
import { ADAPTER_CONFIG_FILE, fromPretrainedWithAdapter, isAdapterFolder, readAdapterBase } from '../model/lora/index.js';
import { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import { UsageError } from '../errors.js';
import { hasTokenizerFiles, T5Tokenizer } from '../tokenizer/index.js';
import { initBackend } from '../engine/init.js';
import { inferenceTensorBytes, resolveCheckpoint, resolveModelDir } from './shared.js';

export interface ModelFolders {
  /** The folder whose t5cls.json (classes, prefix) the command reads: the checkpoint, or the adapter folder. */
  dir: string;
  meta?: CheckpointMeta;
  /** The HF model folder: the checkpoint itself, or the adapter's base. */
  modelDir: string;
  /** The adapter folder, when the model is a base with an adapter. */
  adapterDir?: string;
  /** Where the tokenizer comes from: --tokenizer, else the checkpoint or adapter folder, else the adapter's base. */
  tokenizerDir: string;
}

export type ModelFolderParams = Partial<CheckpointParams> & AdapterSourceParams & { revision?: string; tokenizer?: string };

/** The folder `--adapter` names, checked to be a PEFT adapter folder. */
export function adapterFolderOption(adapter: string): string {
  const dir = path.resolve(adapter);
  if (!fs.existsSync(dir)) throw new UsageError(`--adapter ${adapter}: no such folder`);
  if (!isAdapterFolder(dir)) throw new UsageError(`--adapter ${adapter}: no ${ADAPTER_CONFIG_FILE} (not a PEFT adapter folder)`);
  return dir;
}

/** The base model an adapter folder's config names; refused in one line when it names none (--model must). */
export function namedAdapterBase(adapterDir: string): { nameOrPath: string; revision: string | null } {
  const configFile = path.join(adapterDir, ADAPTER_CONFIG_FILE);
  const { nameOrPath, revision } = readAdapterBase(configFile);
  if (nameOrPath === null) throw new UsageError(`${configFile}: base_model_name_or_path is null: pass the base model with --model`);
  return { nameOrPath, revision };
}

export async function resolveModelFolders(p: ModelFolderParams, say: (line: string) => void): Promise<ModelFolders> {
  let dir: string;
  let meta: CheckpointMeta | undefined;
  if (p.adapter !== undefined) {
    if (p.weights !== undefined || p.weightsName !== undefined)
      throw new UsageError('--adapter names the folder to use: leave out --weights and --weights-name');
    dir = adapterFolderOption(p.adapter);
    meta = readCheckpointMeta(dir);
  } else {
    ({ dir, meta } = resolveCheckpoint({ saveWeightsPath: 'weights', ...p }));
  }
  const tokenizerOf = (fallback: string) => (p.tokenizer ? path.resolve(p.tokenizer) : hasTokenizerFiles(dir) ? dir : fallback);
  if (!isAdapterFolder(dir)) {
    if (p.model !== undefined)
      throw new UsageError(`--model is the base of a LoRA adapter, but ${dir} is a model folder (no ${ADAPTER_CONFIG_FILE}): leave it out`);
    return { dir, meta, modelDir: dir, tokenizerDir: tokenizerOf(dir) };
  }
  const named = p.model === undefined ? namedAdapterBase(dir) : undefined;
  const base = p.model ?? named!.nameOrPath;
  if (named) say(`adapter ${dir} on its base ${base}`);
  const modelDir = await resolveModelDir(base, p.revision ?? named?.revision ?? 'main', say);
  return { dir, meta, modelDir, adapterDir: dir, tokenizerDir: tokenizerOf(modelDir) };
}

/** The model to run inference with: the checkpoint, or the base with the adapter merged in. */
export function loadInferenceModel(f: ModelFolders, say: (line: string) => void): T5ForConditionalGeneration {
  if (!f.adapterDir) return T5ForConditionalGeneration.fromPretrained(f.modelDir, { onWarning: say });
  return fromPretrainedWithAdapter(f.modelDir, f.adapterDir, { merge: true, onWarning: say });
}

/**
 * Writes the model of `f` with its adapter merged in as a plain HF model folder `out` (config, weights, tokenizer
 * files, and t5cls.json when the adapter folder has one), all at once; an existing `out` is refused. Starts the
 * engine the base model needs.
 */
export async function writeMergedFolder(out: string, f: ModelFolders, say: (line: string) => void): Promise<void> {
  if (fs.existsSync(out)) throw new UsageError(`${out} already exists; a model folder is never overwritten`);
  await initBackend('auto', { log: say, tensorBytes: inferenceTensorBytes(f.modelDir, 1, [[1]], [[1]]) });
  const tokenizer = await T5Tokenizer.fromPretrained(f.tokenizerDir);
  const model = loadInferenceModel(f, say);
  try {
    await writeFolderAtomic(out, async (tmp) => {
      model.savePretrained(tmp);
      tokenizer.savePretrained(tmp);
      if (f.meta) writeJsonAtomic(path.join(tmp, CHECKPOINT_META), f.meta);
    });
  } finally {
    model.dispose();
  }
}
