/**
 * T5Config: the fields of HF `config.json` that shape a T5, with HF's defaults (transformers T5Config) for the
 * ones a file leaves out. Unknown fields are kept so a saved config round-trips.
 */
import * as fs from 'node:fs';
import { FormatError } from '../errors.js';
import { parseJsonObject } from '../fsutil.js';

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
  tie_word_embeddings: boolean;
  decoder_start_token_id: number;
  pad_token_id: number;
  eos_token_id: number;
}

const DEFAULTS: Omit<T5ConfigFields, 'num_decoder_layers'> = {
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
  decoder_start_token_id!: number;
  pad_token_id!: number;
  eos_token_id!: number;
  /** Activation of the feed-forward block, parsed from `feed_forward_proj` as HF does. */
  readonly denseActFn: ActivationName;
  readonly isGatedAct: boolean;
  /** Every field of the source config, including those this class does not use. */
  private readonly extra: Record<string, unknown>;

  constructor(fields: Partial<T5ConfigFields> & Record<string, unknown> = {}, source = 'config') {
    const merged: Record<string, unknown> = { ...DEFAULTS, ...stripUndefined(fields) };
    if (merged.num_decoder_layers === undefined || merged.num_decoder_layers === null) merged.num_decoder_layers = merged.num_layers;
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
    if (typeof merged.tie_word_embeddings !== 'boolean')
      throw new FormatError(`${source}: field "tie_word_embeddings" must be true or false`);
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
    this.isGatedAct = isGated;
    // HF keeps "gated-gelu" meaning the tanh approximation for backwards compatibility.
    const resolved = proj === 'gated-gelu' ? 'gelu_new' : act === 'swish' ? 'silu' : act;
    this.denseActFn = resolved as ActivationName;
  }

  /** Width of the attention projections (`num_heads * d_kv`), which may differ from `d_model`. */
  get innerDim(): number {
    return this.num_heads * this.d_kv;
  }

  static fromFile(file: string): T5Config {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf-8');
    } catch (e) {
      throw new FormatError(`${file}: cannot read the model config (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    return new T5Config(parseJsonObject(text, file), file);
  }

  /** The config as HF writes it: every source field, with the T5 fields this model uses. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { ...this.extra };
    for (const key of [...Object.keys(DEFAULTS), 'num_decoder_layers']) out[key] = (this as unknown as Record<string, unknown>)[key];
    out.architectures ??= ['T5ForConditionalGeneration'];
    out.model_type = 't5';
    out.is_encoder_decoder = true;
    out.dense_act_fn = this.denseActFn;
    out.is_gated_act = this.isGatedAct;
    out.torch_dtype = 'float32';
    return out;
  }
}

function stripUndefined<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Named model shapes for training from scratch (`--model-config tiny|mini|small|base|large`). */
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
};
