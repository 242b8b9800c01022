/**
 * Writes a randomly initialised T5 of any shape as an HF model folder (config.json, model.safetensors, the
 * tokenizer files), for trying a model size's whole path (train, test, predict) without downloading it.
 *
 *   node --import tsx scripts/random_model.ts --model-config tiny|small|base|large|path/to/config.json \
 *     --tokenizer ../shared/models/t5-small-tokenizer --out my-model [--seed 0]
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/engine/init.js';
import { NAMED_CONFIGS, T5Config } from '../src/model/config.js';
import { estimateMemory } from '../src/model/memory_estimate.js';
import { T5ForConditionalGeneration } from '../src/model/modeling_t5.js';
import { T5Tokenizer } from '../src/tokenizer/index.js';

const { values: args } = parseArgs({
  options: {
    'model-config': { type: 'string', default: 'small' },
    tokenizer: { type: 'string' },
    out: { type: 'string' },
    seed: { type: 'string', default: '0' },
  },
});
if (!args.tokenizer || !args.out) throw new Error('--tokenizer and --out are required');
const name = args['model-config']!;
const config = NAMED_CONFIGS[name] ? new T5Config({ ...NAMED_CONFIGS[name] }, name) : T5Config.fromFile(name);
if (fs.existsSync(args.out)) throw new Error(`${args.out} exists; choose a new folder`);
await initBackend('auto', { log: console.error, tensorBytes: estimateMemory(config, { batchSize: 1, sourceLength: 1, targetLength: 1 }).tensorBytes });
const model = new T5ForConditionalGeneration(config, { seed: Number(args.seed) });
model.savePretrained(args.out);
model.dispose();
(await T5Tokenizer.fromPretrained(args.tokenizer)).savePretrained(args.out);
console.error(`wrote ${args.out}`);
