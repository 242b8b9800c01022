/** T5's parameters: the checkpoint's names, shapes and HF's initialisation, in one table. */
import type { T5Config } from './config.js';

/**
 * Every parameter of a T5 in HF `named_parameters()` order, with its shape and HF's initialisation
 * (`T5PreTrainedModel._init_weights`): the standard deviation of a normal, or 'ones' for layer norms.
 */
export function parameterShapes(c: T5Config): [string, number[], number | 'ones'][] {
  const f = c.initializer_factor;
  const out: [string, number[], number | 'ones'][] = [['shared.weight', [c.vocab_size, c.d_model], f * 1.0]];
  const attention = (prefix: string, relative: boolean) => {
    out.push([`${prefix}.q.weight`, [c.innerDim, c.d_model], f * (c.d_model * c.d_kv) ** -0.5]);
    out.push([`${prefix}.k.weight`, [c.innerDim, c.d_model], f * c.d_model ** -0.5]);
    out.push([`${prefix}.v.weight`, [c.innerDim, c.d_model], f * c.d_model ** -0.5]);
    out.push([`${prefix}.o.weight`, [c.d_model, c.innerDim], f * c.innerDim ** -0.5]);
    if (relative)
      out.push([`${prefix}.relative_attention_bias.weight`, [c.relative_attention_num_buckets, c.num_heads], f * c.d_model ** -0.5]);
  };
  const ff = (prefix: string) => {
    if (c.isGatedAct) {
      out.push([`${prefix}.wi_0.weight`, [c.d_ff, c.d_model], f * c.d_model ** -0.5]);
      out.push([`${prefix}.wi_1.weight`, [c.d_ff, c.d_model], f * c.d_model ** -0.5]);
    } else {
      out.push([`${prefix}.wi.weight`, [c.d_ff, c.d_model], f * c.d_model ** -0.5]);
    }
    out.push([`${prefix}.wo.weight`, [c.d_model, c.d_ff], f * c.d_ff ** -0.5]);
  };
  for (let i = 0; i < c.num_layers; i++) {
    const pre = `encoder.block.${i}.layer`;
    attention(`${pre}.0.SelfAttention`, i === 0);
    out.push([`${pre}.0.layer_norm.weight`, [c.d_model], 'ones']);
    ff(`${pre}.1.DenseReluDense`);
    out.push([`${pre}.1.layer_norm.weight`, [c.d_model], 'ones']);
  }
  out.push(['encoder.final_layer_norm.weight', [c.d_model], 'ones']);
  for (let i = 0; i < c.num_decoder_layers; i++) {
    const pre = `decoder.block.${i}.layer`;
    attention(`${pre}.0.SelfAttention`, i === 0);
    out.push([`${pre}.0.layer_norm.weight`, [c.d_model], 'ones']);
    attention(`${pre}.1.EncDecAttention`, false);
    out.push([`${pre}.1.layer_norm.weight`, [c.d_model], 'ones']);
    ff(`${pre}.2.DenseReluDense`);
    out.push([`${pre}.2.layer_norm.weight`, [c.d_model], 'ones']);
  }
  out.push(['decoder.final_layer_norm.weight', [c.d_model], 'ones']);
  if (!c.tie_word_embeddings) out.push(['lm_head.weight', [c.vocab_size, c.d_model], f * 1.0]);
  return out;
}
