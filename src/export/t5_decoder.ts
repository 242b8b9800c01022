/**
 * The T5 decoder and LM head as transformers.js loads it for generation (`onnx/decoder_model_merged.onnx`, the
 * layout of Optimum's merged decoder), one graph for the first step and the cached ones:
 *
 * - inputs `encoder_attention_mask` (int64 [batch_size, encoder_sequence_length]), `input_ids` (int64
 *   [batch_size, decoder_sequence_length]), `encoder_hidden_states` (float32 [batch_size, encoder_sequence_length,
 *   d_model]), per decoder layer i `past_key_values.{i}.decoder.{key,value}` and
 *   `past_key_values.{i}.encoder.{key,value}` (float32 [batch_size, heads, length, d_kv]), and `use_cache_branch`
 *   (bool [1]);
 * - outputs `logits` (float32 [batch_size, decoder_sequence_length, vocab]) and `present.{i}.decoder.{key,value}`
 *   (the past self-attention keys/values followed by this call's) and `present.{i}.encoder.{key,value}`.
 *
 * On the first step transformers.js feeds empty pasts (length 0, sized from the declared input shapes) and
 * `use_cache_branch` false: the cross-attention keys/values are computed from `encoder_hidden_states`. On later
 * steps it feeds them back with `use_cache_branch` true, and an If node passes them through instead of computing
 * them again. Decoder positions continue after the past ones, so a step with a past of length p decodes position p.
 * Built from t5_layers.ts (the export's writing of T5; its header names the other two).
 */
import { GraphBuilder } from './graph_builder.js';
import type { Graph, ValueInfo } from '../protobuf/onnx_model.js';
import { T5Layers, type KeyValue } from './t5_layers.js';
import type { T5Weights } from './t5_weights.js';

type Part = 'decoder' | 'encoder';
const KINDS = ['key', 'value'] as const;

export const pastName = (layer: number, part: Part, kind: 'key' | 'value') => `past_key_values.${layer}.${part}.${kind}`;
export const presentName = (layer: number, part: Part, kind: 'key' | 'value') => `present.${layer}.${part}.${kind}`;

export function decoderMergedGraph(weights: T5Weights, int8 = false): Graph {
  const c = weights.config;
  const g = GraphBuilder.create();
  const t5 = new T5Layers(g, weights, int8);
  const layers = Array.from({ length: c.num_decoder_layers }, (_, i) => i);
  crossKeyValues(t5, layers);

  const pastLength = t5.length(pastName(0, 'decoder', 'key'), 2);
  const relative = t5.relativePositions(pastLength, g.op('Add', [pastLength, t5.length('input_ids', 1)]));
  const selfBias = g.op('Add', [t5.positionBias('decoder', relative), t5.causalMask(relative)]);
  const crossBias = t5.paddingMask('encoder_attention_mask');
  let h = t5.embed('input_ids');
  for (const [i, block] of weights.layout.decoder.blocks.entries()) {
    const self = block.selfAttention;
    const normed = t5.rmsNorm(h, block.selfAttentionNorm);
    const step = t5.keyValue(self, normed);
    const kv: KeyValue = {
      key: g.op('Concat', [pastName(i, 'decoder', 'key'), step.key], { axis: 2 }, presentName(i, 'decoder', 'key')),
      value: g.op('Concat', [pastName(i, 'decoder', 'value'), step.value], { axis: 2 }, presentName(i, 'decoder', 'value')),
    };
    h = g.op('Add', [h, t5.attention(self, normed, kv, selfBias)]);
    const crossIn = t5.rmsNorm(h, block.crossAttentionNorm);
    const cross: KeyValue = { key: presentName(i, 'encoder', 'key'), value: presentName(i, 'encoder', 'value') };
    h = g.op('Add', [h, t5.attention(block.crossAttention, crossIn, cross, crossBias)]);
    h = g.op('Add', [h, t5.feedForward(block.feedForward, t5.rmsNorm(h, block.feedForwardNorm))]);
  }
  let final = t5.rmsNorm(h, weights.layout.decoder.finalNorm);
  // Tied embeddings: rescale before the shared projection, as HF's T5 does (v1.1 / flan-t5 untie and do not).
  if (c.scale_decoder_outputs) final = g.op('Mul', [final, g.float(c.d_model ** -0.5)]);
  lmHead(t5, final);

  return g.graph('decoder_merged', inputs(weights), outputs(weights));
}

/**
 * Every layer's cross-attention keys/values, named `present.{i}.encoder.*`: one If node passes the fed-back ones
 * through (use_cache_branch) or computes them from the encoder output (first step).
 */
function crossKeyValues(t5: T5Layers, layers: number[]): void {
  const g = t5.g;
  const cached = g.subgraph();
  const computed = g.subgraph();
  const computedLayers = new T5Layers(computed, t5.weights, t5.int8);
  const cachedOutputs: string[] = [];
  const computedOutputs: string[] = [];
  for (const i of layers) {
    const kv = computedLayers.keyValue(t5.weights.layout.decoder.blocks[i]!.crossAttention, 'encoder_hidden_states');
    for (const kind of KINDS) {
      cachedOutputs.push(cached.op('Identity', [pastName(i, 'encoder', kind)]));
      computedOutputs.push(kv[kind]);
    }
  }
  const branch = (b: GraphBuilder, name: string, names: string[]) => ({
    graph: b.graph(
      name,
      [],
      names.map((n): ValueInfo => ({ name: n, type: 'float32' })),
    ),
  });
  const outputs = layers.flatMap((i) => KINDS.map((kind) => presentName(i, 'encoder', kind)));
  g.opWithOutputs('If', ['use_cache_branch'], outputs, {
    then_branch: branch(cached, 'cross_cached', cachedOutputs),
    else_branch: branch(computed, 'cross_computed', computedOutputs),
  });
}

/** logits = x @ head.T as one Gemm over [batch·length, d_model], sharing the embedding's tensor when tied. */
function lmHead(t5: T5Layers, x: string): void {
  const { g, weights } = t5;
  const c = weights.config;
  const head = t5.matrix(weights.layout.lmHead);
  const rows = g.op('Gemm', [g.op('Reshape', [x, g.int64([-1, c.d_model])]), head], { transB: 1 });
  const leading = g.op('Slice', [g.op('Shape', [x]), g.int64([0]), g.int64([2])]);
  g.op('Reshape', [rows, g.op('Concat', [leading, g.int64([c.vocab_size])], { axis: 0 })], undefined, 'logits');
}

/** Every decoder layer's self- and cross-attention keys/values as `name` names them; `selfLength`: the self axis. */
function keyValueInfos(weights: T5Weights, name: typeof pastName, selfLength: string): ValueInfo[] {
  const c = weights.config;
  const out: ValueInfo[] = [];
  for (let i = 0; i < c.num_decoder_layers; i++) {
    for (const part of ['decoder', 'encoder'] as const) {
      const length = part === 'decoder' ? selfLength : 'encoder_sequence_length_out';
      for (const kind of KINDS)
        out.push({ name: name(i, part, kind), type: 'float32', shape: ['batch_size', c.num_heads, length, c.d_kv] });
    }
  }
  return out;
}

function inputs(weights: T5Weights): ValueInfo[] {
  const c = weights.config;
  return [
    { name: 'encoder_attention_mask', type: 'int64', shape: ['batch_size', 'encoder_sequence_length'] },
    { name: 'input_ids', type: 'int64', shape: ['batch_size', 'decoder_sequence_length'] },
    { name: 'encoder_hidden_states', type: 'float32', shape: ['batch_size', 'encoder_sequence_length', c.d_model] },
    ...keyValueInfos(weights, pastName, 'past_decoder_sequence_length'),
    { name: 'use_cache_branch', type: 'bool', shape: [1] },
  ];
}

function outputs(weights: T5Weights): ValueInfo[] {
  const c = weights.config;
  return [
    { name: 'logits', type: 'float32', shape: ['batch_size', 'decoder_sequence_length', c.vocab_size] },
    ...keyValueInfos(weights, presentName, 'present_decoder_sequence_length'),
  ];
}
