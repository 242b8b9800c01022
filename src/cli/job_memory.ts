/**
 * Before a command allocates anything: what its job needs (model shape, optimizer, batch and lengths, the LoRA
 * adapter it trains, if any), checked against this machine's memory. A job that cannot fit stops here with one line
 * saying what it needs, what there is and what would fit, instead of failing later inside an allocation.
 */
import type { T5Config } from '../model/config.js';
import { estimateMemory, fitAdvice, formatBytes, USABLE_SHARE, type JobShape, type MemoryEstimate } from '../model/memory_estimate.js';
import { machineMemoryBytes } from '../engine/machine_memory.js';
import { UsageError } from '../errors.js';
import { ALL_LINEAR, type LoraConfig } from '../model/lora/config.js';

const OPTIMIZER_NAMES = { adamw: 'AdamW', adafactor: 'Adafactor' } as const;

function parameterText(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)}B parameters` : `${Math.round(n / 1e6)}M parameters`;
}

/** A count of trained numbers: "9.4M", "295K". */
function countText(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${Math.round(n / 1e3)}K` : String(n);
}

/** "LoRA r 16 on q,v: 9.4M trained" */
export function loraText(lora: LoraConfig, trained: number): string {
  const targets = lora.targetModules === ALL_LINEAR ? ALL_LINEAR : lora.targetModules.join(',');
  return `LoRA r ${lora.r} on ${targets}: ${countText(trained)} trained`;
}

/**
 * The job's memory estimate; throws a UsageError when it cannot fit in `availableBytes` (default: this machine's
 * memory, or its cgroup limit).
 */
export function checkJobMemory(
  config: T5Config,
  job: JobShape,
  modelName: string,
  options: { accumulation?: number; availableBytes?: number } = {},
): MemoryEstimate {
  const estimate = estimateMemory(config, job);
  const available = options.availableBytes ?? machineMemoryBytes();
  if (estimate.totalBytes <= available * USABLE_SHARE) return estimate;
  const adapter = job.lora ? `, ${loraText(job.lora, estimate.trainableParameters)}` : '';
  const what = job.optimizer
    ? `training ${modelName} (${parameterText(estimate.parameters)}${adapter}) with ${OPTIMIZER_NAMES[job.optimizer]} at batch ${job.batchSize}`
    : `running ${modelName} (${parameterText(estimate.parameters)}) at batch ${job.batchSize}`;
  const parts = [
    `weights ${formatBytes(estimate.weightBytes)}`,
    ...(job.optimizer
      ? [`gradients ${formatBytes(estimate.gradientBytes)}`, `optimizer state ${formatBytes(estimate.optimizerBytes)}`]
      : []),
    `activations ${formatBytes(estimate.activationBytes)}`,
  ];
  const advice = job.optimizer
    ? fitAdvice(config, job, options.accumulation ?? 1, available).alternatives.map(
        (a) => `${a.options} (about ${formatBytes(a.totalBytes)})`,
      )
    : job.batchSize > 1
      ? ['a smaller --eval-batch-size']
      : [];
  advice.push('a GPU (--device cuda with @tensorflow/tfjs-node-gpu)');
  throw new UsageError(
    `${what} needs about ${formatBytes(estimate.totalBytes)} (${parts.join(', ')}) but this machine has ` +
      `${formatBytes(available)}; what would fit: ${advice.join('; or ')}`,
  );
}
