/** Which saved checkpoint or run a command reads. */
import { z } from 'zod';
import { saveWeightsPath } from './output.js';
import { str } from './values.js';

export const weightsName = str().optional().describe('checkpoint folder name under --save-weights-path');
export const weights = str().optional().describe('checkpoint folder path');
/** The checkpoint `test`, `predict` and `export` use: --weights, --weights-name, else the newest run's best. */
export const checkpoint = { weightsName, weights, saveWeightsPath };
export type CheckpointParams = z.infer<z.ZodObject<typeof checkpoint>>;

export const run = str()
  .optional()
  .describe('report: run name (<model>_<time>), log file, runs/ folder or checkpoint (default: the newest run)');
