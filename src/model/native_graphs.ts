/**
 * T5's inference stacks as ONNX graphs, for ONNX Runtime to run in one call each (see engine/ort/graph_kernel.ts):
 * the same math as modeling_t5.ts, with the weights fed in as inputs (by their HF names) rather than baked in, so
 * one loaded graph serves a model through training. Attention is ONNX Runtime's MultiHeadAttention with scale 1
 * (T5 folds 1/sqrt(d) into the initialisation) and an additive bias that carries position bias and masks; layer
 * norms are its (Skip)SimplifiedLayerNormalization, which is T5's scale-only RMS norm.
 *
 * T5 is written three times in this project: modeling_t5.ts in tfjs ops (training, and inference where no graph
 * runs); these graphs, which t5_runtime.ts runs for inference where ONNX Runtime is loaded (contrib operators of
 * onnxruntime-node, this process only); and export/t5_layers.ts, the ONNX files of the export for transformers.js
 * (standard operators, weights baked in).
 */
import { onnxModel, type GraphDefinition, type OnnxNode } from '../engine/ops.js';
import type { T5Config } from './config.js';
import { attentionWeights, feedForwardWeights, t5Parameters, type AttentionParameters, type FeedForwardParameters } from './parameters.js';

/** A graph whose inputs are named tensors (see each builder) and the model's parameters, by their HF names. */
export interface NativeGraph extends GraphDefinition {
  readonly parameters: readonly string[];
}

/**
 * The graph's inputs in its order: each by name from `named`, or a parameter from `parameter(name)`. Throws when
 * an input is neither, or `named` holds a name the graph does not take.
 */
export function graphFeeds<T>(graph: NativeGraph, named: Record<string, T>, parameter: (name: string) => T): T[] {
  const params = new Set(graph.parameters);
  for (const name of Object.keys(named)) {
    if (!graph.inputs.includes(name) || params.has(name)) throw new Error(`${graph.key}: "${name}" is not one of its tensor inputs`);
  }
  return graph.inputs.map((name) => {
    const t = named[name];
    if (t !== undefined) return t;
    if (!params.has(name)) throw new Error(`${graph.key}: input "${name}" was not given`);
    return parameter(name);
  });
}

const MS = 'com.microsoft' as const;

/** The feed-forward activation as it enters a graph's cache key: `relu`, `gated-gelu_new`, … */
function activationKey(c: T5Config): string {
  return `${c.isGatedAct ? 'gated-' : ''}${c.denseActFn}`;
}

function projection(nodes: OnnxNode[], x: string, weight: string, out: string): string {
  nodes.push({ op: 'FusedMatMul', domain: MS, inputs: [x, weight], outputs: [out], attributes: { transB: 1 } });
  return out;
}

/** The feed-forward block `ff` (DenseReluDense or DenseGatedActDense) on normed input `x`. */
function feedForward(nodes: OnnxNode[], c: T5Config, ff: FeedForwardParameters, x: string): string {
  const prefix = ff.module;
  const act = (input: string, out: string): string => {
    switch (c.denseActFn) {
      case 'relu':
        nodes.push({ op: 'Relu', inputs: [input], outputs: [out] });
        break;
      case 'gelu_new':
      case 'gelu_pytorch_tanh':
        nodes.push({ op: 'FastGelu', domain: MS, inputs: [input], outputs: [out] });
        break;
      case 'gelu':
        nodes.push({ op: 'Gelu', domain: MS, inputs: [input], outputs: [out] });
        break;
      case 'silu':
        nodes.push({ op: 'Sigmoid', inputs: [input], outputs: [`${out}.sigmoid`] });
        nodes.push({ op: 'Mul', inputs: [input, `${out}.sigmoid`], outputs: [out] });
        break;
    }
    return out;
  };
  const [wi, wiLinear] = ff.wi;
  let h = act(projection(nodes, x, wi, `${prefix}.wi`), `${prefix}.act`);
  if (wiLinear !== undefined) {
    const linear = projection(nodes, x, wiLinear, `${prefix}.wi_linear`);
    nodes.push({ op: 'Mul', inputs: [h, linear], outputs: [`${prefix}.gated`] });
    h = `${prefix}.gated`;
  }
  return projection(nodes, h, ff.wo, `${prefix}.out`);
}

/**
 * Attention `a` for queries from `x` over keys/values `kv` ([batch, keys, inner] or
 * [batch, heads, keys, d_kv]), plus the additive `bias` ([batch | 1, heads | 1, queries, keys]).
 */
function attention(
  nodes: OnnxNode[],
  c: T5Config,
  a: AttentionParameters,
  x: string,
  kv: { key: string; value: string },
  bias: string,
): string {
  const q = projection(nodes, x, a.q, `${a.module}.query`);
  nodes.push({
    op: 'MultiHeadAttention',
    domain: MS,
    // query, key, value, projection bias, key padding mask, attention bias
    inputs: [q, kv.key, kv.value, '', '', bias],
    outputs: [`${a.module}.context`],
    attributes: { num_heads: c.num_heads, scale: { float: 1 } },
  });
  return projection(nodes, `${a.module}.context`, a.o, `${a.module}.attn`);
}

/**
 * Residual stream bookkeeping: adds `delta` to the stream and RMS-normalizes the sum with the norm weight `norm` in
 * one node; returns the normed output and moves the stream on.
 */
class Residual {
  constructor(
    private readonly nodes: OnnxNode[],
    private readonly eps: number,
    public stream: string,
  ) {}

  addAndNorm(delta: string, norm: string): string {
    const sum = `${delta}.residual`;
    const out = `${norm}.normed`;
    this.nodes.push({
      op: 'SkipSimplifiedLayerNormalization',
      domain: MS,
      inputs: [delta, this.stream, norm],
      outputs: [out, '', '', sum],
      attributes: { epsilon: { float: this.eps } },
    });
    this.stream = sum;
    return out;
  }

  norm(norm: string): string {
    const out = `${norm}.normed`;
    this.nodes.push({
      op: 'SimplifiedLayerNormalization',
      inputs: [this.stream, norm],
      outputs: [out],
      attributes: { epsilon: { float: this.eps }, axis: -1 },
    });
    return out;
  }
}

/**
 * The encoder stack for inference, with every decoder layer's cross-attention keys and values.
 * Inputs: `embedded` [batch, length, d_model] (token embeddings), `bias` [batch, heads, length, length] (position
 * bias + padding mask), then the encoder's and the cross-attention key/value parameters.
 * Outputs: `encoded` [batch, length, d_model], then `cross.{j}.key` and `cross.{j}.value` [batch, heads, length, d_kv]
 * for each decoder layer j.
 */
export function encoderGraph(c: T5Config): NativeGraph {
  const layout = t5Parameters(c);
  const nodes: OnnxNode[] = [];
  const params: string[] = [];
  const use = (...names: string[]) => params.push(...names);
  const stream = new Residual(nodes, c.layer_norm_epsilon, 'embedded');
  let delta = '';
  for (const [i, block] of layout.encoder.blocks.entries()) {
    const attn = block.selfAttention;
    use(block.selfAttentionNorm, ...attentionWeights(attn), block.feedForwardNorm, ...feedForwardWeights(block.feedForward));
    const x = i === 0 ? stream.norm(block.selfAttentionNorm) : stream.addAndNorm(delta, block.selfAttentionNorm);
    const kv = {
      key: projection(nodes, x, attn.k, `${attn.module}.key`),
      value: projection(nodes, x, attn.v, `${attn.module}.value`),
    };
    const ffIn = stream.addAndNorm(attention(nodes, c, attn, x, kv, 'bias'), block.feedForwardNorm);
    delta = feedForward(nodes, c, block.feedForward, ffIn);
  }
  const finalNorm = layout.encoder.finalNorm;
  use(finalNorm);
  const encoded = layout.encoder.blocks.length > 0 ? stream.addAndNorm(delta, finalNorm) : stream.norm(finalNorm);
  nodes.push({ op: 'Identity', inputs: [encoded], outputs: ['encoded'] });
  const outputs = ['encoded'];
  for (const [j, block] of layout.decoder.blocks.entries()) {
    const attn = block.crossAttention;
    for (const part of ['key', 'value'] as const) {
      const w = part === 'key' ? attn.k : attn.v;
      use(w);
      const flat = projection(nodes, 'encoded', w, `${attn.module}.${part}.flat`);
      nodes.push({ op: 'Reshape', inputs: [flat, 'heads_shape'], outputs: [`${attn.module}.${part}.heads`] });
      nodes.push({
        op: 'Transpose',
        inputs: [`${attn.module}.${part}.heads`],
        outputs: [`cross.${j}.${part}`],
        attributes: { perm: [0, 2, 1, 3] },
      });
      outputs.push(`cross.${j}.${part}`);
    }
  }
  const inputs = ['embedded', 'bias', ...params];
  const key = `encoder/${c.num_layers}x${c.num_decoder_layers}/${c.num_heads}x${c.d_kv}/${activationKey(c)}/${c.layer_norm_epsilon}`;
  return {
    key,
    inputs,
    outputs,
    parameters: params,
    build: () => onnxModel(nodes, inputs, outputs, undefined, { heads_shape: [0, 0, c.num_heads, c.d_kv] }),
  };
}

/**
 * The decoder stack and LM head for inference over whole decoder sequences (no key/value cache), given the
 * cross-attention keys/values from `encoderGraph`.
 * Inputs: `embedded` [batch, length, d_model], `self_bias` [batch | 1, heads, length, length] (position bias +
 * causal or prefix-tree mask), `cross_bias` [batch, 1, length, encoder length] (padding mask), `head_scale` [1]
 * (multiplies the final hidden states: d_model^-0.5 with tied embeddings, else 1), `cross.{j}.key` and
 * `cross.{j}.value` [batch, heads, encoder length, d_kv], then the decoder's parameters and the LM head's.
 * Output: `logits` [batch, length, vocab].
 */
export function decoderGraph(c: T5Config): NativeGraph {
  const layout = t5Parameters(c);
  const nodes: OnnxNode[] = [];
  const params: string[] = [];
  const use = (...names: string[]) => params.push(...names);
  const stream = new Residual(nodes, c.layer_norm_epsilon, 'embedded');
  const crossInputs: string[] = [];
  let delta = '';
  for (const [i, block] of layout.decoder.blocks.entries()) {
    const { selfAttention: self, crossAttention: cross } = block;
    crossInputs.push(`cross.${i}.key`, `cross.${i}.value`);
    use(block.selfAttentionNorm, ...attentionWeights(self));
    use(block.crossAttentionNorm, cross.q, cross.o, block.feedForwardNorm, ...feedForwardWeights(block.feedForward));
    const x = i === 0 ? stream.norm(block.selfAttentionNorm) : stream.addAndNorm(delta, block.selfAttentionNorm);
    const kv = {
      key: projection(nodes, x, self.k, `${self.module}.key`),
      value: projection(nodes, x, self.v, `${self.module}.value`),
    };
    const crossIn = stream.addAndNorm(attention(nodes, c, self, x, kv, 'self_bias'), block.crossAttentionNorm);
    const crossKv = { key: `cross.${i}.key`, value: `cross.${i}.value` };
    const ffIn = stream.addAndNorm(attention(nodes, c, cross, crossIn, crossKv, 'cross_bias'), block.feedForwardNorm);
    delta = feedForward(nodes, c, block.feedForward, ffIn);
  }
  const finalNorm = layout.decoder.finalNorm;
  use(finalNorm);
  const final = layout.decoder.blocks.length > 0 ? stream.addAndNorm(delta, finalNorm) : stream.norm(finalNorm);
  nodes.push({ op: 'Mul', inputs: [final, 'head_scale'], outputs: ['head_input'] });
  use(layout.lmHead);
  projection(nodes, 'head_input', layout.lmHead, 'logits');
  const inputs = ['embedded', 'self_bias', 'cross_bias', 'head_scale', ...crossInputs, ...params];
  const outputs = ['logits'];
  const head = c.tie_word_embeddings ? 'tied' : 'untied';
  const key = `decoder/${c.num_decoder_layers}/${c.num_heads}x${c.d_kv}/${activationKey(c)}/${c.layer_norm_epsilon}/${head}`;
  return { key, inputs, outputs, parameters: params, build: () => onnxModel(nodes, inputs, outputs) };
}
