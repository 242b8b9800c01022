/**
 * T5's building blocks as ONNX nodes, standard operators only (opset 17), so that every onnxruntime build runs them
 * (onnxruntime-web's wasm and WebGPU included): the same math as model/layers.ts and modeling_t5.ts. Tensors are
 * [batch, length, d_model] between blocks and [batch, heads, length, d_kv] inside attention.
 *
 * T5 is written three times in this project: model/modeling_t5.ts in tfjs ops (training, and inference where no
 * graph runs); model/native_graphs.ts, the inference graphs ONNX Runtime runs in this process, fed the live model's
 * weights (contrib operators); and these layers, for the files of the export (t5_encoder.ts, t5_decoder.ts), which
 * other runtimes load with the weights baked in.
 */
import type { T5Config } from '../model/config.js';
import { MASK_MIN } from '../model/layers.js';
import type { AttentionParameters, FeedForwardParameters } from '../model/parameters.js';
import type { GraphBuilder } from './graph_builder.js';
import type { Stack, T5Weights } from './t5_weights.js';

/** Key and value states of one attention layer, [batch, heads, keys, d_kv]. */
export interface KeyValue {
  key: string;
  value: string;
}

export class T5Layers {
  /** `int8`: matrices stored in 8 bits and dequantized in the graph (layer norms and position tables stay float). */
  constructor(
    readonly g: GraphBuilder,
    readonly weights: T5Weights,
    readonly int8 = false,
  ) {}

  private get c(): T5Config {
    return this.weights.config;
  }

  /** Token embeddings: [batch, length] int64 ids → [batch, length, d_model]. */
  embed(ids: string): string {
    const g = this.g;
    if (!this.int8) return g.op('Gather', [g.initializer(this.weights.stored(this.weights.layout.shared)), ids], { axis: 0 });
    // Only the looked-up rows are dequantized: int8 rows times their scales.
    const { q, scale } = this.weights.rowsInt8(this.weights.layout.shared);
    const [values, scales] = [g.initializer(q), g.initializer(scale)];
    const rows = g.op('Cast', [g.op('Gather', [values, ids], { axis: 0 })], { to: 1 });
    return g.op('Mul', [rows, g.op('Unsqueeze', [g.op('Gather', [scales, ids], { axis: 0 }), g.int64([-1])])]);
  }

  /** A stored [rows, cols] matrix (the embedding, the LM head) as float32, dequantized from 8 bits if need be. */
  matrix(name: string): string {
    const g = this.g;
    if (!this.int8) return g.initializer(this.weights.stored(name));
    const { q, scale } = this.weights.rowsInt8(name);
    return g.op('DequantizeLinear', [g.initializer(q), g.initializer(scale)], { axis: 0 });
  }

  /** T5LayerNorm: x · rsqrt(mean(x²) + eps) · weight (scale only, no mean subtraction). */
  rmsNorm(x: string, weightName: string): string {
    const g = this.g;
    const variance = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [-1], keepdims: 1 });
    const inverse = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [variance, g.float(this.c.layer_norm_epsilon)])])]);
    return g.op('Mul', [g.initializer(this.weights.stored(weightName)), g.op('Mul', [x, inverse])]);
  }

  /** A bias-free torch Linear: x @ weight.T. */
  linear(x: string, weightName: string, output?: string): string {
    const g = this.g;
    if (!this.int8) return g.op('MatMul', [x, g.initializer(this.weights.linear(weightName))], undefined, output);
    const { q, scale } = this.weights.linearInt8(weightName);
    return g.op('MatMul', [x, g.op('DequantizeLinear', [g.initializer(q), g.initializer(scale)], { axis: 1 })], undefined, output);
  }

  /** [batch, length, heads·d_kv] → [batch, heads, length, d_kv]. */
  splitHeads(x: string): string {
    const g = this.g;
    const split = g.op('Reshape', [x, g.int64([0, 0, this.c.num_heads, this.c.d_kv])]);
    return g.op('Transpose', [split], { perm: [0, 2, 1, 3] });
  }

  /** Keys and values of attention `a` for the states `x`, [batch, heads, length, d_kv]. */
  keyValue(a: AttentionParameters, x: string): KeyValue {
    return { key: this.splitHeads(this.linear(x, a.k)), value: this.splitHeads(this.linear(x, a.v)) };
  }

  /**
   * T5Attention `a`: queries from `x` over `kv`, plus the additive `bias` (position bias and masks,
   * broadcast to [batch, heads, queries, keys]). No 1/sqrt(d) scaling: T5 folds it into the initialisation.
   */
  attention(a: AttentionParameters, x: string, kv: KeyValue, bias: string): string {
    const g = this.g;
    const query = this.splitHeads(this.linear(x, a.q));
    const keysT = g.op('Transpose', [kv.key], { perm: [0, 1, 3, 2] });
    const scores = g.op('Add', [g.op('MatMul', [query, keysT]), bias]);
    const context = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), kv.value]);
    const merged = g.op('Reshape', [g.op('Transpose', [context], { perm: [0, 2, 1, 3] }), g.int64([0, 0, this.c.innerDim])]);
    return this.linear(merged, a.o);
  }

  /** The feed-forward block `ff` (DenseReluDense or DenseGatedActDense) on normed input `x`. */
  feedForward(ff: FeedForwardParameters, x: string): string {
    const [wi, wiLinear] = ff.wi;
    const activated = this.activation(this.linear(x, wi));
    const hidden = wiLinear === undefined ? activated : this.g.op('Mul', [activated, this.linear(x, wiLinear)]);
    return this.linear(hidden, ff.wo);
  }

  private activation(x: string): string {
    const g = this.g;
    switch (this.c.denseActFn) {
      case 'relu':
        return g.op('Relu', [x]);
      case 'gelu_new':
      case 'gelu_pytorch_tanh': {
        // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x³)))
        const cube = g.op('Mul', [x, g.op('Mul', [x, x])]);
        const inner = g.op('Mul', [g.float(Math.sqrt(2 / Math.PI)), g.op('Add', [x, g.op('Mul', [g.float(0.044715), cube])])]);
        return g.op('Mul', [g.op('Mul', [g.float(0.5), x]), g.op('Add', [g.float(1), g.op('Tanh', [inner])])]);
      }
      case 'gelu': {
        const erf = g.op('Erf', [g.op('Mul', [x, g.float(Math.SQRT1_2)])]);
        return g.op('Mul', [g.op('Mul', [g.float(0.5), x]), g.op('Add', [g.float(1), erf])]);
      }
      case 'silu':
        return g.op('Mul', [x, g.op('Sigmoid', [x])]);
    }
  }

  /** The length (dimension `axis`) of a tensor, as an int64 scalar. */
  length(x: string, axis: number): string {
    return this.g.op('Gather', [this.g.op('Shape', [x]), this.g.int64(axis)], { axis: 0 });
  }

  /** Key position − query position, [queries, keys] int64, for queries at [queryStart, keyCount) and keys at [0, keyCount). */
  relativePositions(queryStart: string, keyCount: string): string {
    const g = this.g;
    const one = g.int64(1);
    const keys = g.op('Range', [g.int64(0), keyCount, one]);
    const queries = g.op('Range', [queryStart, keyCount, one]);
    return g.op('Sub', [g.op('Unsqueeze', [keys, g.int64([0])]), g.op('Unsqueeze', [queries, g.int64([1])])]);
  }

  /** The relative position bias of a stack, [1, heads, queries, keys], for relative positions [queries, keys]. */
  positionBias(stack: Stack, relative: string): string {
    const g = this.g;
    const d = this.c.relative_attention_max_distance;
    const clamped = g.op('Clip', [relative, g.int64(-d), g.int64(d)]);
    const rows = g.op('Gather', [g.initializer(this.weights.positionTable(stack)), g.op('Add', [clamped, g.int64(d)])], { axis: 0 });
    return g.op('Unsqueeze', [g.op('Transpose', [rows], { perm: [2, 0, 1] }), g.int64([0])]);
  }

  /** The additive padding mask [batch, 1, 1, keys] of a 0/1 int64 attention mask [batch, keys]. */
  paddingMask(mask: string): string {
    const g = this.g;
    const masked = g.op('Sub', [g.float(1), g.op('Cast', [mask], { to: 1 })]);
    return g.op('Unsqueeze', [g.op('Mul', [masked, g.float(MASK_MIN)]), g.int64([1, 2])]);
  }

  /** The additive causal mask [1, 1, queries, keys]: a key after the query is masked. */
  causalMask(relative: string): string {
    const g = this.g;
    const future = g.op('Cast', [g.op('Greater', [relative, g.int64(0)])], { to: 1 });
    return g.op('Unsqueeze', [g.op('Mul', [future, g.float(MASK_MIN)]), g.int64([0, 1])]);
  }
}
