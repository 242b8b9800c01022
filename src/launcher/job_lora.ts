/**
 * A LoRA job's part of the job folder: job.json's `lora` block (r, alpha, dropout and target modules as t5cls
 * resolved them, 'all-linear' expanded as PEFT saves it; the base its adapters name) and the adapter the job starts
 * from (`adapter/`), written by t5cls as its own LoRA run would start: a fresh adapter drawn from --seed, or the
 * --adapter folder's tensors. Its adapter_config.json is the one every checkpoint of the job carries.
 */
import * as path from 'node:path';
import type { T5Config } from '../model/config.js';
import { t5Parameters } from '../model/parameters.js';
import { LoraAdapter, readAdapter, writeAdapterFiles, type AdapterBase, type LoraConfig } from '../model/lora/index.js';

/** The starting adapter's folder in the job. */
export const JOB_ADAPTER_DIR = 'adapter';

/** job.json's `lora` block (python/t5cls_accelerate/lora.py reads it). */
export interface JobLora {
  r: number;
  alpha: number;
  dropout: number;
  /** As adapter_config.json records them. */
  targetModules: string[];
  /** What the adapters' base_model_name_or_path and revision name: a Hub id as given, or the base folder (absolute). */
  base: AdapterBase;
  /** The starting adapter, relative to the job folder. */
  adapter: string;
  /** The --adapter folder trained further (absolute), or null for a fresh adapter. */
  from: string | null;
}

export interface LoraJobSpec {
  config: LoraConfig;
  base: AdapterBase;
  /** --adapter's folder, absolute. */
  from?: string;
  /** --seed: a fresh adapter's lora_A is drawn from it, as train draws it. */
  seed: number;
}

export function jobLoraBlock(spec: LoraJobSpec, modelConfig: T5Config): JobLora {
  const { r, alpha, dropout } = spec.config;
  return {
    r,
    alpha,
    dropout,
    targetModules: spec.config.savedTargetModules(t5Parameters(modelConfig)),
    base: spec.base,
    adapter: JOB_ADAPTER_DIR,
    from: spec.from ?? null,
  };
}

/** Writes the job's starting adapter into `dir` (the job's `adapter/` folder); needs a TensorFlow.js backend. */
export function writeInitialAdapter(dir: string, spec: LoraJobSpec, modelConfig: T5Config): void {
  const layout = t5Parameters(modelConfig);
  const adapter = spec.from
    ? readAdapter(path.resolve(spec.from), { layout }, { base: spec.base })
    : new LoraAdapter({ layout }, spec.config, { seed: spec.seed, base: spec.base });
  try {
    writeAdapterFiles(dir, adapter);
  } finally {
    adapter.dispose();
  }
}
