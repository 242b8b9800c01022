/** `t5cls report [RUN]`: write a self-contained HTML report of a training run (default reports/<run>.html). */
import type { ParsedParams } from './options.js';
import { writeRunReport } from '../report/index.js';
import { sayer } from './shared.js';

export async function run({ params: p }: ParsedParams<'report'>): Promise<void> {
  const say = sayer(p.quiet);
  const file = writeRunReport({ run: p.run, logsDir: p.logsDir, runsDir: p.runsDir, weightsDir: p.saveWeightsPath, output: p.output });
  say(`wrote the report; open it in a browser (no network needed):`);
  console.log(file);
}
