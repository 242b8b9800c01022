/**
 * T5's inference stacks as ONNX graphs, for ONNX Runtime to run in one call each (see engine/ort/graph_kernel.ts):
 * the same math as modeling_t5.ts, with the weights fed in as inputs (by their HF names) rather than baked in, so
 * one loaded graph serves a model through training. Attention is ONNX Runtime's MultiHeadAttention with scale 1
 * (T5 folds 1/sqrt(d) into the initialisation) and an additive bias that carries position bias and masks; layer
 * norms are its (Skip)SimplifiedLayerNormalization, which is T5's scale-only RMS norm.
 */
import { onnxModel, type OnnxNode } from '../engine/onnx/builder.js';
import type { GraphDefinition } from '../engine/ort/graph_kernel.js';
import type { T5Config } from './config.js';

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

function projection(nodes: OnnxNode[], x: string, weight: string, out: string): string {
  nodes.push({ op: 'FusedMatMul', domain: MS, inputs: [x, weight], outputs: [out], attributes: { transB: 1 } });
  return out;
}

/** The feed-forward block of `prefix` (DenseReluDense or DenseGatedActDense) on normed input `x`. */
function feedForward(nodes: OnnxNode[], c: T5Config, prefix: string, x: string): string {
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
  let h: string;
  if (c.isGatedAct) {
    const gate = act(projection(nodes, x, `${prefix}.wi_0.weight`, `${prefix}.wi_0`), `${prefix}.act`);
    const linear = projection(nodes, x, `${prefix}.wi_1.weight`, `${prefix}.wi_1`);
    nodes.push({ op: 'Mul', inputs: [gate, linear], outputs: [`${prefix}.gated`] });
    h = `${prefix}.gated`;
  } else {
    h = act(projection(nodes, x, `${prefix}.wi.weight`, `${prefix}.wi`), `${prefix}.act`);
  }
  return projection(nodes, h, `${prefix}.wo.weight`, `${prefix}.out`);
}

/**
 * Attention of `prefix` for queries from `x` over keys/values `kv` ([batch, keys, inner] or
 * [batch, heads, keys, d_kv]), plus the additive `bias` ([batch | 1, heads | 1, queries, keys]).
 */
function attention(nodes: OnnxNode[], c: T5Config, prefix: string, x: string, kv: { key: string; value: string }, bias: string): string {
  const q = projection(nodes, x, `${prefix}.q.weight`, `${prefix}.query`);
  nodes.push({
    op: 'MultiHeadAttention',
    domain: MS,
    // query, key, value, projection bias, key padding mask, attention bias
    inputs: [q, kv.key, kv.value, '', '', bias],
    outputs: [`${prefix}.context`],
    attributes: { num_heads: c.num_heads, scale: { float: 1 } },
  });
  return projection(nodes, `${prefix}.context`, `${prefix}.o.weight`, `${prefix}.attn`);
}

/**
 * Residual stream bookkeeping: adds `delta` to the stream and RMS-normalizes the sum with `norm` in one node;
 * returns the normed output and moves the stream on.
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
      inputs: [delta, this.stream, `${norm}.weight`],
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
      inputs: [this.stream, `${norm}.weight`],
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
  const nodes: OnnxNode[] = [];
  const params: string[] = [];
  const use = (...names: string[]) => params.push(...names);
  const stream = new Residual(nodes, c.layer_norm_epsilon, 'embedded');
  let delta = '';
  for (let i = 0; i < c.num_layers; i++) {
    const pre = `encoder.block.${i}.layer`;
    const attn = `${pre}.0.SelfAttention`;
    use(
      `${pre}.0.layer_norm.weight`,
      `${attn}.q.weight`,
      `${attn}.k.weight`,
      `${attn}.v.weight`,
      `${attn}.o.weight`,
      `${pre}.1.layer_norm.weight`,
    );
    use(...feedForwardWeights(c, `${pre}.1.DenseReluDense`));
    const x = i === 0 ? stream.norm(`${pre}.0.layer_norm`) : stream.addAndNorm(delta, `${pre}.0.layer_norm`);
    const kv = {
      key: projection(nodes, x, `${attn}.k.weight`, `${attn}.key`),
      value: projection(nodes, x, `${attn}.v.weight`, `${attn}.value`),
    };
    const ffIn = stream.addAndNorm(attention(nodes, c, attn, x, kv, 'bias'), `${pre}.1.layer_norm`);
    delta = feedForward(nodes, c, `${pre}.1.DenseReluDense`, ffIn);
  }
  use('encoder.final_layer_norm.weight');
  const encoded = c.num_layers > 0 ? stream.addAndNorm(delta, 'encoder.final_layer_norm') : stream.norm('encoder.final_layer_norm');
  nodes.push({ op: 'Identity', inputs: [encoded], outputs: ['encoded'] });
  const outputs = ['encoded'];
  for (let j = 0; j < c.num_decoder_layers; j++) {
    const attn = `decoder.block.${j}.layer.1.EncDecAttention`;
    for (const part of ['key', 'value'] as const) {
      const w = `${attn}.${part[0]}.weight`;
      use(w);
      const flat = projection(nodes, 'encoded', w, `${attn}.${part}.flat`);
      nodes.push({ op: 'Reshape', inputs: [flat, 'heads_shape'], outputs: [`${attn}.${part}.heads`] });
      nodes.push({
        op: 'Transpose',
        inputs: [`${attn}.${part}.heads`],
        outputs: [`cross.${j}.${part}`],
        attributes: { perm: [0, 2, 1, 3] },
      });
      outputs.push(`cross.${j}.${part}`);
    }
  }
  const inputs = ['embedded', 'bias', ...params];
  const key = `encoder/${c.num_layers}x${c.num_decoder_layers}/${c.num_heads}x${c.d_kv}/${c.isGatedAct ? 'gated-' : ''}${c.denseActFn}/${c.layer_norm_epsilon}`;
  return {
    key,
    inputs,
    outputs,
    parameters: params,
    build: () => onnxModel(nodes, inputs, outputs, undefined, { heads_shape: [0, 0, c.num_heads, c.d_kv] }),
  };
}

/** The weight names of a feed-forward block. */
function feedForwardWeights(c: T5Config, prefix: string): string[] {
  return (c.isGatedAct ? ['wi_0', 'wi_1', 'wo'] : ['wi', 'wo']).map((w) => `${prefix}.${w}.weight`);
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
  const nodes: OnnxNode[] = [];
  const params: string[] = [];
  const use = (...names: string[]) => params.push(...names);
  const stream = new Residual(nodes, c.layer_norm_epsilon, 'embedded');
  const crossInputs: string[] = [];
  let delta = '';
  for (let i = 0; i < c.num_decoder_layers; i++) {
    const pre = `decoder.block.${i}.layer`;
    const self = `${pre}.0.SelfAttention`;
    const cross = `${pre}.1.EncDecAttention`;
    crossInputs.push(`cross.${i}.key`, `cross.${i}.value`);
    use(`${pre}.0.layer_norm.weight`, `${self}.q.weight`, `${self}.k.weight`, `${self}.v.weight`, `${self}.o.weight`);
    use(`${pre}.1.layer_norm.weight`, `${cross}.q.weight`, `${cross}.o.weight`, `${pre}.2.layer_norm.weight`);
    use(...feedForwardWeights(c, `${pre}.2.DenseReluDense`));
    const x = i === 0 ? stream.norm(`${pre}.0.layer_norm`) : stream.addAndNorm(delta, `${pre}.0.layer_norm`);
    const kv = {
      key: projection(nodes, x, `${self}.k.weight`, `${self}.key`),
      value: projection(nodes, x, `${self}.v.weight`, `${self}.value`),
    };
    const crossIn = stream.addAndNorm(attention(nodes, c, self, x, kv, 'self_bias'), `${pre}.1.layer_norm`);
    const crossKv = { key: `cross.${i}.key`, value: `cross.${i}.value` };
    const ffIn = stream.addAndNorm(attention(nodes, c, cross, crossIn, crossKv, 'cross_bias'), `${pre}.2.layer_norm`);
    delta = feedForward(nodes, c, `${pre}.2.DenseReluDense`, ffIn);
  }
  use('decoder.final_layer_norm.weight');
  const final = c.num_decoder_layers > 0 ? stream.addAndNorm(delta, 'decoder.final_layer_norm') : stream.norm('decoder.final_layer_norm');
  nodes.push({ op: 'Mul', inputs: [final, 'head_scale'], outputs: ['head_input'] });
  const head = c.tie_word_embeddings ? 'shared.weight' : 'lm_head.weight';
  use(head);
  projection(nodes, 'head_input', head, 'logits');
  const inputs = ['embedded', 'self_bias', 'cross_bias', 'head_scale', ...crossInputs, ...params];
  const outputs = ['logits'];
  const key = `decoder/${c.num_decoder_layers}/${c.num_heads}x${c.d_kv}/${c.isGatedAct ? 'gated-' : ''}${c.denseActFn}/${c.layer_norm_epsilon}/${c.tie_word_embeddings ? 'tied' : 'untied'}`;
  return { key, inputs, outputs, parameters: params, build: () => onnxModel(nodes, inputs, outputs) };
}
