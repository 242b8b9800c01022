/**
 * `train` with a LoRA adapter: a new one (`--lora-r`, `--lora-alpha`, `--lora-dropout`, `--lora-target-modules`, as
 * PEFT's LoraConfig names them) or an existing PEFT adapter folder trained further (`--adapter`). The base model's
 * weights stay frozen; the run's checkpoints and states hold the adapter, whose config names the base.
 */
import * as path from 'node:path';
import type { OptionName, TrainParams } from '../params/commands.js';
import {
  ADAPTER_CONFIG_FILE,
  ALL_LINEAR,
  LoraAdapter,
  LoraConfig,
  loadAdapter,
  readAdapterConfig,
  type AdapterBase,
} from '../model/lora/index.js';
import type { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import { UsageError } from '../errors.js';
import { adapterFolderOption, namedAdapterBase } from './adapter_model.js';

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
  if (p.adapter !== undefined) return readAdapterConfig(path.join(adapterFolderOption(p.adapter), ADAPTER_CONFIG_FILE));
  return new LoraConfig({ r: p.loraR, alpha: p.loraAlpha, dropout: p.loraDropout, targetModules: parseTargetModules(p.loraTargetModules) });
}

/**
 * The options that name the run's model: as given, or with `--adapter` and no `--model`, the base (and its revision,
 * unless `--revision` is given) that the adapter's config names.
 */
export function trainingModelSource(p: TrainParams, given: Set<OptionName<'train'>>): TrainParams {
  if (p.adapter === undefined || given.has('model')) return p;
  const base = namedAdapterBase(adapterFolderOption(p.adapter));
  return { ...p, model: base.nameOrPath, revision: given.has('revision') ? p.revision : (base.revision ?? p.revision) };
}

/**
 * What the run's adapters name as their base (adapter_config.json's base_model_name_or_path and revision): the Hub
 * id as given, or the base folder's absolute path.
 */
export function adapterBaseOf(source: Pick<TrainParams, 'model' | 'revision'>, modelDir: string): AdapterBase {
  const local = path.resolve(source.model) === modelDir;
  return { nameOrPath: local ? modelDir : source.model, revision: source.revision === 'main' ? null : source.revision };
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
  if (p.adapter !== undefined) return loadAdapter(adapterFolderOption(p.adapter), model, { base });
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
