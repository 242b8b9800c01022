/** What a command writes and prints, and where. */
import { z } from 'zod';
import { str } from './values.js';

export const saveWeightsPath = str().default('weights').describe('folder for checkpoints');
export const logsDir = str().default('logs').describe('folder for text logs');
export const runsDir = str().default('runs').describe('folder for TensorBoard event files');
/** Where a training run writes its checkpoints, log and TensorBoard events. */
export const runFolders = { saveWeightsPath, logsDir, runsDir };

export const out = str()
  .optional()
  .describe(
    "output folder: load-dataset's processed data (default datasets/<dataset>-<subset>_processed); export's model folder " +
      "(default exports/<checkpoint>); merge's model folder (default <adapter>-merged)",
  );
export const quantize = z
  .boolean()
  .default(false)
  .describe("export: also write 8-bit variants, onnx/*_quantized.onnx (transformers.js dtype 'q8', its default in browsers)");
export const json = z.boolean().default(false).describe('doctor: print a machine-readable JSON summary');
export const output = str().optional().describe('report: HTML file to write (default reports/<run>.html)');

export const quiet = z.boolean().default(false).describe('print only errors and the final summary');
export const verbose = z.boolean().default(false).describe('print stack traces with errors');
export const messages = { quiet, verbose };
