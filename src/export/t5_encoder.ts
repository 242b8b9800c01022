/**
 * The T5 encoder as transformers.js loads it (`onnx/encoder_model.onnx`, as Optimum exports it):
 * inputs `input_ids` and `attention_mask` (int64 [batch_size, encoder_sequence_length]), output
 * `last_hidden_state` (float32 [batch_size, encoder_sequence_length, d_model]), the final layer norm applied.
 * Built from t5_layers.ts (the export's writing of T5; its header names the other two).
 */
import { GraphBuilder } from './graph_builder.js';
import type { Graph } from '../protobuf/onnx_model.js';
import { T5Layers } from './t5_layers.js';
import type { T5Weights } from './t5_weights.js';

export function encoderGraph(weights: T5Weights, int8 = false): Graph {
  const c = weights.config;
  const g = GraphBuilder.create();
  const t5 = new T5Layers(g, weights, int8);
  const relative = t5.relativePositions(g.int64(0), t5.length('input_ids', 1));
  // Block 0's position bias serves every layer; the padding mask rides along in the same additive bias.
  const bias = g.op('Add', [t5.positionBias('encoder', relative), t5.paddingMask('attention_mask')]);
  const { blocks, finalNorm } = weights.layout.encoder;
  let h = t5.embed('input_ids');
  for (const block of blocks) {
    const attn = block.selfAttention;
    const normed = t5.rmsNorm(h, block.selfAttentionNorm);
    h = g.op('Add', [h, t5.attention(attn, normed, t5.keyValue(attn, normed), bias)]);
    h = g.op('Add', [h, t5.feedForward(block.feedForward, t5.rmsNorm(h, block.feedForwardNorm))]);
  }
  g.op('Identity', [t5.rmsNorm(h, finalNorm)], undefined, 'last_hidden_state');
  const ids = ['batch_size', 'encoder_sequence_length'];
  return g.graph(
    'encoder',
    [
      { name: 'input_ids', type: 'int64', shape: ids },
      { name: 'attention_mask', type: 'int64', shape: ids },
    ],
    [{ name: 'last_hidden_state', type: 'float32', shape: [...ids, c.d_model] }],
  );
}
