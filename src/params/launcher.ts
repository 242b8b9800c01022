/**
 * Where `train` runs: in this process on TensorFlow.js, or as a job on PyTorch + transformers + accelerate
 * (`--launcher accelerate`), with what a cluster needs, named as accelerate names it. Every option is optional
 * without a default, so a TensorFlow.js run's options are what they were.
 */
import { z } from 'zod';
import { int, str } from './values.js';

export const LAUNCHERS = ['tfjs', 'accelerate'] as const;

export const launcher = z
  .enum(LAUNCHERS)
  .optional()
  .describe('where train runs: tfjs (this process, the default) or accelerate (a PyTorch + transformers + accelerate job in jobs/<run>/)');
export const numProcesses = int(1)
  .optional()
  .describe('accelerate: processes on all machines together (default: one per GPU of this machine, else 1)');
export const numMachines = int(1).optional().describe('accelerate: machines the job runs on (default 1)');
export const machineRank = int(0).optional().describe("accelerate: this machine's rank, 0 for the main one (default 0)");
export const mainProcessIp = str().optional().describe('accelerate: address of the machine of rank 0 (needed with --num-machines > 1)');
export const mainProcessPort = int(1).max(65535).optional().describe('accelerate: port of the main process (default 29500)');
export const mixedPrecision = str()
  .optional()
  .describe('accelerate: bf16 or no (default: bf16 where the GPU supports it, else float32; fp16 is refused: T5 overflows in it)');
export const deepspeedStage = int(2)
  .max(3)
  .optional()
  .describe("accelerate: DeepSpeed ZeRO stage 2 or 3 (the optimizer stays t5cls's, handed to DeepSpeed)");
export const fsdp = z.boolean().optional().describe('accelerate: shard the model with PyTorch FSDP, one unit per T5Block');
export const accelerateConfig = str().optional().describe('accelerate: your own accelerate config YAML, used instead of the generated one');
export const python = str()
  .optional()
  .describe('accelerate: the Python interpreter with torch, transformers and accelerate (default python3)');
export const dryRun = z
  .boolean()
  .optional()
  .describe('accelerate: write the job folder and print what to install and run, without running it');

export const launcherOptions = {
  launcher,
  numProcesses,
  numMachines,
  machineRank,
  mainProcessIp,
  mainProcessPort,
  mixedPrecision,
  deepspeedStage,
  fsdp,
  accelerateConfig,
  python,
  dryRun,
};
export type LauncherParams = z.infer<z.ZodObject<typeof launcherOptions>>;
