/**
 * `train` with a LoRA adapter: a new one (`--lora-r`, `--lora-alpha`, `--lora-dropout`, `--lora-target-modules`, as
 * PEFT's LoraConfig names them) or an existing PEFT adapter folder trained further (`--adapter`). The base model's
 * weights stay frozen; the run's checkpoints and states hold the adapter, whose config names the base.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { OptionName, TrainParams } from '../params/commands.js';
import {
  ADAPTER_CONFIG_FILE,
  ALL_LINEAR,
  isAdapterFolder,
  LoraAdapter,
  LoraConfig,
  loadAdapter,
  readAdapterBase,
  readAdapterConfig,
  type AdapterBase,
} from '../model/lora/index.js';
import type { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import { UsageError } from '../errors.js';

const LORA_OPTIONS = ['loraAlpha', 'loraDropout', 'loraTargetModules'] as const;
const FLAGS: Record<(typeof LORA_OPTIONS)[number] | 'loraR', string> = {
  loraR: '--lora-r',
  loraAlpha: '--lora-alpha',
  loraDropout: '--lora-dropout',
  loraTargetModules: '--lora-target-modules',
};

/** `--lora-target-modules`: 'all-linear', or module names separated by commas. */
export function parseTargetModules(text: string): string[] | typeof ALL_LINEAR {
  if (text.trim() === ALL_LINEAR) return ALL_LINEAR;
  const names = text.split(',').map((t) => t.trim());
  if (names.some((n) => !n))
    throw new UsageError(`--lora-target-modules ${text}: expected module names separated by commas, or ${ALL_LINEAR}`);
  return names;
}

/** The adapter folder `--adapter` names, checked. */
function adapterFolder(p: TrainParams): string {
  const dir = path.resolve(p.adapter!);
  if (!fs.existsSync(dir)) throw new UsageError(`--adapter ${p.adapter}: no such folder`);
  if (!isAdapterFolder(dir)) throw new UsageError(`--adapter ${p.adapter}: no ${ADAPTER_CONFIG_FILE} (not a PEFT adapter folder)`);
  return dir;
}

/**
 * The LoRA settings of the run, or undefined for full fine-tuning. Options that cannot go together are refused in
 * one line: --lora-* beside --adapter (the folder's config sets them), --lora-* without --lora-r, LoRA on a random
 * initialisation (an adapter is trained on a pretrained base).
 */
export function trainingLoraConfig(p: TrainParams, given: Set<OptionName<'train'>>): LoraConfig | undefined {
  const set = LORA_OPTIONS.filter((o) => given.has(o));
  if (p.adapter !== undefined) {
    const clash = [...(p.loraR !== undefined ? (['loraR'] as const) : []), ...set];
    if (clash.length) throw new UsageError(`${FLAGS[clash[0]!]} cannot be combined with --adapter (its ${ADAPTER_CONFIG_FILE} sets it)`);
  } else if (p.loraR === undefined) {
    if (set.length) throw new UsageError(`${FLAGS[set[0]!]} needs --lora-r (the adapter's rank)`);
    return undefined;
  }
  if (p.init === 'random')
    throw new UsageError(
      `LoRA trains an adapter on a pretrained model: --init random cannot be combined with ${p.adapter !== undefined ? '--adapter' : '--lora-r'}`,
    );
  if (p.adapter !== undefined) return readAdapterConfig(path.join(adapterFolder(p), ADAPTER_CONFIG_FILE));
  return new LoraConfig({ r: p.loraR, alpha: p.loraAlpha, dropout: p.loraDropout, targetModules: parseTargetModules(p.loraTargetModules) });
}

/** With `--adapter` and no `--model`: the base model the adapter's config names (undefined otherwise). */
export function adapterBaseModel(
  p: TrainParams,
  given: Set<OptionName<'train'>>,
): { nameOrPath: string; revision: string | null } | undefined {
  if (p.adapter === undefined || given.has('model')) return undefined;
  const file = path.join(adapterFolder(p), ADAPTER_CONFIG_FILE);
  const base = readAdapterBase(file);
  if (base.nameOrPath === null) throw new UsageError(`${file}: base_model_name_or_path is null: pass the base model with --model`);
  return { nameOrPath: base.nameOrPath, revision: base.revision };
}

/**
 * Attaches the run's adapter to `model`: the `--adapter` folder's, or a fresh one (lora_A drawn from `--seed`).
 * `base` is what its adapter_config.json will name: the Hub id as given, or the base folder's absolute path.
 */
export function attachTrainingAdapter(
  p: TrainParams,
  model: T5ForConditionalGeneration,
  config: LoraConfig,
  base: AdapterBase,
): LoraAdapter {
  if (p.adapter !== undefined) return loadAdapter(adapterFolder(p), model, { base });
  const adapter = new LoraAdapter(model, config, { seed: p.seed, base });
  model.attachAdapter(adapter);
  return adapter;
}

/** "LoRA r 16 on q, v: 294,912 trained parameters of 60,801,536 (0.49%)", as PEFT's print_trainable_parameters. */
export function describeAdapter(adapter: LoraAdapter, model: T5ForConditionalGeneration): string {
  let all = 0;
  for (const v of model.namedParameters().values()) all += v.size;
  const trained = adapter.parameterCount;
  const { r, alpha, dropout } = adapter.config;
  return (
    `LoRA r ${r}, alpha ${alpha}${dropout ? `, dropout ${dropout}` : ''} on ${adapter.savedTargetModules.join(', ')}: ` +
    `${trained.toLocaleString('en-US')} trained parameters of ${(all + trained).toLocaleString('en-US')} ` +
    `(${((100 * trained) / (all + trained)).toFixed(2)}%); the base model's weights are frozen`
  );
}
