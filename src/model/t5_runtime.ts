/**
 * Inference over a T5: the one place that decides where ONNX Runtime runs a pass as one graph (native_graphs.ts)
 * instead of the model's tfjs math (modeling_t5.ts). `onGraphOr` is that decision: a graph runs where
 * `nativeGraphAvailable()` (graphs enabled, the graph kernel registered for the backend in use, no gradient being
 * recorded); if ONNX Runtime fails on one, graphs are turned off for the process with one warning and the pass runs
 * on the tfjs math, which gives the same results.
 *
 * Whole-sequence passes (encoder, decoder over every position) may run as graphs; the cached decoder step of
 * generation always runs on the tfjs math (the graphs have no key/value cache).
 *
 * The graphs know no LoRA: while an adapter is attached, the weights of the layers it targets are fed merged,
 * W + scaling·B·A, computed afresh for each pass from the adapter's current values (r·in·out multiply-adds per
 * layer, little beside the pass) and freed after it.
 */
import { tf } from '../tf.js';
import type { T5Config } from './config.js';
import { paddingMask, type KeyValue } from './layers.js';
import { decoderGraph, encoderGraph, graphFeeds, type NativeGraph } from './native_graphs.js';
import { nativeGraphAvailable, runNativeGraph, withNativeGraphFallback } from '../engine/ops.js';
import type { LoraAdapter } from './lora/adapter.js';
import { mergedWeight } from './lora/lora_math.js';

/** Up to this many new tokens, greedy generation decodes the whole prefix each step when graphs can run. */
export const RECOMPUTE_MAX_NEW_TOKENS = 8;

/** The encoder output and every decoder block's cross-attention keys and values for it. */
export interface EncoderOutput {
  encoded: tf.Tensor3D;
  cross: KeyValue[];
}

/** A cached decoder step: the new positions' logits and, per layer, the self-attention keys/values so far. */
export interface DecodedStep {
  logits: tf.Tensor3D;
  cache: KeyValue[];
}

/** What the runtime needs of a model: the tfjs math of T5ForConditionalGeneration and its weights by HF name. */
export interface T5Math {
  readonly config: T5Config;
  /** The LoRA adapter attached to the model, if any: the graphs are fed the weights of its layers merged. */
  readonly adapter?: LoraAdapter;
  parameter(name: string): tf.Tensor;
  embed(ids: tf.Tensor): tf.Tensor;
  encoderAttentionBias(attentionMask: tf.Tensor): tf.Tensor;
  causalAttentionBias(length: number): tf.Tensor;
  encode(inputIds: tf.Tensor, attentionMask: tf.Tensor): tf.Tensor3D;
  crossKeyValues(encoderOutput: tf.Tensor): KeyValue[];
  decodeSequence(
    decoderInputIds: tf.Tensor,
    encoderMask: tf.Tensor,
    cross: KeyValue[],
    options?: { selfAttentionBias?: tf.Tensor },
  ): tf.Tensor3D;
  decodeStep(decoderInputIds: tf.Tensor, encoderMask: tf.Tensor, cross: KeyValue[], past?: readonly KeyValue[]): DecodedStep;
}

export class T5Runtime {
  private encoderGraph?: NativeGraph;
  private decoderGraph?: NativeGraph;

  constructor(readonly model: T5Math) {}

  get config(): T5Config {
    return this.model.config;
  }

  /** The encoder output and the cross-attention keys/values, computed once per input. */
  encodeForDecoding(inputIds: tf.Tensor, attentionMask: tf.Tensor): EncoderOutput {
    return this.onGraphOr(
      'encoder',
      () => this.encodeOnGraph(inputIds, attentionMask),
      () => {
        const encoded = this.model.encode(inputIds, attentionMask);
        return { encoded, cross: this.model.crossKeyValues(encoded) };
      },
    );
  }

  /**
   * Logits [batch, length, vocab] of every decoder position at once; `selfAttentionBias` for positions that are
   * not one sequence (see the model's decodeSequence). The caller keeps ownership of the bias.
   */
  decodeSequence(decoderInputIds: tf.Tensor, encoderMask: tf.Tensor, cross: KeyValue[], selfAttentionBias?: tf.Tensor): tf.Tensor3D {
    return this.onGraphOr(
      'decoder',
      () => this.decodeOnGraph(decoderInputIds, encoderMask, cross, selfAttentionBias),
      () => this.model.decodeSequence(decoderInputIds, encoderMask, cross, { selfAttentionBias }),
    );
  }

  /** The next positions after a key/value cache (see the model's decodeStep): always the tfjs math. */
  decodeStep(decoderInputIds: tf.Tensor, encoderMask: tf.Tensor, cross: KeyValue[], past: readonly KeyValue[]): DecodedStep {
    return this.model.decodeStep(decoderInputIds, encoderMask, cross, past);
  }

  /**
   * Whether greedy generation of up to `maxNewTokens` tokens decodes the whole prefix again at every step: for a
   * few tokens (class names), one decoder graph beats the cached step's tfjs ops. The results are the same (a
   * cached step is exactly the last position of the full pass).
   */
  recomputesPrefix(maxNewTokens: number): boolean {
    return maxNewTokens <= RECOMPUTE_MAX_NEW_TOKENS && nativeGraphAvailable();
  }

  /**
   * `feed` with a reader of the weights a graph takes: the model's own, or merged with the attached adapter's
   * update (tensors made for this pass and freed after it).
   */
  private withGraphWeights<T>(feed: (weight: (name: string) => tf.Tensor) => T): T {
    const { model } = this;
    const merged: tf.Tensor[] = [];
    const weight = (name: string): tf.Tensor => {
      const lora = model.adapter?.target(name);
      if (!lora) return model.parameter(name);
      const w = mergedWeight(model.parameter(name), lora);
      merged.push(w);
      return w;
    };
    try {
      return feed(weight);
    } finally {
      tf.dispose(merged);
    }
  }

  /** The pass as a native graph where one can run now and ONNX Runtime does not fail on it, else on tfjs. */
  private onGraphOr<T>(what: 'encoder' | 'decoder', onGraph: () => T, onTfjs: () => T): T {
    if (nativeGraphAvailable()) {
      const result = withNativeGraphFallback(what, onGraph);
      if (result !== undefined) return result;
    }
    return onTfjs();
  }

  private encodeOnGraph(inputIds: tf.Tensor, attentionMask: tf.Tensor): EncoderOutput {
    const { model, config: c } = this;
    const [b, length] = inputIds.shape as [number, number];
    const graph = (this.encoderGraph ??= encoderGraph(c));
    const tensors = tf.tidy(() => [model.embed(inputIds), model.encoderAttentionBias(attentionMask)]);
    const kvShape = [b, c.num_heads, length, c.d_kv];
    const outputShapes = [[b, length, c.d_model], ...graph.outputs.slice(1).map(() => kvShape)];
    try {
      const [encoded, ...kv] = this.withGraphWeights((weight) =>
        runNativeGraph(graph, graphFeeds(graph, { embedded: tensors[0]!, bias: tensors[1]! }, weight), outputShapes),
      );
      const cross: KeyValue[] = [];
      for (let j = 0; j < kv.length; j += 2) cross.push({ key: kv[j] as tf.Tensor4D, value: kv[j + 1] as tf.Tensor4D });
      return { encoded: encoded as tf.Tensor3D, cross };
    } finally {
      tf.dispose(tensors);
    }
  }

  private decodeOnGraph(decoderInputIds: tf.Tensor, encoderMask: tf.Tensor, cross: KeyValue[], selfAttentionBias?: tf.Tensor): tf.Tensor3D {
    const { model, config: c } = this;
    const [b, length] = decoderInputIds.shape as [number, number];
    const graph = (this.decoderGraph ??= decoderGraph(c));
    const tensors = tf.tidy(() => ({
      embedded: model.embed(decoderInputIds),
      self_bias: selfAttentionBias ?? model.causalAttentionBias(length),
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
      return this.withGraphWeights(
        (weight) =>
          runNativeGraph(graph, graphFeeds<tf.Tensor>(graph, { ...tensors, ...crossFeeds }, weight), [[b, length, c.vocab_size]])[0],
      ) as tf.Tensor3D;
    } finally {
      tf.dispose(Object.values(tensors).filter((t) => t !== selfAttentionBias));
    }
  }
}
