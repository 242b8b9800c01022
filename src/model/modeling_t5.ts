/**
 * T5ForConditionalGeneration in TensorFlow.js, following HF modeling_t5.py line for line: the math, in tfjs ops
 * (what training differentiates). Every weight is a tf.Variable known by its HF parameter name
 * (`encoder.block.0.layer.0.SelfAttention.q.weight`), so loading and saving a checkpoint is a name map.
 *
 * T5 is written three times in this project, the same math each time:
 * - here, in tfjs ops: training, and inference wherever no ONNX Runtime graph runs;
 * - native_graphs.ts: the inference stacks as ONNX graphs that ONNX Runtime runs in this process, fed this model's
 *   weights; t5_runtime.ts chooses, pass by pass, between them and this file;
 * - export/t5_layers.ts (with t5_encoder.ts and t5_decoder.ts): the ONNX files of the export for transformers.js,
 *   standard operators only, the weights baked in.
 *
 * Inference (`forward` without dropout, `generate`) goes through `runtime`; the passes here are tfjs only.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../tf.js';
import { T5Config } from './config.js';
import { t5Parameters, type AttentionParameters, type FeedForwardParameters, type T5Parameters } from './parameters.js';
import {
  activation,
  causalMask,
  dropout,
  gatedActivation,
  linear,
  reluDropout,
  paddingMask,
  relativeBuckets,
  rmsNorm,
  type KeyValue,
} from './layers.js';
import { sequenceCrossEntropy } from './loss.js';
import { IGNORE_INDEX } from '../labels.js';
import { useLibraryDefaultsOnce } from '../engine/ops.js';
import { loadCheckpointTensors, resolveStateDict } from './weights.js';
import { readModelConfig } from './pretrained_config.js';
import type { LazyTensor, RawTensor } from '../safetensors.js';
import { assertBackendHolds } from './memory_estimate.js';
import { saveSafetensors } from '../safetensors.js';
import { writeFileAtomic, writeJsonAtomic } from '../fsutil.js';
import { DropoutStream } from './dropout_stream.js';
import { greedyGenerate, toIds, type GenerateArgs, type IdsLike } from './generate.js';
import { T5Runtime, type DecodedStep, type T5Math } from './t5_runtime.js';
import type { LoraAdapter } from './lora/adapter.js';
import { loraLinear } from './lora/lora_math.js';
import { UsageError } from '../errors.js';

export { RECOMPUTE_MAX_NEW_TOKENS } from './t5_runtime.js';
export { type GenerateArgs } from './generate.js';

export interface ForwardArgs {
  inputIds: IdsLike;
  attentionMask?: IdsLike;
  decoderInputIds?: IdsLike;
  /** Target ids; -100 marks positions that do not count in the loss. */
  labels?: IdsLike;
  /**
   * Dropout on, with masks from this stream (training), or off (evaluation, the default). `true` draws from a stream
   * of the model's own, seeded 0.
   */
  training?: boolean | DropoutStream;
}

export interface ForwardOutput {
  /** [batch, target length, vocab] */
  logits: tf.Tensor3D;
  /** Mean cross-entropy over label positions that are not -100. */
  loss?: tf.Scalar;
}

/** Options of the stacks' full passes (`encode`, `decodeSequence`). */
export interface EncodeOptions {
  /** Dropout on, with masks from this stream (training), or off (the default). */
  training?: DropoutStream;
  /** HF's `inputs_embeds`: the inputs' embeddings, when already looked up (forward looks both stacks' up at once). */
  inputsEmbeds?: tf.Tensor;
}

export interface DecodeOptions extends EncodeOptions {
  /**
   * The self-attention bias [batch | 1, heads, length, length] when the positions are not one sequence (a prefix
   * tree of class names: eval/tree_scoring.ts); default `causalAttentionBias(length)`.
   */
  selfAttentionBias?: tf.Tensor;
}

export interface T5InitOptions {
  /** Seed of the random initialisation (HF's `_init_weights` distributions). */
  seed?: number;
  /**
   * Initial values by HF parameter name (every parameter), instead of a random initialisation: arrays, or tensors
   * of a file read one at a time (each is read, copied into its variable and let go before the next).
   */
  weights?: Map<string, RawTensor | LazyTensor>;
}

let nextModelId = 0;

const LM_HEAD = 'lm_head.weight';

export class T5ForConditionalGeneration implements T5Math {
  readonly config: T5Config;
  /** Where each weight sits in the model (stacks, blocks, modules), by its HF name. */
  readonly layout: T5Parameters;
  private readonly params = new Map<string, tf.Variable>();
  private readonly scope: string;
  /** The masks `forward({ training: true })` draws, for callers without a stream of their own. */
  private readonly ownDropout = new DropoutStream();
  private ownRuntime?: T5Runtime;
  private attached?: LoraAdapter;

  constructor(config: T5Config, options: T5InitOptions = {}) {
    useLibraryDefaultsOnce();
    assertBackendHolds(config, tf.getBackend());
    this.config = config;
    this.layout = t5Parameters(config);
    this.scope = `t5cls_${nextModelId++}`;
    let seed = options.seed ?? 0;
    for (const { name, shape, init: std } of this.layout.all) {
      const given = options.weights?.get(name);
      const init = given
        ? tf.tensor('read' in given ? given.read() : given.data, shape, 'float32')
        : std === 'ones'
          ? tf.ones(shape)
          : tf.randomNormal(shape, 0, std, 'float32', seed++);
      this.params.set(name, tf.variable(init, true, `${this.scope}/${name}`));
      init.dispose();
    }
  }

  /**
   * Loads a model folder in HF layout (config.json + model.safetensors or a sharded index). `config`: the folder's
   * config as `readModelConfig` already read it (spares reading it, and comparing the head, a second time).
   */
  static fromPretrained(
    dir: string,
    options: { onWarning?: (message: string) => void; config?: T5Config } = {},
  ): T5ForConditionalGeneration {
    const tensors = loadCheckpointTensors(dir);
    const config = options.config ?? readModelConfig(dir, tensors);
    const { values, unexpected } = resolveStateDict(
      t5Parameters(config).all.map((p) => [p.name, p.shape]),
      config.tie_word_embeddings,
      tensors,
      dir,
    );
    for (const name of unexpected) options.onWarning?.(`${dir}: ignoring unexpected tensor "${name}"`);
    return new T5ForConditionalGeneration(config, { weights: values });
  }

  /** Copies checkpoint tensors (by HF name, either layout) into the model's variables, checking shapes first. */
  loadWeights(tensors: Map<string, RawTensor>, source: string): { unexpected: string[] } {
    const { values, unexpected } = resolveStateDict(
      [...this.params].map(([n, v]) => [n, v.shape]),
      this.config.tie_word_embeddings,
      tensors,
      source,
    );
    for (const [name, t] of values) {
      const value = tf.tensor(t.data, t.shape, 'float32');
      this.params.get(name)!.assign(value);
      value.dispose();
    }
    return { unexpected };
  }

  /** Parameters keyed exactly as HF `named_parameters()`, in the same order. */
  namedParameters(): Map<string, tf.Variable> {
    return new Map(this.params);
  }

  /** One parameter by its HF name. */
  parameter(name: string): tf.Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`T5 has no parameter ${name}`);
    return v;
  }

  /**
   * Inference over this model: each pass runs as an ONNX Runtime graph where one can run, else on the tfjs math
   * of this file (see t5_runtime.ts).
   */
  get runtime(): T5Runtime {
    return (this.ownRuntime ??= new T5Runtime(this));
  }

  /** The LoRA adapter whose low-rank terms the projections it targets add, while one is attached. */
  get adapter(): LoraAdapter | undefined {
    return this.attached;
  }

  /**
   * From now on every projection the adapter targets computes x·Wᵀ + scaling·dropout(x)·Aᵀ·Bᵀ, W being the same
   * variable as before (see lora/). One adapter at a time; the caller keeps ownership (`dispose` leaves it alone).
   */
  attachAdapter(adapter: LoraAdapter): void {
    if (this.attached && this.attached !== adapter) throw new UsageError('a LoRA adapter is already attached: detach it first');
    adapter.assertFits((name) => this.params.get(name)?.shape);
    this.attached = adapter;
  }

  /**
   * The variables a training step differentiates and the optimizer updates, by the names their saved state uses:
   * the attached adapter's (PEFT's tensor names; the model's own weights stay frozen), else every parameter (HF names).
   */
  trainableVariables(): Map<string, tf.Variable> {
    return this.attached ? this.attached.namedVariables() : this.namedParameters();
  }

  /** Removes the adapter (the model computes its base again) and returns it. */
  detachAdapter(): LoraAdapter | undefined {
    const adapter = this.attached;
    this.attached = undefined;
    return adapter;
  }

  /** The linear layer whose HF weight is `weight`, with the adapter's low-rank term where it targets that layer. */
  private project(x: tf.Tensor, weight: string, training: DropoutStream | undefined): tf.Tensor {
    const lora = this.attached?.target(weight);
    return lora ? loraLinear(x, this.parameter(weight), lora, training) : linear(x, this.parameter(weight));
  }

  private get lmHead(): tf.Variable {
    return this.parameter(this.layout.lmHead);
  }

  private drop(x: tf.Tensor, training: DropoutStream | undefined): tf.Tensor {
    const rate = this.config.dropout_rate;
    if (!training || rate === 0) return x;
    return dropout(x, rate, training.next());
  }

  /** Token embeddings [batch, length, d_model] of ids [batch, length] (the shared embedding, both stacks' input). */
  embed(ids: tf.Tensor): tf.Tensor {
    return tf.gather(this.parameter(this.layout.shared), ids);
  }

  /**
   * A stack's relative position bias [1, heads, queries, keys] for relative-position bucket ids [queries * keys],
   * from block 0's bucket embedding.
   */
  relativePositionBias(stack: 'encoder' | 'decoder', buckets: Int32Array, queryLength: number, keyLength: number): tf.Tensor {
    const table = this.parameter(this.layout[stack].relativeBias);
    const values = tf.gather(table, tf.tensor1d(buckets, 'int32'));
    return tf.expandDims(tf.transpose(tf.reshape(values, [queryLength, keyLength, this.config.num_heads]), [2, 0, 1]), 0);
  }

  private positionBias(stack: 'encoder' | 'decoder', queryLength: number, keyLength: number, queryOffset: number): tf.Tensor {
    const c = this.config;
    const buckets = relativeBuckets(
      queryLength,
      keyLength,
      queryOffset,
      stack === 'encoder',
      c.relative_attention_num_buckets,
      c.relative_attention_max_distance,
    );
    return this.relativePositionBias(stack, buckets, queryLength, keyLength);
  }

  /** The encoder's self-attention bias [batch, heads, length, length]: position bias + padding mask. */
  encoderAttentionBias(attentionMask: tf.Tensor): tf.Tensor {
    const length = attentionMask.shape[1]!;
    return tf.add(this.positionBias('encoder', length, length, 0), paddingMask(attentionMask));
  }

  /**
   * The decoder's self-attention bias [1, heads, length, past + length] for `length` positions after `past` ones:
   * position bias + causal mask.
   */
  causalAttentionBias(length: number, past = 0): tf.Tensor {
    return tf.add(this.positionBias('decoder', length, past + length, past), causalMask(length, past + length, past));
  }

  /** [batch, length, heads*d_kv] → [batch, heads, length, d_kv] */
  private splitHeads(x: tf.Tensor): tf.Tensor4D {
    const [b, l] = x.shape as [number, number];
    return tf.transpose(tf.reshape(x, [b, l, this.config.num_heads, this.config.d_kv]), [0, 2, 1, 3]);
  }

  private projectKeyValue(a: AttentionParameters, states: tf.Tensor, training: DropoutStream | undefined): KeyValue {
    return {
      key: this.splitHeads(this.project(states, a.k, training)),
      value: this.splitHeads(this.project(states, a.v, training)),
    };
  }

  /** T5Attention: no 1/sqrt(d) scaling (folded into the initialisation); `bias` carries position bias and masks. */
  private attention(
    a: AttentionParameters,
    hidden: tf.Tensor,
    kv: KeyValue,
    bias: tf.Tensor,
    training: DropoutStream | undefined,
  ): tf.Tensor {
    const [b, l] = hidden.shape as [number, number];
    const query = this.splitHeads(this.project(hidden, a.q, training));
    const scores = tf.add(tf.matMul(query, kv.key, false, true), bias);
    const weights = this.drop(tf.softmax(scores, -1), training);
    const context = tf.matMul(weights, kv.value);
    const merged = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [b, l, this.config.innerDim]);
    return this.project(merged, a.o, training);
  }

  private feedForward(ff: FeedForwardParameters, x: tf.Tensor, training: DropoutStream | undefined): tf.Tensor {
    const c = this.config;
    const [wi, wiLinear] = ff.wi;
    let h: tf.Tensor;
    if (wiLinear !== undefined) {
      h = gatedActivation(this.project(x, wi, training), this.project(x, wiLinear, training), c.denseActFn);
    } else if (c.denseActFn === 'relu' && training && c.dropout_rate > 0) {
      return this.project(reluDropout(this.project(x, wi, training), c.dropout_rate, training.next()), ff.wo, training);
    } else {
      h = activation(this.project(x, wi, training), c.denseActFn);
    }
    return this.project(this.drop(h, training), ff.wo, training);
  }

  private norm(weight: string, x: tf.Tensor): tf.Tensor {
    return rmsNorm(x, this.parameter(weight), this.config.layer_norm_epsilon);
  }

  /** The encoder stack: [batch, length] ids → [batch, length, d_model]. */
  encode(inputIds: tf.Tensor, attentionMask: tf.Tensor, options: EncodeOptions = {}): tf.Tensor3D {
    const { training, inputsEmbeds } = options;
    const { blocks, finalNorm } = this.layout.encoder;
    let h = this.drop(inputsEmbeds ?? this.embed(inputIds), training);
    const bias = this.encoderAttentionBias(attentionMask);
    for (const block of blocks) {
      const normed = this.norm(block.selfAttentionNorm, h);
      const kv = this.projectKeyValue(block.selfAttention, normed, training);
      const attn = this.attention(block.selfAttention, normed, kv, bias, training);
      h = tf.add(h, this.drop(attn, training));
      h = tf.add(h, this.drop(this.feedForward(block.feedForward, this.norm(block.feedForwardNorm, h), training), training));
    }
    return this.drop(this.norm(finalNorm, h), training) as tf.Tensor3D;
  }

  /** Cross-attention keys and values of every decoder block for an encoder output (computed once per input). */
  crossKeyValues(encoderOutput: tf.Tensor, training?: DropoutStream): KeyValue[] {
    return this.layout.decoder.blocks.map((block) => this.projectKeyValue(block.crossAttention, encoderOutput, training));
  }

  /** The decoder stack and LM head over every position at once (training, scoring): logits [batch, length, vocab]. */
  decodeSequence(decoderInputIds: tf.Tensor, encoderMask: tf.Tensor, cross: KeyValue[], options: DecodeOptions = {}): tf.Tensor3D {
    const { training, inputsEmbeds, selfAttentionBias } = options;
    const h = this.drop(inputsEmbeds ?? this.embed(decoderInputIds), training);
    const selfBias = selfAttentionBias ?? this.causalAttentionBias(decoderInputIds.shape[1]!);
    return this.lmLogits(this.decoderBlocks(h, selfBias, encoderMask, cross, training).hidden);
  }

  /**
   * The decoder for the next positions after those whose self-attention keys and values are in `past` (one per
   * layer, none at the first step), for generation: their logits, and `past` extended by them (`cache`).
   */
  decodeStep(decoderInputIds: tf.Tensor, encoderMask: tf.Tensor, cross: KeyValue[], past: readonly KeyValue[] = []): DecodedStep {
    const h = this.embed(decoderInputIds);
    const selfBias = this.causalAttentionBias(decoderInputIds.shape[1]!, past[0]?.key.shape[2] ?? 0);
    const { hidden, selfKeyValues } = this.decoderBlocks(h, selfBias, encoderMask, cross, undefined, past);
    return { logits: this.lmLogits(hidden), cache: selfKeyValues };
  }

  /**
   * The decoder blocks and final norm over embedded positions `h`, with the self-attention keys/values of `past`
   * positions before them; `selfKeyValues`: per layer, those of the past and these positions.
   */
  private decoderBlocks(
    h: tf.Tensor,
    selfBias: tf.Tensor,
    encoderMask: tf.Tensor,
    cross: KeyValue[],
    training: DropoutStream | undefined,
    past: readonly KeyValue[] = [],
  ): { hidden: tf.Tensor; selfKeyValues: KeyValue[] } {
    const crossBias = paddingMask(encoderMask);
    const selfKeyValues: KeyValue[] = [];
    for (const [i, block] of this.layout.decoder.blocks.entries()) {
      const normed = this.norm(block.selfAttentionNorm, h);
      let kv = this.projectKeyValue(block.selfAttention, normed, training);
      const old = past[i];
      if (old) kv = { key: tf.concat([old.key, kv.key], 2), value: tf.concat([old.value, kv.value], 2) };
      selfKeyValues.push(kv);
      h = tf.add(h, this.drop(this.attention(block.selfAttention, normed, kv, selfBias, training), training));
      const crossIn = this.norm(block.crossAttentionNorm, h);
      h = tf.add(h, this.drop(this.attention(block.crossAttention, crossIn, cross[i]!, crossBias, training), training));
      h = tf.add(h, this.drop(this.feedForward(block.feedForward, this.norm(block.feedForwardNorm, h), training), training));
    }
    return { hidden: this.drop(this.norm(this.layout.decoder.finalNorm, h), training), selfKeyValues };
  }

  /** The LM head: the decoder's final hidden states [batch, length, d_model] → logits [batch, length, vocab]. */
  private lmLogits(hidden: tf.Tensor): tf.Tensor3D {
    // T5 v1.0 rescales before the projection, as Mesh TensorFlow does (v1.1 and flan-t5 do not).
    const h = this.config.scale_decoder_outputs ? tf.mul(hidden, this.config.d_model ** -0.5) : hidden;
    return linear(h, this.lmHead) as tf.Tensor3D;
  }

  /**
   * Synchronous, so it can run inside `tf.variableGrads`. Int32 tensors (or nested arrays) in, tensors out. With
   * dropout (training) the pass is the tfjs math of this file; without, it goes through `runtime`, which falls back
   * to the same math while a gradient is recorded.
   */
  forward(args: ForwardArgs): ForwardOutput {
    const c = this.config;
    const training = args.training === true ? this.ownDropout : args.training || undefined;
    const inputIds = toIds(args.inputIds);
    const attentionMask = args.attentionMask !== undefined ? toIds(args.attentionMask) : tf.onesLike(inputIds);
    const labels = args.labels !== undefined ? toIds(args.labels) : undefined;
    let decoderInputIds: tf.Tensor;
    if (args.decoderInputIds !== undefined) decoderInputIds = toIds(args.decoderInputIds);
    else if (labels) decoderInputIds = shiftRight(labels, c.decoder_start_token_id, c.pad_token_id);
    else throw new Error('forward needs decoderInputIds or labels');
    const logits = training
      ? this.trainingLogits(inputIds, attentionMask, decoderInputIds, training)
      : this.inferenceLogits(inputIds, attentionMask, decoderInputIds);
    return labels ? { logits, loss: sequenceCrossEntropy(logits, labels) } : { logits };
  }

  private trainingLogits(inputIds: tf.Tensor, attentionMask: tf.Tensor, decoderInputIds: tf.Tensor, training: DropoutStream): tf.Tensor3D {
    const [encoderEmbeds, decoderEmbeds] = this.embedTogether(inputIds, decoderInputIds);
    const encoded = this.encode(inputIds, attentionMask, { training, inputsEmbeds: encoderEmbeds });
    const cross = this.crossKeyValues(encoded, training);
    return this.decodeSequence(decoderInputIds, attentionMask, cross, { training, inputsEmbeds: decoderEmbeds });
  }

  private inferenceLogits(inputIds: tf.Tensor, attentionMask: tf.Tensor, decoderInputIds: tf.Tensor): tf.Tensor3D {
    const { cross } = this.runtime.encodeForDecoding(inputIds, attentionMask);
    return this.runtime.decodeSequence(decoderInputIds, attentionMask, cross);
  }

  /**
   * Encoder and decoder input embeddings from one lookup: the shared embedding's gradient is then one scatter into
   * a vocabulary-sized tensor, not two and their sum.
   */
  private embedTogether(encoderIds: tf.Tensor, decoderIds: tf.Tensor): [tf.Tensor, tf.Tensor] {
    const d = this.config.d_model;
    const rows = this.embed(tf.concat([tf.reshape(encoderIds, [-1]), tf.reshape(decoderIds, [-1])]));
    const [e, dec] = tf.split(rows, [encoderIds.size, decoderIds.size]);
    return [tf.reshape(e!, [...encoderIds.shape, d]), tf.reshape(dec!, [...decoderIds.shape, d])];
  }

  /** Greedy decoding with a key/value cache, exactly as HF `generate(num_beams=1, do_sample=False)`. */
  generate(args: GenerateArgs): number[][] {
    return greedyGenerate(this.runtime, args);
  }

  /**
   * Writes config.json, generation_config.json and model.safetensors in the layout HF `save_pretrained` uses. Refused
   * while a LoRA adapter is attached: the folder would silently lack it (saveAdapter or mergeAdapter first).
   */
  savePretrained(dir: string): void {
    if (this.attached) throw new UsageError(`${dir}: a LoRA adapter is attached: saveAdapter writes it, mergeAdapter folds it in first`);
    fs.mkdirSync(dir, { recursive: true });
    const tensors = new Map<string, tf.Tensor>();
    for (const [name, v] of this.params) tensors.set(name, v);
    if (this.config.headWeightWritten && !tensors.has(LM_HEAD)) tensors.set(LM_HEAD, this.lmHead);
    saveSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
    writeFileAtomic(path.join(dir, 'config.json'), this.config.toJSONText());
    writeJsonAtomic(path.join(dir, 'generation_config.json'), {
      _from_model_config: true,
      decoder_start_token_id: this.config.decoder_start_token_id,
      eos_token_id: this.config.eos_token_id,
      pad_token_id: this.config.pad_token_id,
    });
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
  }
}

/** decoder_input_ids = labels shifted right, starting with the decoder start token; -100 becomes pad. */
export function shiftRight(labels: tf.Tensor, startId: number, padId: number): tf.Tensor {
  return tf.tidy(() => {
    const [b, l] = labels.shape as [number, number];
    const start = tf.fill([b, 1], startId, 'int32');
    const shifted = tf.concat([start, tf.slice(labels, [0, 0], [b, l - 1])], 1);
    return tf.where(tf.equal(shifted, IGNORE_INDEX), tf.fill(shifted.shape, padId, 'int32'), shifted);
  });
}
