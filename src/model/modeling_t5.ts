/**
 * T5ForConditionalGeneration in TensorFlow.js, following HF modeling_t5.py line for line. Every weight is a
 * tf.Variable known by its HF parameter name (`encoder.block.0.layer.0.SelfAttention.q.weight`), so loading and
 * saving a checkpoint is a name map.
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
  treeAttention,
} from './layers.js';
import { sequenceCrossEntropy } from './loss.js';
import { IGNORE_INDEX } from '../labels.js';
import { decoderGraph, encoderGraph, graphFeeds, type NativeGraph } from './native_graphs.js';
import { nativeGraphAvailable, useLibraryDefaultsOnce, runNativeGraph, withNativeGraphFallback } from '../engine/ops.js';
import { loadCheckpointTensors, resolveStateDict } from './weights.js';
import { readModelConfig } from './pretrained_config.js';
import type { LazyTensor, RawTensor } from '../safetensors.js';
import { assertBackendHolds } from './memory_estimate.js';
import { saveSafetensors } from '../safetensors.js';
import { writeFileAtomic, writeJsonAtomic } from '../fsutil.js';
import { DropoutStream } from './dropout_stream.js';
import { greedyGenerate, toIds, type GenerateArgs, type IdsLike, type KeyValue } from './generate.js';

export { RECOMPUTE_MAX_NEW_TOKENS, type GenerateArgs } from './generate.js';

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

export interface DecodeOptions {
  /** Dropout on, with masks from this stream (training), or off (the default). */
  training?: DropoutStream;
  /** Per decoder layer, the self-attention keys/values of the positions before these (extended in place). */
  selfCache?: (KeyValue | undefined)[];
  /** The LM head for the last position only. */
  lastPositionOnly?: boolean;
  /** `tree[i]`: the position before position i (-1 for the first), when the positions form a prefix tree. */
  tree?: number[];
  /** The decoder inputs' embeddings, when already looked up (see forward). */
  embedded?: tf.Tensor;
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

export class T5ForConditionalGeneration {
  readonly config: T5Config;
  /** Where each weight sits in the model (stacks, blocks, modules), by its HF name. */
  readonly layout: T5Parameters;
  private readonly params = new Map<string, tf.Variable>();
  private readonly scope: string;
  /** The masks `forward({ training: true })` draws, for callers without a stream of their own. */
  private readonly ownDropout = new DropoutStream();
  private encoderGraphDef?: NativeGraph;
  private decoderGraphDef?: NativeGraph;

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

  /** Loads a model folder in HF layout (config.json + model.safetensors or a sharded index). */
  static fromPretrained(dir: string, options: { onWarning?: (message: string) => void } = {}): T5ForConditionalGeneration {
    const tensors = loadCheckpointTensors(dir);
    const config = readModelConfig(dir, tensors);
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

  private p(name: string): tf.Variable {
    const v = this.params.get(name);
    if (!v) throw new Error(`T5 has no parameter ${name}`);
    return v;
  }

  private get lmHead(): tf.Variable {
    return this.p(this.layout.lmHead);
  }

  private drop(x: tf.Tensor, training: DropoutStream | undefined): tf.Tensor {
    const rate = this.config.dropout_rate;
    if (!training || rate === 0) return x;
    return dropout(x, rate, training.next());
  }

  /** Relative position bias [1, heads, queries, keys] from block 0's bucket embedding. */
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
    return this.bucketBias(stack, buckets, queryLength, keyLength);
  }

  private bucketBias(stack: 'encoder' | 'decoder', buckets: Int32Array, queryLength: number, keyLength: number): tf.Tensor {
    const table = this.p(this.layout[stack].relativeBias);
    const values = tf.gather(table, tf.tensor1d(buckets, 'int32'));
    return tf.expandDims(tf.transpose(tf.reshape(values, [queryLength, keyLength, this.config.num_heads]), [2, 0, 1]), 0);
  }

  /** Decoder self-attention bias for positions forming a prefix tree (see decode): position bias by depth + path mask. */
  private treeBias(parents: number[]): tf.Tensor {
    const c = this.config;
    const { buckets, mask } = treeAttention(parents, c.relative_attention_num_buckets, c.relative_attention_max_distance);
    return tf.add(this.bucketBias('decoder', buckets, parents.length, parents.length), mask);
  }

  /** [batch, length, heads*d_kv] → [batch, heads, length, d_kv] */
  private splitHeads(x: tf.Tensor): tf.Tensor4D {
    const [b, l] = x.shape as [number, number];
    return tf.transpose(tf.reshape(x, [b, l, this.config.num_heads, this.config.d_kv]), [0, 2, 1, 3]);
  }

  private projectKeyValue(a: AttentionParameters, states: tf.Tensor): KeyValue {
    return {
      key: this.splitHeads(linear(states, this.p(a.k))),
      value: this.splitHeads(linear(states, this.p(a.v))),
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
    const query = this.splitHeads(linear(hidden, this.p(a.q)));
    const scores = tf.add(tf.matMul(query, kv.key, false, true), bias);
    const weights = this.drop(tf.softmax(scores, -1), training);
    const context = tf.matMul(weights, kv.value);
    const merged = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [b, l, this.config.innerDim]);
    return linear(merged, this.p(a.o));
  }

  private feedForward(ff: FeedForwardParameters, x: tf.Tensor, training: DropoutStream | undefined): tf.Tensor {
    const c = this.config;
    const [wi, wiLinear] = ff.wi;
    let h: tf.Tensor;
    if (wiLinear !== undefined) {
      h = gatedActivation(linear(x, this.p(wi)), linear(x, this.p(wiLinear)), c.denseActFn);
    } else if (c.denseActFn === 'relu' && training && c.dropout_rate > 0) {
      return linear(reluDropout(linear(x, this.p(wi)), c.dropout_rate, training.next()), this.p(ff.wo));
    } else {
      h = activation(linear(x, this.p(wi)), c.denseActFn);
    }
    return linear(this.drop(h, training), this.p(ff.wo));
  }

  private norm(weight: string, x: tf.Tensor): tf.Tensor {
    return rmsNorm(x, this.p(weight), this.config.layer_norm_epsilon);
  }

  /** The encoder stack: [batch, length] ids → [batch, length, d_model]. */
  encode(inputIds: tf.Tensor, attentionMask: tf.Tensor, training?: DropoutStream, embedded?: tf.Tensor): tf.Tensor3D {
    const { blocks, finalNorm } = this.layout.encoder;
    const length = inputIds.shape[1]!;
    let h = this.drop(embedded ?? tf.gather(this.p(this.layout.shared), inputIds), training);
    const bias = tf.add(this.positionBias('encoder', length, length, 0), paddingMask(attentionMask));
    for (const block of blocks) {
      const normed = this.norm(block.selfAttentionNorm, h);
      const attn = this.attention(block.selfAttention, normed, this.projectKeyValue(block.selfAttention, normed), bias, training);
      h = tf.add(h, this.drop(attn, training));
      h = tf.add(h, this.drop(this.feedForward(block.feedForward, this.norm(block.feedForwardNorm, h), training), training));
    }
    return this.drop(this.norm(finalNorm, h), training) as tf.Tensor3D;
  }

  /**
   * The encoder and every decoder block's cross-attention keys and values for it (computed once per input). For
   * inference, where the backend offers it, the whole stack runs as one native graph (see native_graphs.ts).
   */
  encodeForDecoding(
    inputIds: tf.Tensor,
    attentionMask: tf.Tensor,
    training?: DropoutStream,
    embedded?: tf.Tensor,
  ): { encoded: tf.Tensor3D; cross: KeyValue[] } {
    if (!training && nativeGraphAvailable()) {
      const native = withNativeGraphFallback('encoder', () => this.encodeNative(inputIds, attentionMask));
      if (native) return native;
    }
    const encoded = this.encode(inputIds, attentionMask, training, embedded);
    return { encoded, cross: this.crossKeyValues(encoded) };
  }

  private encodeNative(inputIds: tf.Tensor, attentionMask: tf.Tensor): { encoded: tf.Tensor3D; cross: KeyValue[] } {
    const c = this.config;
    const [b, length] = inputIds.shape as [number, number];
    const graph = (this.encoderGraphDef ??= encoderGraph(c));
    const tensors = tf.tidy(() => [
      tf.gather(this.p(this.layout.shared), inputIds),
      tf.add(this.positionBias('encoder', length, length, 0), paddingMask(attentionMask)),
    ]);
    const kvShape = [b, c.num_heads, length, c.d_kv];
    const outputShapes = [[b, length, c.d_model], ...graph.outputs.slice(1).map(() => kvShape)];
    try {
      const feeds = graphFeeds(graph, { embedded: tensors[0]!, bias: tensors[1]! }, (name) => this.p(name));
      const [encoded, ...kv] = runNativeGraph(graph, feeds, outputShapes);
      const cross: KeyValue[] = [];
      for (let j = 0; j < kv.length; j += 2) cross.push({ key: kv[j] as tf.Tensor4D, value: kv[j + 1] as tf.Tensor4D });
      return { encoded: encoded as tf.Tensor3D, cross };
    } finally {
      tf.dispose(tensors);
    }
  }

  /** Cross-attention keys and values of every decoder block for an encoder output (computed once per input). */
  crossKeyValues(encoderOutput: tf.Tensor): KeyValue[] {
    return this.layout.decoder.blocks.map((block) => this.projectKeyValue(block.crossAttention, encoderOutput));
  }

  /**
   * The decoder stack and LM head. Without `selfCache` it decodes every position at once (training, scoring);
   * with it, `decoderInputIds` are the next positions after those cached, and the cache is extended in place.
   * With `tree`, the decoder positions form a prefix tree instead of one sequence: `tree[i]` is the position that
   * precedes position i (-1 for the first), each position sees itself and the positions on its path, and its
   * position in the sequence is its depth (this scores several continuations of a common prefix in one pass).
   */
  decode(decoderInputIds: tf.Tensor, encoderMask: tf.Tensor, cross: KeyValue[], options: DecodeOptions = {}): tf.Tensor3D {
    const { training, selfCache, lastPositionOnly = false, tree, embedded } = options;
    const c = this.config;
    const length = decoderInputIds.shape[1]!;
    if (!training && !selfCache && nativeGraphAvailable()) {
      const logits = withNativeGraphFallback('decoder', () => this.decodeNative(decoderInputIds, encoderMask, cross, tree));
      if (logits) return logits;
    }
    const past = selfCache?.[0]?.key.shape[2] ?? 0;
    let h = this.drop(embedded ?? tf.gather(this.p(this.layout.shared), decoderInputIds), training);
    const selfBias = tree
      ? this.treeBias(tree)
      : tf.add(this.positionBias('decoder', length, past + length, past), causalMask(length, past + length, past));
    const crossBias = paddingMask(encoderMask);
    for (const [i, block] of this.layout.decoder.blocks.entries()) {
      const normed = this.norm(block.selfAttentionNorm, h);
      let kv = this.projectKeyValue(block.selfAttention, normed);
      if (selfCache) {
        const old = selfCache[i];
        if (old) kv = { key: tf.concat([old.key, kv.key], 2), value: tf.concat([old.value, kv.value], 2) };
        selfCache[i] = kv;
      }
      h = tf.add(h, this.drop(this.attention(block.selfAttention, normed, kv, selfBias, training), training));
      const crossIn = this.norm(block.crossAttentionNorm, h);
      h = tf.add(h, this.drop(this.attention(block.crossAttention, crossIn, cross[i]!, crossBias, training), training));
      h = tf.add(h, this.drop(this.feedForward(block.feedForward, this.norm(block.feedForwardNorm, h), training), training));
    }
    h = this.drop(this.norm(this.layout.decoder.finalNorm, h), training);
    if (lastPositionOnly && length > 1) h = tf.slice(h, [0, length - 1, 0], [-1, 1, -1]);
    // T5 v1.0 rescales before the projection, as Mesh TensorFlow does (v1.1 and flan-t5 do not).
    if (c.scale_decoder_outputs) h = tf.mul(h, c.d_model ** -0.5);
    return linear(h, this.lmHead) as tf.Tensor3D;
  }

  /** `decode` for inference over whole sequences as one native graph (see native_graphs.ts). */
  private decodeNative(decoderInputIds: tf.Tensor, encoderMask: tf.Tensor, cross: KeyValue[], tree?: number[]): tf.Tensor3D {
    const c = this.config;
    const [b, length] = decoderInputIds.shape as [number, number];
    const graph = (this.decoderGraphDef ??= decoderGraph(c));
    const tensors = tf.tidy(() => ({
      embedded: tf.gather(this.p(this.layout.shared), decoderInputIds),
      self_bias: tree ? this.treeBias(tree) : tf.add(this.positionBias('decoder', length, length, 0), causalMask(length, length, 0)),
      // MultiHeadAttention broadcasts its bias over batch and heads only.
      cross_bias: tf.add(paddingMask(encoderMask), tf.zeros([1, 1, length, 1])),
      head_scale: tf.tensor1d([c.scale_decoder_outputs ? c.d_model ** -0.5 : 1]),
    }));
    const crossFeeds = Object.fromEntries(
      cross.flatMap((kv, j) => [
        [`cross.${j}.key`, kv.key],
        [`cross.${j}.value`, kv.value],
      ]),
    );
    try {
      const feeds = graphFeeds<tf.Tensor>(graph, { ...tensors, ...crossFeeds }, (name) => this.p(name));
      return runNativeGraph(graph, feeds, [[b, length, c.vocab_size]])[0] as tf.Tensor3D;
    } finally {
      tf.dispose(Object.values(tensors));
    }
  }

  /** Synchronous, so it can run inside `tf.variableGrads`. Int32 tensors (or nested arrays) in, tensors out. */
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
    const [encoderEmbedded, decoderEmbedded] = training ? this.embedTogether(inputIds, decoderInputIds) : [];
    const { cross } = this.encodeForDecoding(inputIds, attentionMask, training, encoderEmbedded);
    const logits = this.decode(decoderInputIds, attentionMask, cross, { training, embedded: decoderEmbedded });
    return labels ? { logits, loss: sequenceCrossEntropy(logits, labels) } : { logits };
  }

  /**
   * Encoder and decoder input embeddings from one lookup: the shared embedding's gradient is then one scatter into
   * a vocabulary-sized tensor, not two and their sum.
   */
  private embedTogether(encoderIds: tf.Tensor, decoderIds: tf.Tensor): [tf.Tensor, tf.Tensor] {
    const d = this.config.d_model;
    const rows = tf.gather(this.p(this.layout.shared), tf.concat([tf.reshape(encoderIds, [-1]), tf.reshape(decoderIds, [-1])]));
    const [e, dec] = tf.split(rows, [encoderIds.size, decoderIds.size]);
    return [tf.reshape(e!, [...encoderIds.shape, d]), tf.reshape(dec!, [...decoderIds.shape, d])];
  }

  /** Greedy decoding with a key/value cache, exactly as HF `generate(num_beams=1, do_sample=False)`. */
  generate(args: GenerateArgs): number[][] {
    return greedyGenerate(this, args);
  }

  /** Writes config.json, generation_config.json and model.safetensors in the layout HF `save_pretrained` uses. */
  savePretrained(dir: string): void {
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
