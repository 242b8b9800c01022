/**
 * PEFT's adapter_config.json for a LoRA adapter of a T5. Written with the fields PEFT reads (floats kept floats, as
 * PEFT writes them); read with a refusal, in one line naming the file and the field, of every setting that would
 * make PEFT compute something this implementation does not (DoRA, rsLoRA, per-layer ranks, extra trained modules, …)
 * rather than a silently different model.
 */
import * as fs from 'node:fs';
import { FormatError } from '../../errors.js';
import { parseJsonObject } from '../../fsutil.js';
import { ALL_LINEAR, LoraConfig, T5_DEFAULT_TARGETS } from './config.js';
import type { AdapterBase, LoraAdapter } from './adapter.js';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';

/** PEFT's task type for T5ForConditionalGeneration (`PeftModelForSeq2SeqLM`): written unless told otherwise. */
export const SEQ_2_SEQ_LM = 'SEQ_2_SEQ_LM';

/** PEFT's float fields of LoraConfig: written `8.0`, not `8`, as Python's json writes a float. */
const FLOAT_FIELDS = ['lora_alpha', 'lora_dropout'];

/** adapter_config.json for `adapter`, keys sorted as PEFT writes them (`json.dumps(sort_keys=True, indent=2)`). */
export function adapterConfigText(
  adapter: LoraAdapter,
  baseModelNameOrPath: string | null,
  taskType: typeof SEQ_2_SEQ_LM | null,
  revision: string | null = null,
): string {
  const { r, alpha, dropout } = adapter.config;
  const fields: Record<string, unknown> = {
    alpha_pattern: {},
    base_model_name_or_path: baseModelNameOrPath,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: alpha,
    lora_dropout: dropout,
    modules_to_save: null,
    peft_type: 'LORA',
    r,
    rank_pattern: {},
    revision,
    target_modules: adapter.savedTargetModules,
    task_type: taskType,
    use_dora: false,
    use_rslora: false,
  };
  let text = JSON.stringify(fields, null, 2);
  for (const field of FLOAT_FIELDS) text = text.replace(new RegExp(`^(  "${field}": -?\\d+)(,?)$`, 'm'), '$1.0$2');
  return text + '\n';
}

/**
 * Settings of PEFT's LoraConfig that change what the adapter computes or trains, none of which t5cls implements:
 * each must be absent, null, false or empty.
 */
const UNSUPPORTED: Record<string, string> = {
  use_dora: 'DoRA',
  use_rslora: 'rank-stabilized scaling (lora_alpha/√r)',
  modules_to_save: 'modules trained in full beside the adapter',
  rank_pattern: 'a rank per layer',
  alpha_pattern: 'an alpha per layer',
  layers_to_transform: 'LoRA on some layers only',
  layers_pattern: 'LoRA on some layers only',
  fan_in_fan_out: 'transposed (Conv1D) weights',
  exclude_modules: 'excluded modules',
  lora_bias: 'a bias on lora_B',
  target_parameters: 'LoRA on parameters rather than modules',
  trainable_token_indices: 'trained token embeddings',
  layer_replication: 'replicated layers',
  alora_invocation_tokens: 'activated LoRA',
  use_qalora: 'QA-LoRA',
  use_bdlora: 'BD-LoRA',
  arrow_config: 'Arrow routing',
  kasa_config: 'KaSA',
  monteclora_config: 'MonteCLoRA',
  velora_config: 'VeLoRA',
  lora_ga_config: 'LoRA-GA',
  megatron_config: 'Megatron layers',
  loftq_config: 'LoftQ',
  eva_config: 'EVA',
  corda_config: 'CorDA',
};

/** init_lora_weights values that only choose the starting A and B (the others change the base model's weights). */
const PLAIN_INITS: unknown[] = [true, false, 'gaussian'];

function isUnset(value: unknown): boolean {
  if (value === undefined || value === null || value === false) return true;
  if (Array.isArray(value)) return value.length === 0;
  return typeof value === 'object' && Object.keys(value).length === 0;
}

function shown(value: unknown): string {
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** The LoraConfig of a PEFT adapter_config.json, or a FormatError naming `file` and the field it cannot take. */
export function readAdapterConfig(file: string): LoraConfig {
  const json = parseJsonObject(fs.readFileSync(file, 'utf-8'), file);
  const refuse = (field: string, why: string) => new FormatError(`${file}: ${field} is ${shown(json[field])}: ${why}`);
  if (json.peft_type !== 'LORA') throw refuse('peft_type', 'only LORA adapters are read');
  if (json.task_type != null && json.task_type !== SEQ_2_SEQ_LM) throw refuse('task_type', `expected ${SEQ_2_SEQ_LM} (or null) for a T5`);
  for (const [field, what] of Object.entries(UNSUPPORTED)) {
    if (!isUnset(json[field])) throw refuse(field, `${what} is not supported (plain LoRA only)`);
  }
  if ((json.bias ?? 'none') !== 'none') throw refuse('bias', 'trained biases are not supported (only "none")');
  if (json.init_lora_weights !== undefined && !PLAIN_INITS.includes(json.init_lora_weights)) {
    throw refuse('init_lora_weights', 'only true, false or "gaussian" are read (the others change the base weights)');
  }
  const { r, lora_alpha: alpha = 8, lora_dropout: dropout = 0 } = json;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) throw refuse('r', 'expected a whole number ≥ 1');
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) throw refuse('lora_alpha', 'expected a number');
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) throw refuse('lora_dropout', 'expected a number in [0, 1)');
  return new LoraConfig({ r, alpha, dropout, targetModules: targetModules(json.target_modules, refuse) });
}

function targetModules(value: unknown, refuse: (field: string, why: string) => FormatError): readonly string[] | typeof ALL_LINEAR {
  if (value == null) return T5_DEFAULT_TARGETS; // PEFT's default for the model type
  if (value === ALL_LINEAR) return ALL_LINEAR;
  if (typeof value === 'string') throw refuse('target_modules', 'a regular expression is not supported (list the module names)');
  if (!Array.isArray(value) || value.length === 0 || value.some((t) => typeof t !== 'string' || !t)) {
    throw refuse('target_modules', 'expected a non-empty list of module names');
  }
  return value as string[];
}

/** The base model an adapter_config.json names (base_model_name_or_path, revision), each null when absent. */
export function readAdapterBase(file: string): AdapterBase {
  const json = parseJsonObject(fs.readFileSync(file, 'utf-8'), file);
  const text = (field: string): string | null => {
    const value = json[field];
    if (value == null || value === '') return null;
    if (typeof value !== 'string') throw new FormatError(`${file}: ${field} is ${shown(value)}: expected a string or null`);
    return value;
  };
  return { nameOrPath: text('base_model_name_or_path'), revision: text('revision') };
}
