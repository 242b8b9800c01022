/**
 * T5's parameters in one table: the checkpoint's names (HF `named_parameters()`), their shapes and HF's
 * initialisation, and the same names arranged as the model is built (stacks, blocks, attention, feed-forward), so
 * that the tfjs model, the ONNX Runtime inference graphs and the export read a weight by its place, not by a string.
 */
import type { T5Config } from './config.js';

/** One parameter: its HF name, shape and initialisation (a normal's standard deviation, or 'ones' for layer norms). */
export interface ParameterSpec {
  readonly name: string;
  readonly shape: number[];
  readonly init: number | 'ones';
}

/** An attention module (`…SelfAttention`, `…EncDecAttention`): its name and its weights' names. */
export interface AttentionParameters {
  readonly module: string;
  readonly q: string;
  readonly k: string;
  readonly v: string;
  readonly o: string;
}

/** A feed-forward module (`…DenseReluDense`): `wi`, or in the gated variant `wi_0` (activated) and `wi_1` (linear). */
export interface FeedForwardParameters {
  readonly module: string;
  readonly wi: readonly [string] | readonly [string, string];
  readonly wo: string;
}

/** An encoder block: self-attention and feed-forward, each after its layer norm (the norms' weight names). */
export interface EncoderBlockParameters {
  readonly selfAttentionNorm: string;
  readonly selfAttention: AttentionParameters;
  readonly feedForwardNorm: string;
  readonly feedForward: FeedForwardParameters;
}

/** A decoder block: self-attention, cross-attention over the encoder output and feed-forward. */
export interface DecoderBlockParameters {
  readonly selfAttentionNorm: string;
  readonly selfAttention: AttentionParameters;
  readonly crossAttentionNorm: string;
  readonly crossAttention: AttentionParameters;
  readonly feedForwardNorm: string;
  readonly feedForward: FeedForwardParameters;
}

export interface StackParameters<Block> {
  readonly blocks: readonly Block[];
  readonly finalNorm: string;
  /** Block 0's relative position bucket embedding [buckets, heads], which every block of the stack uses. */
  readonly relativeBias: string;
}

export interface T5Parameters {
  /** Every parameter in HF `named_parameters()` order. */
  readonly all: readonly ParameterSpec[];
  /** The token embedding [vocab, d_model], shared by both stacks' inputs. */
  readonly shared: string;
  readonly encoder: StackParameters<EncoderBlockParameters>;
  readonly decoder: StackParameters<DecoderBlockParameters>;
  /** The LM head [vocab, d_model]: `shared` itself when the embeddings are tied. */
  readonly lmHead: string;
}

const RELATIVE_BIAS = 'relative_attention_bias.weight';

/** The parameter table of a T5 of shape `c`, initialised as HF's `T5PreTrainedModel._init_weights` does. */
export function t5Parameters(c: T5Config): T5Parameters {
  const f = c.initializer_factor;
  const all: ParameterSpec[] = [];
  const add = (name: string, shape: number[], init: number | 'ones'): string => {
    all.push({ name, shape, init });
    return name;
  };
  const shared = add('shared.weight', [c.vocab_size, c.d_model], f * 1.0);
  const attentionModule = (module: string, relative: boolean): AttentionParameters => {
    const names = {
      module,
      q: add(`${module}.q.weight`, [c.innerDim, c.d_model], f * (c.d_model * c.d_kv) ** -0.5),
      k: add(`${module}.k.weight`, [c.innerDim, c.d_model], f * c.d_model ** -0.5),
      v: add(`${module}.v.weight`, [c.innerDim, c.d_model], f * c.d_model ** -0.5),
      o: add(`${module}.o.weight`, [c.d_model, c.innerDim], f * c.innerDim ** -0.5),
    };
    if (relative) add(`${module}.${RELATIVE_BIAS}`, [c.relative_attention_num_buckets, c.num_heads], f * c.d_model ** -0.5);
    return names;
  };
  const feedForwardModule = (module: string): FeedForwardParameters => {
    const input = (name: string) => add(`${module}.${name}.weight`, [c.d_ff, c.d_model], f * c.d_model ** -0.5);
    const wi = c.isGatedAct ? ([input('wi_0'), input('wi_1')] as const) : ([input('wi')] as const);
    return { module, wi, wo: add(`${module}.wo.weight`, [c.d_model, c.d_ff], f * c.d_ff ** -0.5) };
  };
  const norm = (name: string) => add(`${name}.weight`, [c.d_model], 'ones');

  const encoderBlocks: EncoderBlockParameters[] = [];
  for (let i = 0; i < c.num_layers; i++) {
    const pre = `encoder.block.${i}.layer`;
    const selfAttention = attentionModule(`${pre}.0.SelfAttention`, i === 0);
    const selfAttentionNorm = norm(`${pre}.0.layer_norm`);
    const feedForward = feedForwardModule(`${pre}.1.DenseReluDense`);
    encoderBlocks.push({ selfAttentionNorm, selfAttention, feedForwardNorm: norm(`${pre}.1.layer_norm`), feedForward });
  }
  const encoderNorm = norm('encoder.final_layer_norm');
  const decoderBlocks: DecoderBlockParameters[] = [];
  for (let i = 0; i < c.num_decoder_layers; i++) {
    const pre = `decoder.block.${i}.layer`;
    const selfAttention = attentionModule(`${pre}.0.SelfAttention`, i === 0);
    const selfAttentionNorm = norm(`${pre}.0.layer_norm`);
    const crossAttention = attentionModule(`${pre}.1.EncDecAttention`, false);
    const crossAttentionNorm = norm(`${pre}.1.layer_norm`);
    const feedForward = feedForwardModule(`${pre}.2.DenseReluDense`);
    decoderBlocks.push({
      selfAttentionNorm,
      selfAttention,
      crossAttentionNorm,
      crossAttention,
      feedForwardNorm: norm(`${pre}.2.layer_norm`),
      feedForward,
    });
  }
  const decoderNorm = norm('decoder.final_layer_norm');
  const lmHead = c.tie_word_embeddings ? shared : add('lm_head.weight', [c.vocab_size, c.d_model], f * 1.0);
  return {
    all,
    shared,
    encoder: { blocks: encoderBlocks, finalNorm: encoderNorm, relativeBias: `encoder.block.0.layer.0.SelfAttention.${RELATIVE_BIAS}` },
    decoder: { blocks: decoderBlocks, finalNorm: decoderNorm, relativeBias: `decoder.block.0.layer.0.SelfAttention.${RELATIVE_BIAS}` },
    lmHead,
  };
}

/** Every parameter of a T5 in HF `named_parameters()` order, as [name, shape, initialisation] (see t5Parameters). */
export function parameterShapes(c: T5Config): [string, number[], number | 'ones'][] {
  return t5Parameters(c).all.map((p) => [p.name, p.shape, p.init]);
}

/** The weight names of a feed-forward module, in checkpoint order. */
export function feedForwardWeights(ff: FeedForwardParameters): string[] {
  return [...ff.wi, ff.wo];
}

/** The weight names of an attention module: q, k, v, o. */
export function attentionWeights(a: AttentionParameters): string[] {
  return [a.q, a.k, a.v, a.o];
}
