/**
 * Fused kernels for T5's element-wise and row-wise pieces, registered on the embedded backends (cpu, wasm): each
 * replaces a chain of tfjs ops (and their full-size temporaries) by one pass over the data. One kernel (and its
 * gradient kernel) per file: dropout.ts, rms_norm.ts, token_nll.ts, log_probs_at.ts; here, their registration and
 * the ops the model calls.
 */
import type { KernelFunc } from '@tensorflow/tfjs';

import { tf } from '../../tf.js';
import { hostStorage } from '../host_update.js';
import { replaceKernel } from '../tfjs_internals.js';
import { ORT_MIN_ELEMENTS } from './ort_route.js';
import { dropoutKernel } from './dropout.js';
import { logProbsAtKernel } from './log_probs_at.js';
import { rmsNormGradient, rmsNormGradKernel, rmsNormKernel } from './rms_norm.js';
import { tokenNllGradient, tokenNllGradKernel, tokenNllKernel } from './token_nll.js';
import { gatedGeluGradient } from './gated_gelu_gradient.js';

export const FUSED_KERNELS = [
  'T5clsDropout',
  'T5clsRmsNorm',
  'T5clsRmsNormGrad',
  'T5clsTokenNll',
  'T5clsTokenNllGrad',
  'T5clsLogProbsAt',
] as const;

const KERNELS: Record<(typeof FUSED_KERNELS)[number], KernelFunc> = {
  T5clsLogProbsAt: logProbsAtKernel,
  T5clsDropout: dropoutKernel,
  T5clsRmsNorm: rmsNormKernel,
  T5clsRmsNormGrad: rmsNormGradKernel,
  T5clsTokenNll: tokenNllKernel,
  T5clsTokenNllGrad: tokenNllGradKernel,
};

/** Registers the fused kernels for `backendName`. */
export function installFusedKernels(backendName: 'cpu' | 'wasm'): void {
  for (const name of FUSED_KERNELS) replaceKernel(name, backendName, 'fused', KERNELS[name]);
  for (const gradient of [rmsNormGradient, tokenNllGradient, gatedGeluGradient]) tf.registerGradient(gradient);
}

/** Whether the fused kernels can run now: they are on, and registered for the backend in use. */
export function fusedAvailable(): boolean {
  return hostStorage() !== undefined && tf.getKernel('T5clsDropout', tf.getBackend()) !== undefined;
}

function run(name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, number> = {}): tf.Tensor | tf.Tensor[] {
  return tf.engine().runKernel(name, inputs as never, attrs as never) as tf.Tensor | tf.Tensor[];
}

type Forward = (
  inputs: tf.Tensor[],
  save: tf.GradSaveFunc,
) => {
  value: tf.Tensor;
  gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[];
};

/**
 * tf.customGrad over a list of tensor inputs. The dropout kernels use it rather than a registered gradient: they
 * have a second output (the mask the gradient multiplies by) that nothing downstream uses, and tfjs fills an unused
 * output's gradient with a tensor of zeros its size before calling a registered gradient.
 */
function withGradient(forward: Forward, inputs: tf.Tensor[]): tf.Tensor {
  const f = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) =>
    forward(args.slice(0, -1) as tf.Tensor[], args[args.length - 1] as tf.GradSaveFunc)) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(...inputs);
}

/** Inverted dropout through `T5clsDropout` (see dropout in model/layers.ts for the unfused ops). */
export function fusedDropout(x: tf.Tensor, rate: number, seed: number): tf.Tensor {
  return withGradient(
    ([input], save) => {
      const [y, mask] = run('T5clsDropout', { x: input! }, { rate, seed }) as tf.Tensor[];
      save([mask!]);
      return { value: y!, gradFunc: (dy, saved) => tf.mul(dy, saved[0]!) };
    },
    [x],
  );
}

/**
 * dropout(relu(x)) through `T5clsReluDropout` where the backend has it (the cpu engine), else undefined. Same masks
 * and values as `fusedDropout(relu(x))`; its gradient is one product with the kernel's keep · step(x).
 */
export function fusedReluDropout(x: tf.Tensor, rate: number, seed: number): tf.Tensor | undefined {
  if (!tf.getKernel('T5clsReluDropout', tf.getBackend())) return undefined;
  return withGradient(
    ([input], save) => {
      const [y, factor] = run('T5clsReluDropout', { x: input! }, { rate, seed }) as tf.Tensor[];
      save([factor!]);
      return { value: y!, gradFunc: (dy, saved) => tf.mul(dy, saved[0]!) };
    },
    [x],
  );
}

/**
 * gelu_new(a) · b through `T5clsGatedGelu` where the backend has it (the cpu engine with ONNX Runtime) and the
 * tensor is large enough to pay for the call, else undefined.
 */
export function fusedGatedGelu(a: tf.Tensor, b: tf.Tensor): tf.Tensor | undefined {
  if (!tf.getKernel('T5clsGatedGelu', tf.getBackend()) || a.size < ORT_MIN_ELEMENTS.value) return undefined;
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || !tf.util.arraysEqual(a.shape, b.shape)) return undefined;
  return run('T5clsGatedGelu', { a, b }) as tf.Tensor;
}

/** T5LayerNorm through `T5clsRmsNorm` (gradient `T5clsRmsNormGrad`). */
export function fusedRmsNorm(x: tf.Tensor, weight: tf.Tensor, eps: number): tf.Tensor {
  return run('T5clsRmsNorm', { x, weight }, { eps }) as tf.Tensor;
}

/** Token NLL through `T5clsTokenNll` (gradient `T5clsTokenNllGrad`). */
export function fusedTokenNll(logits: tf.Tensor, labels: tf.Tensor): tf.Tensor {
  return run('T5clsTokenNll', { logits, labels }) as tf.Tensor;
}

/** log softmax(logits[rows[p]])[tokens[p]] for every pair p, through `T5clsLogProbsAt`; logits [rows, vocab]. */
export function fusedLogProbsAt(logits: tf.Tensor, rows: tf.Tensor, tokens: tf.Tensor): tf.Tensor {
  return run('T5clsLogProbsAt', { logits, rows, tokens }) as tf.Tensor;
}
