/** How `test` and `predict` use a checkpoint: the split and decoding, where texts come from and results go. */
import { z } from 'zod';
import { str } from './values.js';

export const split = z.enum(['train', 'validation', 'test']).default('test').describe('data split to evaluate');
export const decode = z
  .enum(['generate', 'rank'])
  .default('generate')
  .describe('generate = greedy decoding; rank = most likely class name (never invalid)');
export const file = str()
  .optional()
  .describe(
    'predict: read texts from this file ("-" for stdin): one per line, or JSONL (a .jsonl/.ndjson file, or when --text-column is given)',
  );
export const outputDir = str().optional().describe('where metrics.json and predictions.txt go (default: the checkpoint folder)');
export const format = z
  .enum(['text', 'json', 'tsv'])
  .default('text')
  .describe('predict output: text (for reading), json (one JSON object per line) or tsv (with a header row)');
