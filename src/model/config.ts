/**
 * T5Config: the fields of HF `config.json` that shape a T5, with HF's defaults (transformers T5Config) for the
 * ones a file leaves out, read as both generations of transformers write them. Unknown fields are kept so a saved
 * config round-trips; a field that would change the computation in a way this T5 does not implement is refused.
 */
import * as fs from 'node:fs';
import { FormatError } from '../errors.js';
import { parseJsonObject } from '../fsutil.js';
import { floatLiteralKeys, FLOAT_CONFIG_FIELDS, stringifyConfig } from './config_json.js';

export type ActivationName = 'relu' | 'gelu_new' | 'gelu' | 'silu' | 'gelu_pytorch_tanh';

const ACTIVATIONS: ReadonlySet<string> = new Set(['relu', 'gelu_new', 'gelu', 'silu', 'swish', 'gelu_pytorch_tanh']);

export interface T5ConfigFields {
  vocab_size: number;
  d_model: number;
  d_kv: number;
  d_ff: number;
  num_layers: number;
  num_decoder_layers: number;
  num_heads: number;
  relative_attention_num_buckets: number;
  relative_attention_max_distance: number;
  dropout_rate: number;
  layer_norm_epsilon: number;
  initializer_factor: number;
  feed_forward_proj: string;
  /** The LM head is the shared embedding (no `lm_head.weight` of its own). */
  tie_word_embeddings: boolean;
  /**
   * The decoder output is scaled by d_model^-0.5 before the LM head (T5 v1.0: yes; v1.1, flan-t5: no). transformers
   * 5.x writes it; a config without it means `tie_word_embeddings`, as transformers 4.x read it.
   */
  scale_decoder_outputs: boolean;
  decoder_start_token_id: number;
  pad_token_id: number;
  eos_token_id: number;
}

const DEFAULTS: Omit<T5ConfigFields, 'num_decoder_layers' | 'scale_decoder_outputs'> = {
  vocab_size: 32128,
  d_model: 512,
  d_kv: 64,
  d_ff: 2048,
  num_layers: 6,
  num_heads: 8,
  relative_attention_num_buckets: 32,
  relative_attention_max_distance: 128,
  dropout_rate: 0.1,
  layer_norm_epsilon: 1e-6,
  initializer_factor: 1.0,
  feed_forward_proj: 'relu',
  tie_word_embeddings: true,
  decoder_start_token_id: 0,
  pad_token_id: 0,
  eos_token_id: 1,
};

/** HF MT5Config's defaults where they differ from T5's. */
const MT5_DEFAULTS: Partial<T5ConfigFields> = {
  vocab_size: 250112,
  d_ff: 1024,
  num_layers: 8,
  num_heads: 6,
  feed_forward_proj: 'gated-gelu',
  tie_word_embeddings: false,
};

const INTEGER_FIELDS = [
  'vocab_size',
  'd_model',
  'd_kv',
  'd_ff',
  'num_layers',
  'num_decoder_layers',
  'num_heads',
  'relative_attention_num_buckets',
  'relative_attention_max_distance',
  'decoder_start_token_id',
  'pad_token_id',
  'eos_token_id',
] as const;

export class T5Config implements T5ConfigFields {
  vocab_size!: number;
  d_model!: number;
  d_kv!: number;
  d_ff!: number;
  num_layers!: number;
  num_decoder_layers!: number;
  num_heads!: number;
  relative_attention_num_buckets!: number;
  relative_attention_max_distance!: number;
  dropout_rate!: number;
  layer_norm_epsilon!: number;
  initializer_factor!: number;
  feed_forward_proj!: string;
  tie_word_embeddings!: boolean;
  scale_decoder_outputs!: boolean;
  decoder_start_token_id!: number;
  pad_token_id!: number;
  eos_token_id!: number;
  /** Activation of the feed-forward block, parsed from `feed_forward_proj` as HF does. */
  readonly denseActFn: ActivationName;
  readonly isGatedAct: boolean;
  /** Every field of the source config, including those this class does not use. */
  private readonly extra: Record<string, unknown>;
  /** Fields the source wrote as floats, written as floats again (see config_json.ts). */
  private readonly floatFields: ReadonlySet<string>;

  constructor(fields: Partial<T5ConfigFields> & Record<string, unknown> = {}, source = 'config', floatFields: Iterable<string> = []) {
    const given = stripUndefined(fields);
    refuseUnimplemented(given, source);
    const isMt5 = given.model_type === 'mt5';
    const merged: Record<string, unknown> = { ...DEFAULTS, ...(isMt5 ? MT5_DEFAULTS : {}), ...given };
    if (merged.num_decoder_layers === undefined || merged.num_decoder_layers === null) merged.num_decoder_layers = merged.num_layers;
    // As transformers 5.x: without its own field, scaling follows `tie_word_embeddings` unless that is false; mT5
    // never scales.
    if (merged.scale_decoder_outputs === undefined) merged.scale_decoder_outputs = !isMt5 && given.tie_word_embeddings !== false;
    // 5.x may write eos_token_id as a list; T5 has one end token.
    if (Array.isArray(merged.eos_token_id) && new Set(merged.eos_token_id).size === 1) merged.eos_token_id = merged.eos_token_id[0];
    // HF accepts null for eos/pad/start ids in odd configs; T5 always uses 0/1.
    for (const key of ['decoder_start_token_id', 'pad_token_id', 'eos_token_id'] as const) {
      if (merged[key] === null) merged[key] = DEFAULTS[key];
    }
    for (const key of INTEGER_FIELDS) {
      const v = merged[key];
      const min = key.endsWith('token_id') ? 0 : 1;
      // Generous bounds that no real T5 comes near; they stop a damaged config from asking for absurd allocations.
      const max = key === 'num_layers' || key === 'num_decoder_layers' ? 1024 : 1 << 24;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
        throw new FormatError(`${source}: field "${key}" must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
      }
    }
    for (const key of ['dropout_rate', 'layer_norm_epsilon', 'initializer_factor'] as const) {
      const v = merged[key];
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
        throw new FormatError(`${source}: field "${key}" must be a number ≥ 0, got ${JSON.stringify(v)}`);
    }
    if ((merged.dropout_rate as number) >= 1)
      throw new FormatError(`${source}: field "dropout_rate" must be below 1, got ${merged.dropout_rate}`);
    for (const key of ['tie_word_embeddings', 'scale_decoder_outputs'] as const) {
      if (typeof merged[key] !== 'boolean') throw new FormatError(`${source}: field "${key}" must be true or false`);
    }
    const proj = merged.feed_forward_proj;
    if (typeof proj !== 'string') throw new FormatError(`${source}: field "feed_forward_proj" must be a string`);
    const parts = proj.split('-');
    const isGated = parts[0] === 'gated';
    const act = parts[parts.length - 1]!;
    if ((parts.length > 1 && !isGated) || parts.length > 2 || !ACTIVATIONS.has(act)) {
      throw new FormatError(
        `${source}: feed_forward_proj "${proj}" is not a valid activation; expected "relu", "gated-gelu" or ` +
          `"[gated-]{relu,gelu,gelu_new,silu}"`,
      );
    }
    Object.assign(this, merged);
    this.extra = merged;
    this.floatFields = new Set([...FLOAT_CONFIG_FIELDS, ...floatFields]);
    this.isGatedAct = isGated;
    // HF keeps "gated-gelu" meaning the tanh approximation for backwards compatibility.
    const resolved = proj === 'gated-gelu' ? 'gelu_new' : act === 'swish' ? 'silu' : act;
    this.denseActFn = resolved as ActivationName;
  }

  /** Width of the attention projections (`num_heads * d_kv`), which may differ from `d_model`. */
  get innerDim(): number {
    return this.num_heads * this.d_kv;
  }

  /** Reads a config.json; `fallback` supplies fields the file lacks (generation_config.json's token ids, say). */
  static fromFile(file: string, fallback: Record<string, unknown> = {}): T5Config {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf-8');
    } catch (e) {
      throw new FormatError(`${file}: cannot read the model config (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const fields = parseJsonObject(text, file);
    return new T5Config({ ...fallback, ...stripUndefined(fields) }, file, floatLiteralKeys(text, fields));
  }

  /** Every field of the source with the values this model uses: `new T5Config(c.toFields())` is the same model. */
  toFields(): Record<string, unknown> {
    const out: Record<string, unknown> = { ...this.extra };
    for (const key of OWN_FIELDS) out[key] = (this as unknown as Record<string, unknown>)[key];
    return out;
  }

  /** A copy with some fields changed (a vocabulary size, say), keeping which fields are floats. */
  withFields(fields: Partial<T5ConfigFields>, source = 'config'): T5Config {
    return new T5Config({ ...this.toFields(), ...fields }, source, this.floatFields);
  }

  /**
   * The config as HF writes it, for float32 weights, in a form transformers 4.x and 5.x both rebuild this model
   * from: 4.x knows only `tie_word_embeddings`, which there means "scale the decoder output" as well as "tie the
   * head", so it is written as the scaling; 5.x reads `scale_decoder_outputs` and unties a head whose own
   * `lm_head.weight` differs from the embedding (`headWeightWritten` says when the checkpoint must carry it).
   */
  toJSON(): Record<string, unknown> {
    const out = this.toFields();
    out.tie_word_embeddings = this.scale_decoder_outputs;
    out.architectures ??= ['T5ForConditionalGeneration'];
    out.model_type ??= 't5';
    out.is_encoder_decoder = true;
    out.dense_act_fn = this.denseActFn;
    out.is_gated_act = this.isGatedAct;
    out.classifier_dropout ??= 0;
    out.dtype = 'float32';
    out.torch_dtype = 'float32';
    return out;
  }

  /** config.json's text: toJSON with float fields written as floats (`1.0`), as transformers 5.x requires. */
  toJSONText(): string {
    return this.jsonText(this.toJSON());
  }

  /** The text of a config object derived from this one (an export's, say), its float fields written as floats. */
  jsonText(value: Record<string, unknown>): string {
    return stringifyConfig(value, this.floatFields);
  }

  /**
   * Whether a checkpoint of this model stores `lm_head.weight`: when the head is untied, and when the written
   * `tie_word_embeddings` is false (an unscaled tied head), so that 4.x finds the head it then expects.
   */
  get headWeightWritten(): boolean {
    return !this.tie_word_embeddings || !this.scale_decoder_outputs;
  }
}

const OWN_FIELDS = [...Object.keys(DEFAULTS), 'num_decoder_layers', 'scale_decoder_outputs'];

/** Model types whose computation is this T5's (mT5 is T5 v1.1 with another vocabulary). */
const MODEL_TYPES: ReadonlySet<string> = new Set(['t5', 'mt5']);
/** Architectures whose checkpoint is a T5 encoder-decoder with an LM head, named as this model names its weights. */
const ARCHITECTURES: ReadonlySet<string> = new Set([
  'T5ForConditionalGeneration',
  'T5Model',
  'T5WithLMHeadModel',
  'MT5ForConditionalGeneration',
]);
const DTYPES: ReadonlySet<string> = new Set(['float32', 'float16', 'bfloat16', 'float64', 'auto']);

/** Stops at a field that would make HF compute something this T5 does not: one line naming the field. */
function refuseUnimplemented(f: Record<string, unknown>, source: string): void {
  const refuse = (field: string, why: string): never => {
    throw new FormatError(`${source}: field "${field}" ${why}`);
  };
  if (f.model_type !== undefined && !MODEL_TYPES.has(String(f.model_type)))
    refuse('model_type', `is ${JSON.stringify(f.model_type)}; t5cls implements T5 ("t5", and "mt5")`);
  if (Array.isArray(f.architectures) && f.architectures.length > 0 && !f.architectures.some((a) => ARCHITECTURES.has(String(a))))
    refuse('architectures', `is ${JSON.stringify(f.architectures)}; t5cls loads T5ForConditionalGeneration checkpoints`);
  if (f.quantization_config !== undefined && f.quantization_config !== null)
    refuse('quantization_config', 'is set: t5cls reads unquantized weights (save the model without quantization)');
  if (f.pruned_heads && typeof f.pruned_heads === 'object' && Object.keys(f.pruned_heads).length > 0)
    refuse('pruned_heads', 'lists pruned attention heads, which t5cls does not implement');
  if (f.tie_encoder_decoder === true) refuse('tie_encoder_decoder', 'is true: t5cls keeps separate encoder and decoder weights');
  if (Array.isArray(f.eos_token_id) && new Set(f.eos_token_id).size > 1)
    refuse('eos_token_id', `lists several end tokens ${JSON.stringify(f.eos_token_id)}; t5cls generates up to one`);
  for (const key of ['dtype', 'torch_dtype']) {
    if (f[key] !== undefined && f[key] !== null && !DTYPES.has(String(f[key])))
      refuse(key, `is ${JSON.stringify(f[key])}; expected one of ${[...DTYPES].join(', ')}`);
  }
}

function stripUndefined<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/**
 * Named model shapes for training from scratch (`--model-config tiny|mini|small|base|large|xl`). tiny to large are
 * T5 v1.0's (relu feed-forward, LM head tied to the embedding); xl is flan-t5-xl's (T5 v1.1: gated-gelu, its own
 * LM head). The vocabulary comes from the tokenizer.
 */
export const NAMED_CONFIGS: Record<string, Partial<T5ConfigFields>> = {
  tiny: {
    d_model: 64,
    d_kv: 16,
    d_ff: 256,
    num_layers: 2,
    num_decoder_layers: 2,
    num_heads: 4,
    relative_attention_num_buckets: 32,
    relative_attention_max_distance: 128,
  },
  mini: {
    d_model: 128,
    d_kv: 32,
    d_ff: 512,
    num_layers: 4,
    num_decoder_layers: 4,
    num_heads: 4,
    relative_attention_num_buckets: 32,
    relative_attention_max_distance: 128,
  },
  small: { d_model: 512, d_kv: 64, d_ff: 2048, num_layers: 6, num_decoder_layers: 6, num_heads: 8 },
  base: { d_model: 768, d_kv: 64, d_ff: 3072, num_layers: 12, num_decoder_layers: 12, num_heads: 12 },
  large: { d_model: 1024, d_kv: 64, d_ff: 4096, num_layers: 24, num_decoder_layers: 24, num_heads: 16 },
  xl: {
    d_model: 2048,
    d_kv: 64,
    d_ff: 5120,
    num_layers: 24,
    num_decoder_layers: 24,
    num_heads: 32,
    relative_attention_num_buckets: 32,
    relative_attention_max_distance: 128,
    feed_forward_proj: 'gated-gelu',
    tie_word_embeddings: false,
  },
};
