/**
 * A `--launcher accelerate` job's cluster, from train's options: processes, machines, precision, DeepSpeed or FSDP,
 * with the combinations that cannot run refused in one line naming the options.
 */
import { UsageError } from '../errors.js';
import type { LauncherParams } from '../params/launcher.js';

export type Precision = 'auto' | 'bf16' | 'no';

export interface Cluster {
  numProcesses: number;
  numMachines: number;
  machineRank: number;
  mainProcessIp?: string;
  mainProcessPort: number;
  /** `auto`: bf16 where the GPU supports it, else float32 (the job decides on its machine). */
  mixedPrecision: Precision;
  deepspeedStage?: 2 | 3;
  fsdp: boolean;
  /** The user's own accelerate config file (absolute), used instead of the generated one. */
  accelerateConfig?: string;
}

export const DEFAULT_MAIN_PROCESS_PORT = 29500;

/** The cluster the options describe; `devices` is the number of GPUs this machine's Python sees (for the default). */
export function resolveCluster(p: LauncherParams, devices: number): Cluster {
  const precision = p.mixedPrecision ?? 'auto';
  if (precision === 'fp16') {
    throw new UsageError(
      '--mixed-precision fp16: refused: T5 overflows in fp16 (inf/NaN activations; transformers issues #4586, #14189); use bf16 or no',
    );
  }
  if (precision !== 'auto' && precision !== 'bf16' && precision !== 'no') {
    throw new UsageError(`--mixed-precision: expected bf16 or no (got ${JSON.stringify(precision)})`);
  }
  const numMachines = p.numMachines ?? 1;
  const machineRank = p.machineRank ?? 0;
  const numProcesses = p.numProcesses ?? Math.max(1, devices) * numMachines;
  if (machineRank >= numMachines)
    throw new UsageError(`--machine-rank ${machineRank}: expected a rank below --num-machines ${numMachines}`);
  if (numProcesses % numMachines !== 0) {
    throw new UsageError(
      `--num-processes ${numProcesses}: expected a multiple of --num-machines ${numMachines} (accelerate starts as many processes on each machine)`,
    );
  }
  if (numMachines > 1 && p.mainProcessIp === undefined) {
    throw new UsageError(`--num-machines ${numMachines}: give --main-process-ip, the address of the machine of rank 0`);
  }
  if (p.deepspeedStage !== undefined && p.fsdp) {
    throw new UsageError('--deepspeed-stage and --fsdp: choose one (DeepSpeed ZeRO and FSDP both shard the model)');
  }
  if (p.accelerateConfig !== undefined && (p.deepspeedStage !== undefined || p.fsdp)) {
    throw new UsageError(
      `--accelerate-config ${p.accelerateConfig}: your file decides DeepSpeed and FSDP; leave out ${p.fsdp ? '--fsdp' : '--deepspeed-stage'}`,
    );
  }
  const stage = p.deepspeedStage;
  return {
    numProcesses,
    numMachines,
    machineRank,
    mainProcessIp: p.mainProcessIp,
    mainProcessPort: p.mainProcessPort ?? DEFAULT_MAIN_PROCESS_PORT,
    mixedPrecision: precision,
    deepspeedStage: stage === 2 || stage === 3 ? stage : undefined,
    fsdp: p.fsdp ?? false,
    accelerateConfig: p.accelerateConfig,
  };
}
