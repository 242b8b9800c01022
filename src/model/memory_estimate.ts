/**
 * How much memory a T5 job needs, from its config and batch shape alone (nothing is allocated): weights,
 * gradients, optimizer state and the activations a training step keeps for its backward pass. Used to pick an
 * engine that can hold the job and to refuse, in one line, a job this machine cannot hold.
 *
 * Activations are counted per layer from the tensors the forward pass saves (float32), as this project's T5
 * computes them; the figures were checked against measured peak memory (see scripts/bench.ts).
 */
import type { T5Config } from './config.js';
import { parameterShapes } from './parameters.js';
import { T5clsError } from '../errors.js';
import { WASM_TENSOR_BYTES } from '../engine/ops.js';

export type OptimizerName = 'adamw' | 'adafactor';

export interface JobShape {
  batchSize: number;
  /** Encoder tokens per example. */
  sourceLength: number;
  /** Decoder tokens per example (label tokens + EOS). */
  targetLength: number;
  /** Training with this optimizer; undefined for inference only. */
  optimizer?: OptimizerName;
}

export interface MemoryEstimate {
  parameters: number;
  weightBytes: number;
  gradientBytes: number;
  optimizerBytes: number;
  activationBytes: number;
  /** Everything above: what the tensors need at the peak of a step. */
  tensorBytes: number;
  /** tensorBytes plus the runtime itself (Node.js, TensorFlow.js, ONNX Runtime) and allocator slack. */
  totalBytes: number;
}

const F32 = 4;
/** Node.js, tfjs, ONNX Runtime and their code and buffers, measured on an idle process with everything loaded. */
export const RUNTIME_BYTES = 400 * 2 ** 20;
/** Freed tensors whose memory has not been returned yet, and allocator rounding: a share of what the tensors need. */
const SLACK = 0.1;

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Parameters of a T5 of this config: the sizes of the table the model is built from (nothing is allocated). */
export function parameterCount(c: T5Config): number {
  return parameterShapes(c).reduce((n, [, shape]) => n + size(shape), 0);
}

/**
 * Adafactor's state per parameter: row and column moments for matrices (factored), a full moment for vectors, and
 * an RMS scalar each.
 */
function adafactorStateElements(c: T5Config): number {
  const moments = (shape: number[]) =>
    // Rows [..., rows] and columns [..., cols] of a matrix (HF's exp_avg_sq_row / _col); a vector keeps a full one.
    shape.length >= 2 ? size(shape.slice(0, -1)) + size(shape.slice(0, -2)) * shape[shape.length - 1]! : size(shape);
  return parameterShapes(c).reduce((n, [, shape]) => n + moments(shape) + 1, 0);
}

/**
 * Float32 elements one training step keeps for its backward pass (per layer: the normed inputs, projections,
 * attention scores and weights with their dropout masks, feed-forward activations with theirs), plus the LM
 * head's logits and their gradient.
 */
function activationElements(c: T5Config, job: JobShape): number {
  const b = job.batchSize;
  const s = job.sourceLength;
  const t = job.targetLength;
  const training = job.optimizer !== undefined;
  const ffWidth = (c.isGatedAct ? 4 : 3) * c.d_ff;
  // Per token: residual stream copies, norms and dropout masks (d_model wide); q, k, v, context (inner wide).
  const selfAttention = (keys: number) => 6 * c.d_model + 5 * c.innerDim + 3 * c.num_heads * keys;
  const encoderLayer = b * s * (selfAttention(s) + ffWidth + 4 * c.d_model);
  const decoderLayer = b * t * (selfAttention(t) + selfAttention(s) + ffWidth + 6 * c.d_model) + 2 * b * s * c.innerDim;
  const logits = 3 * b * t * c.vocab_size;
  if (!training) {
    // Inference keeps one layer's temporaries at a time, the encoder output and the cross-attention keys/values.
    return Math.max(encoderLayer, decoderLayer) + b * s * c.d_model + 2 * c.num_decoder_layers * b * s * c.innerDim + logits;
  }
  return c.num_layers * encoderLayer + c.num_decoder_layers * decoderLayer + logits;
}

export function estimateMemory(c: T5Config, job: JobShape): MemoryEstimate {
  const parameters = parameterCount(c);
  const weightBytes = parameters * F32;
  const gradientBytes = job.optimizer ? weightBytes : 0;
  const optimizerBytes = job.optimizer === 'adamw' ? 2 * weightBytes : job.optimizer === 'adafactor' ? adafactorStateElements(c) * F32 : 0;
  const activationBytes = activationElements(c, job) * F32;
  const tensorBytes = weightBytes + gradientBytes + optimizerBytes + activationBytes;
  return {
    parameters,
    weightBytes,
    gradientBytes,
    optimizerBytes,
    activationBytes,
    tensorBytes,
    totalBytes: Math.round(tensorBytes * (1 + SLACK) + RUNTIME_BYTES),
  };
}

/** "3.2 GB" (decimal gigabytes, as `free -h`-style tools and the issue tracker's tables print them). */
export function formatBytes(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${Math.round(bytes / 1e6)} MB`;
}

/** Of the machine's memory, what a job may plan to use: the rest is the system's and other programs'. */
export const USABLE_SHARE = 0.9;

export interface FitAdvice {
  /** Options that make a training job fit, each with the memory it would need, best first. */
  alternatives: { options: string; totalBytes: number }[];
}

/**
 * Ways to make a training job fit in `availableBytes`: Adafactor instead of AdamW (its second moments are
 * factored), and smaller batches with gradient accumulation keeping the same effective batch.
 */
export function fitAdvice(c: T5Config, job: JobShape, accumulation: number, availableBytes: number): FitAdvice {
  const alternatives: FitAdvice['alternatives'] = [];
  const fits = (j: JobShape) => estimateMemory(c, j).totalBytes <= availableBytes * USABLE_SHARE;
  const optimizers: OptimizerName[] = job.optimizer === 'adamw' ? ['adamw', 'adafactor'] : [job.optimizer ?? 'adafactor'];
  for (const optimizer of optimizers) {
    for (let split = 1; split <= job.batchSize; split *= 2) {
      if (split > 1 && job.batchSize % split !== 0) break;
      const shape = { ...job, optimizer, batchSize: job.batchSize / split };
      if (!fits(shape)) continue;
      const options = [
        optimizer !== job.optimizer ? '--use-adafactor' : '',
        split > 1 ? `--batch-size ${shape.batchSize} --gradient-accumulation-steps ${accumulation * split}` : '',
      ]
        .filter(Boolean)
        .join(' ');
      if (options) alternatives.push({ options, totalBytes: estimateMemory(c, shape).totalBytes });
      break;
    }
  }
  return { alternatives };
}

/**
 * Refuses, in one line, a model whose weights alone exceed the wasm backend's heap when that backend is active (a
 * library user who started it without the job's size), instead of a failed allocation deep inside wasm.
 */
export function assertBackendHolds(c: T5Config, backendName: string): void {
  const weightBytes = 4 * parameterCount(c);
  if (backendName !== 'wasm' || weightBytes <= WASM_TENSOR_BYTES) return;
  throw new T5clsError(
    `a T5 of ${(parameterCount(c) / 1e6).toFixed(0)}M parameters needs ${formatBytes(weightBytes)} for its weights, more ` +
      `than the wasm backend's heap holds: start the backend with initBackend('cpu') or initBackend('auto', { tensorBytes })`,
  );
}
