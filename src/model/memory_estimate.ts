/**
 * How much memory a T5 job needs, from its config and batch shape alone (nothing is allocated): weights,
 * gradients, optimizer state and the activations a training step keeps for its backward pass. Used to pick an
 * engine that can hold the job and to refuse, in one line, a job this machine cannot hold.
 *
 * Activations are counted per layer from the tensors the forward pass saves (float32), as this project's T5
 * computes them; the figures were checked against measured peak memory (see scripts/bench.ts), for full
 * fine-tuning and for LoRA adapters (`bench --lora-r`).
 */
import type { T5Config } from './config.js';
import { attentionWeights, feedForwardWeights, parameterShapes, t5Parameters } from './parameters.js';
import { LoraConfig } from './lora/config.js';
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
  /**
   * Training a LoRA adapter of this config: the model's weights stay frozen (held once, no gradients, no optimizer
   * state) and only the adapter's A and B of each targeted layer are trained.
   */
  lora?: LoraConfig;
}

export interface MemoryEstimate {
  /** The model's parameters (a LoRA adapter's not included). */
  parameters: number;
  /**
   * The numbers training updates: every parameter in full fine-tuning, the adapter's A and B with LoRA (PEFT's
   * "trainable params"); 0 for inference.
   */
  trainableParameters: number;
  /** The model's weights, and the adapter's with LoRA. */
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
function adafactorStateElements(shapes: number[][]): number {
  const moments = (shape: number[]) =>
    // Rows [..., rows] and columns [..., cols] of a matrix (HF's exp_avg_sq_row / _col); a vector keeps a full one.
    shape.length >= 2 ? size(shape.slice(0, -1)) + size(shape.slice(0, -2)) * shape[shape.length - 1]! : size(shape);
  return shapes.reduce((n, shape) => n + moments(shape) + 1, 0);
}

/**
 * A LoRA step's activations, as a multiple of the tensors the forward pass saves (activationElements). Its peak also
 * holds the forward's other outputs (kept until the forward ends) and the backward's gradients of the activations;
 * full fine-tuning's figures cover these with the weights' gradients, counted in full though they grow only as the
 * activations are freed, and a LoRA step has no such gradients. Set from measured peak memory of LoRA r 16 on q, v
 * (scripts/bench.ts, batch 4 to 16 × 64 tokens): flan-t5-base's shape grows by 160 MiB per example on the cpu
 * engine, where the saved tensors alone would give 108 MiB; t5-small's grows by less than this factor gives.
 */
const LORA_ACTIVATION_FACTOR = 1.5;

/**
 * A linear layer a LoRA adapter targets: its weight's [out, in], whether it reads the source's tokens, and whether
 * what follows it keeps its output for the backward pass (not so where dropout follows: it keeps its mask).
 */
interface LoraLayer {
  out: number;
  in: number;
  source: boolean;
  outputKept: boolean;
}

/** The linear layers `lora` targets in a T5 of config `c` (its target modules as PEFT matches them). */
function loraLayers(c: T5Config, lora: LoraConfig): LoraLayer[] {
  const layout = t5Parameters(c);
  const shapes = new Map(layout.all.map((p) => [p.name, p.shape]));
  // The encoder's layers, and the cross-attention's keys and values, run over the source's tokens.
  const source = new Set([
    ...layout.encoder.blocks.flatMap((b) => [...attentionWeights(b.selfAttention), ...feedForwardWeights(b.feedForward)]),
    ...layout.decoder.blocks.flatMap((b) => [b.crossAttention.k, b.crossAttention.v]),
  ]);
  // Attention and feed-forward outputs go through dropout (when there is some) before the residual sum.
  const outputs = [
    ...layout.encoder.blocks.flatMap((b) => [b.selfAttention.o, b.feedForward.wo]),
    ...layout.decoder.blocks.flatMap((b) => [b.selfAttention.o, b.crossAttention.o, b.feedForward.wo]),
  ];
  const dropped = new Set(c.dropout_rate > 0 ? outputs : []);
  return lora.targetWeights(layout).map((name) => {
    const [out, fanIn] = shapes.get(name)!;
    return { out: out!, in: fanIn!, source: source.has(name), outputKept: !dropped.has(name) };
  });
}

/** The adapter's tensors: lora_A [r, in] and lora_B [out, r] of each targeted layer. */
function loraShapes(layers: LoraLayer[], r: number): number[][] {
  return layers.flatMap((l) => [
    [r, l.in],
    [l.out, r],
  ]);
}

/**
 * Float32 elements the LoRA branches add to a training step's saved tensors, per targeted layer and token: x·Aᵀ
 * [r]; its product with Bᵀ and that product scaled [out each]; the sum x·Wᵀ + branch where what follows keeps it
 * (the frozen product x·Wᵀ is kept as before) [out]; with LoRA dropout, the dropped input and its mask [in each].
 */
function loraActivationElements(layers: LoraLayer[], lora: LoraConfig, job: JobShape): number {
  return layers.reduce((n, l) => {
    const tokens = job.batchSize * (l.source ? job.sourceLength : job.targetLength);
    return n + tokens * (lora.r + (l.outputKept ? 3 : 2) * l.out + (lora.dropout > 0 ? 2 * l.in : 0));
  }, 0);
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
  const layers = job.lora ? loraLayers(c, job.lora) : [];
  // What training updates: the adapter's tensors with LoRA, else every parameter.
  const trainedShapes = job.lora ? loraShapes(layers, job.lora.r) : parameterShapes(c).map(([, shape]) => shape);
  const trained = trainedShapes.reduce((n, shape) => n + size(shape), 0);
  const weightBytes = (parameters + (job.lora ? trained : 0)) * F32;
  const gradientBytes = job.optimizer ? trained * F32 : 0;
  const optimizerBytes =
    job.optimizer === 'adamw' ? 2 * trained * F32 : job.optimizer === 'adafactor' ? adafactorStateElements(trainedShapes) * F32 : 0;
  const loraActivations = job.lora && job.optimizer ? loraActivationElements(layers, job.lora, job) : 0;
  const modelActivations = activationElements(c, job) * (job.lora && job.optimizer ? LORA_ACTIVATION_FACTOR : 1);
  const activationBytes = Math.round(modelActivations + loraActivations) * F32;
  const tensorBytes = weightBytes + gradientBytes + optimizerBytes + activationBytes;
  return {
    parameters,
    trainableParameters: job.optimizer ? trained : 0,
    weightBytes,
    gradientBytes,
    optimizerBytes,
    activationBytes,
    tensorBytes,
    totalBytes: Math.round(tensorBytes * (1 + SLACK) + RUNTIME_BYTES),
  };
}

/** "3.2 GB", "38 MB", "74 kB" (decimal units, as `free -h`-style tools and the issue tracker's tables print them). */
export function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  return bytes >= 0.5e6 ? `${Math.round(bytes / 1e6)} MB` : `${Math.round(bytes / 1e3)} kB`;
}

/** Of the machine's memory, what a job may plan to use: the rest is the system's and other programs'. */
export const USABLE_SHARE = 0.9;

export interface FitAdvice {
  /** Options that make a training job fit, each with the memory it would need, best first. */
  alternatives: { options: string; totalBytes: number }[];
}

/** The adapter advised for a full fine-tuning job that does not fit: rank 16 on PEFT's targets for T5 (q, v). */
export const ADVISED_LORA = new LoraConfig({ r: 16 });

/**
 * Ways to make a training job fit in `availableBytes`: Adafactor instead of AdamW (its second moments are
 * factored), and smaller batches with gradient accumulation keeping the same effective batch; for a full
 * fine-tuning job, then, training a LoRA adapter instead (`--lora-r 16`: the model's weights frozen, held once).
 */
export function fitAdvice(c: T5Config, job: JobShape, accumulation: number, availableBytes: number): FitAdvice {
  const alternatives: FitAdvice['alternatives'] = [];
  const fits = (j: JobShape) => estimateMemory(c, j).totalBytes <= availableBytes * USABLE_SHARE;
  /** `shape` at the largest batch that fits, its own or a power-of-two share of it, with `options` and the split's. */
  const fitting = (shape: JobShape, options: string[]) => {
    for (let split = 1; split <= shape.batchSize; split *= 2) {
      if (split > 1 && shape.batchSize % split !== 0) break;
      const smaller = { ...shape, batchSize: shape.batchSize / split };
      if (!fits(smaller)) continue;
      const all = [...options, split > 1 ? `--batch-size ${smaller.batchSize} --gradient-accumulation-steps ${accumulation * split}` : ''];
      return { options: all.filter(Boolean).join(' '), totalBytes: estimateMemory(c, smaller).totalBytes, batchSize: smaller.batchSize };
    }
    return undefined;
  };
  const add = (fit: ReturnType<typeof fitting>) => {
    if (fit?.options) alternatives.push({ options: fit.options, totalBytes: fit.totalBytes });
  };
  const own = fitting({ ...job, optimizer: job.optimizer ?? 'adafactor' }, job.optimizer ? [] : ['--use-adafactor']);
  add(own);
  if (job.optimizer === 'adamw') {
    const adafactor = fitting({ ...job, optimizer: 'adafactor' }, ['--use-adafactor']);
    // An adapter's optimizer state is small: for a LoRA job Adafactor helps only where it fits a larger batch.
    if (!job.lora || (adafactor && adafactor.batchSize > (own?.batchSize ?? 0))) add(adafactor);
  }
  if (!job.lora) add(fitting({ ...job, optimizer: job.optimizer ?? 'adafactor', lora: ADVISED_LORA }, [`--lora-r ${ADVISED_LORA.r}`]));
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
