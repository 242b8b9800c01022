/**
 * Where the time of one training step goes, per tfjs kernel and per matrix-product shape (t5-small shape, batch
 * 16 × 64 tokens), and the peak memory of training with one optimizer; with --lora-r, of a LoRA step (q,v, or
 * --lora-target-modules) on the frozen model.
 *   node --import tsx scripts/profile_step.ts [--backend wasm|cpu] [--optimizer adamw|adafactor]
 *     [--config small|base|large|xl|config.json] [--batch N] [--lora-r R [--lora-target-modules q,v|all-linear]]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { tf } from '../src/tf.js';
import { printProfile } from './profile_report.js';
import { initBackend, type BackendChoice } from '../src/engine/init.js';
import { T5Config, NAMED_CONFIGS } from '../src/model/config.js';
import { T5ForConditionalGeneration } from '../src/model/modeling_t5.js';
import { Adafactor, AdamW } from '../src/train/optimizers/index.js';
import { ALL_LINEAR, LoraAdapter, LoraConfig } from '../src/model/lora/index.js';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'auto' },
    optimizer: { type: 'string', default: 'adamw' },
    config: { type: 'string', default: 'small' },
    batch: { type: 'string', default: '16' },
    'lora-r': { type: 'string' },
    'lora-target-modules': { type: 'string', default: 'q,v' },
  },
});
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
await initBackend(args.backend as BackendChoice, { log: console.error });
if (!NAMED_CONFIGS[args.config!] && !fs.existsSync(args.config!)) throw new Error(`--config ${args.config}: no such shape or file`);
const config = NAMED_CONFIGS[args.config!] ? new T5Config({ ...NAMED_CONFIGS[args.config!] }) : T5Config.fromFile(args.config!);
const model = new T5ForConditionalGeneration(config, { seed: 0 });
if (args['lora-r'] !== undefined) {
  const targets = args['lora-target-modules']!;
  const lora = new LoraConfig({ r: Number(args['lora-r']), targetModules: targets === ALL_LINEAR ? ALL_LINEAR : targets.split(',') });
  model.attachAdapter(new LoraAdapter(model, lora));
}
const opt = args.optimizer === 'adamw' ? new AdamW({ lr: 1e-4, inPlaceParameters: true }) : new Adafactor({ lr: 1e-3, scaleParameter: false, relativeStep: false, warmupInit: false, inPlaceParameters: true });
const ids = tf.randomUniform([Number(args.batch), 64], 3, 32000, 'int32');
const labels = tf.randomUniform([Number(args.batch), 4], 3, 32000, 'int32');
const params = [...model.trainableVariables().values()];
const step = (withOpt: boolean) => {
  const { value, grads } = tf.variableGrads(() => model.forward({ inputIds: ids, labels, training: true }).loss!, params);
  if (withOpt) opt.applyGradients(grads);
  tf.dispose([value, ...Object.values(grads)]);
};
for (let i = 0; i < 2; i++) step(true);
for (const withOpt of [false, true]) {
  const t0 = performance.now();
  step(withOpt);
  params[0].dataSync();
  console.log(`${withOpt ? 'forward+backward+optimizer' : 'forward+backward'}: ${((performance.now() - t0) / 1000).toFixed(2)} s`);
}
const prof = await tf.profile(() => step(true));
printProfile(prof);
console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
