/** The data a command reads: data sets to load, processed splits, classes, text sources. */
import { z } from 'zod';
import { int, str } from './values.js';

export const dataset = str().default('cardiffnlp/tweet_eval').describe('Hugging Face Hub data set id');
export const subset = str().default('emotion').describe('data set config (TweetEval task)');
export const from = z
  .union([str(), z.array(str()).min(1, 'Array must contain at least 1 element(s)')])
  .optional()
  .describe(
    'load-dataset: a local TweetEval folder or CSV/TSV/JSONL/JSON file(s) instead of the Hub; pretrain: text files or ' +
      'folders (repeat the flag for several)',
  );
export const textColumn = str().default('text').describe('text column of CSV/TSV/JSONL/JSON sources');
export const labelColumn = str().default('label').describe('label column of CSV/TSV/JSONL/JSON sources (class names or ids)');
export const skipEmptyTexts = z
  .boolean()
  .default(false)
  .describe('leave out examples with an empty text instead of stopping with an error');
export const classesMap = str().default('classes_map.json').describe('classes map file {"class name": id}');
export const dataDir = str().optional().describe('folder with train/validation/test.json (default: where load-dataset wrote)');
export const maxTrainExamples = int(1).optional().describe('use only the first N training examples');
export const maxEvalExamples = int(1).optional().describe('use only the first N validation/test examples');
