/**
 * Where the time of one evaluation batch goes, per tfjs kernel (t5-small shape, batch 64 × 64 tokens).
 *   node --import tsx scripts/profile_eval.ts [--backend wasm|cpu] [--mode rank|generate]
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { tf } from '../src/tf.js';
import { printProfile } from './profile_report.js';
import { initBackend, type BackendChoice } from '../src/engine/init.js';
import { T5Config } from '../src/model/config.js';
import { T5ForConditionalGeneration } from '../src/model/modeling_t5.js';
import { T5Tokenizer } from '../src/tokenizer/index.js';
import { encodeClassNames } from '../src/data/batches.js';
import { predictGenerate, predictRank } from '../src/eval/decoding.js';

const { values: args } = parseArgs({ options: { backend: { type: 'string', default: 'auto' }, mode: { type: 'string', default: 'rank' } } });
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TOKENIZER_DIR = path.resolve(ROOT, '../shared/models/t5-small-tokenizer');
await initBackend(args.backend as BackendChoice, { log: console.error });
const model = new T5ForConditionalGeneration(T5Config.fromFile(path.join(TOKENIZER_DIR, 'config.json')), { seed: 0 });
const tokenizer = await T5Tokenizer.fromPretrained(TOKENIZER_DIR);
const classNames = ['anger', 'joy', 'optimism', 'sadness'];
const classTokens = encodeClassNames(tokenizer, classNames);
let seed = 1;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed);
const inputs = Array.from({ length: 64 }, () => [...Array.from({ length: 63 }, () => 3 + (rand() % 31000)), 1]);
const run = () =>
  args.mode === 'rank'
    ? predictRank(model, inputs, classNames, classTokens, 64)
    : predictGenerate(model, tokenizer, inputs, classNames, classTokens.map((t) => t.slice(0, 2)), 64);
for (let i = 0; i < 2; i++) run();
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  run();
  console.log(`${args.mode}: ${(performance.now() - t0).toFixed(0)} ms per batch of 64`);
}
const prof = await tf.profile(() => {
  run();
});
printProfile(prof);
