/** The optimizer `train` and `pretrain` build: AdamW or Adafactor, its learning rate and schedule. */
import { z } from 'zod';
import { int, num } from './values.js';

export const learningRate = num(0)
  .optional()
  .describe('learning rate (default 1e-4 for AdamW, 1e-3 for Adafactor, 1e-2 for Adafactor with --adafactor-scale-parameter)');
export const lrWarmupSteps = int(0).default(0).describe('linear learning-rate warm-up steps, constant afterwards');
export const weightDecay = num(0).default(0).describe('decoupled weight decay');
export const useAdafactor = z.boolean().default(false).describe('train with Adafactor instead of AdamW');
export const useAdafactorSchedule = z
  .boolean()
  .default(false)
  .describe("relative-step Adafactor: the learning rate comes from Adafactor's own schedule");
export const adafactorScaleParameter = z
  .boolean()
  .optional()
  .describe(
    "Adafactor with a fixed --learning-rate: scale each parameter's step by its root mean square (HF scale_parameter), " +
      'as T5 was pretrained (default: on with --init random, where it learns far faster; off from a checkpoint)',
  );

/** What `train` and `pretrain` both set first, in this order. */
export const optimizer = { learningRate, lrWarmupSteps, weightDecay, useAdafactor };
