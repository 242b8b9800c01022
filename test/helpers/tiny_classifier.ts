/**
 * A tiny T5 with the genuine T5 vocabulary, trained for a few full-batch steps on eight emotion texts so that it
 * prefers class names, saved as `work/weights/tiny-epoch1` the way `t5cls train` saves a best checkpoint (the CLI
 * run in `work` finds it as the newest run's best).
 */
import * as path from 'node:path';
import { tf } from '../../src/tf.js';
import { NAMED_CONFIGS, T5Config } from '../../src/model/config.js';
import { T5ForConditionalGeneration } from '../../src/model/modeling_t5.js';
import { T5Tokenizer } from '../../src/tokenizer/index.js';
import { Adafactor } from '../../src/train/optimizers/index.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';
import { TOKENIZER_DIR } from './fixtures.js';

export const TINY_CLASSES = ['anger', 'joy', 'optimism', 'sadness'];
export const TINY_PREFIX = 'classify: ';
export const TINY_MAX_SOURCE_LENGTH = 64;
export const TINY_TRAIN: [string, number][] = [
  ['I am furious, this is outrageous', 0],
  ['so angry I could scream', 0],
  ['what a wonderful happy day', 1],
  ['laughing with friends, pure delight', 1],
  ['tomorrow will be better, I believe it', 2],
  ['keep going, things will work out', 2],
  ['I miss her and cry every night', 3],
  ['feeling lonely and heartbroken', 3],
];

/** Trains the tiny classifier (the tf backend must be initialised) and saves it under `work`; returns its folder. */
export async function saveTinyClassifier(work: string): Promise<string> {
  const tokenizer = await T5Tokenizer.fromPretrained(TOKENIZER_DIR);
  const model = new T5ForConditionalGeneration(new T5Config({ ...NAMED_CONFIGS.tiny, vocab_size: 32128 }), { seed: 5 });
  const inputs = TINY_TRAIN.map(([t]) => tokenizer.encode(TINY_PREFIX + t));
  const width = Math.max(...inputs.map((r) => r.length));
  const inputIds = inputs.map((r) => [...r, ...new Array<number>(width - r.length).fill(0)]);
  const attentionMask = inputs.map((r) => [...r.map(() => 1), ...new Array<number>(width - r.length).fill(0)]);
  const classTokens = TINY_CLASSES.map((c) => tokenizer.encode(c));
  const lw = Math.max(...classTokens.map((r) => r.length));
  const labels = TINY_TRAIN.map(([, c]) => [...classTokens[c]!, ...new Array<number>(lw - classTokens[c]!.length).fill(-100)]);
  const opt = new Adafactor({ lr: 1e-2, scaleParameter: false, relativeStep: false, warmupInit: false });
  const params = [...model.namedParameters().values()];
  for (let s = 0; s < 12; s++) {
    const { value, grads } = tf.variableGrads(() => model.forward({ inputIds, attentionMask, labels }).loss!, params);
    opt.applyGradients(grads);
    tf.dispose([value, ...Object.values(grads)]);
  }
  opt.dispose();
  const dir = path.join(work, 'weights', 'tiny-epoch1');
  await saveCheckpoint(dir, model, tokenizer, {
    format: 't5cls-checkpoint', version: 1, baseModel: 'tiny (random)', runName: 'tiny', epoch: 1, step: 12, prefixText: TINY_PREFIX,
    maxSourceLength: TINY_MAX_SOURCE_LENGTH, classesMap: Object.fromEntries(TINY_CLASSES.map((c, i) => [c, i])), options: {},
    metrics: { dev_macro_f1: 0.5 }, createdAt: '2030-01-01T00:00:00.000Z',
  });
  model.dispose();
  return dir;
}
