/**
 * LoRA's two formulas, in PEFT's order of operations (`tuners/lora/layer.py`, `Linear.forward` and
 * `get_delta_weight`), so that results match it to float32 rounding.
 */
import { tf } from '../../tf.js';
import { dropout, linear } from '../layers.js';
import type { DropoutStream } from '../dropout_stream.js';
import type { LoraTarget } from './adapter.js';

/**
 * A LoRA linear: `x·Wᵀ + ((dropout(x)·Aᵀ)·Bᵀ)·scaling`, dropout only in training and only when the adapter has
 * some (its mask drawn from the forward pass's stream).
 */
export function loraLinear(x: tf.Tensor, weight: tf.Tensor, lora: LoraTarget, training: DropoutStream | undefined): tf.Tensor {
  const input = training && lora.dropout > 0 ? dropout(x, lora.dropout, training.next()) : x;
  return tf.add(linear(x, weight), tf.mul(linear(linear(input, lora.A), lora.B), lora.scaling));
}

/** The layer's weight with the update folded in, `W + (B·A)·scaling` [out, in] (what merging writes). */
export function mergedWeight(weight: tf.Tensor, lora: LoraTarget): tf.Tensor {
  return tf.tidy(() => tf.add(weight, tf.mul(tf.matMul(lora.B, lora.A), lora.scaling)));
}
