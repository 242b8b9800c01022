/** How `train` and `pretrain` run: epochs, batches, sampling, stopping, seed, saving and resuming. */
import { z } from 'zod';
import { int, str } from './values.js';

export const epochs = int(1).default(10).describe('training epochs');
export const batchSize = int(1).default(16).describe('training batch size');
export const evalBatchSize = int(1).default(64).describe('evaluation batch size');
export const useWeightedRandomSampler = z
  .boolean()
  .default(false)
  .describe('draw training examples with replacement, weighted 1/(class count)');
export const gradientAccumulationSteps = int(1).default(1).describe('batches whose gradients are summed before each optimizer step');
export const earlyStoppingPatience = int(1).optional().describe('stop after N epochs without a better dev macro-F1 (default: off)');
export const seed = int(0).default(42).describe('random seed (initialisation, shuffling, dropout)');
export const maxSteps = int(1).optional().describe('stop after this many optimizer steps');
export const saveEverySteps = int(1)
  .optional()
  .describe('also write the resumable training state every N optimizer steps (it is always written after each epoch)');
export const resume = z
  .union([z.literal(true), str()])
  .optional()
  .describe('continue a stopped run from its saved state: its folder (<runs-dir>/<run>), its run name, or "latest"');
