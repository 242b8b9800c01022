/** `t5cls test`: evaluate a saved checkpoint on a split and write metrics.json and predictions.txt. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ParsedParams } from './options.js';
import { T5Tokenizer } from '../tokenizer/index.js';
import { encodeClassNames, encodeExamples } from '../data/batches.js';
import { predictGenerate, predictRank } from '../eval/decoding.js';
import { classificationMetrics } from '../eval/metrics.js';
import { formatReport } from '../eval/report.js';
import { Progress } from '../progress.js';
import { initBackend } from '../engine/init.js';
import { writeFileAtomic, writeJsonAtomic } from '../fsutil.js';
import { UsageError } from '../errors.js';
import { inferenceTensorBytes, loadSplits, resolveDataDir, sayer } from './shared.js';
import { loadInferenceModel, resolveModelFolders } from './adapter_model.js';
import { readClassesMap } from '../data/index.js';
import { writeRunReport } from '../report/index.js';

export async function run({ params: p, given }: ParsedParams<'test'>): Promise<void> {
  const say = sayer(p.quiet);
  const folders = await resolveModelFolders(p, say);
  const { dir, meta } = folders;
  say(`${folders.adapterDir ? 'adapter' : 'checkpoint'}: ${dir}`);
  const classesMap = given.has('classesMap') || !meta ? readClassesMap(path.resolve(p.classesMap)) : meta.classesMap;
  const prefix = given.has('prefixText') || !meta ? p.prefixText : meta.prefixText;
  const maxSourceLength = given.has('maxSourceLength') || !meta ? p.maxSourceLength : meta.maxSourceLength;
  const dataDir = resolveDataDir(p.dataDir);
  const { classNames, splits } = loadSplits(dataDir, classesMap, [p.split]);
  let examples = splits[p.split];
  if (p.maxEvalExamples !== undefined) examples = examples.slice(0, p.maxEvalExamples);
  const tokenizer = await T5Tokenizer.fromPretrained(folders.tokenizerDir);
  const inputs = encodeExamples(tokenizer, examples, prefix, maxSourceLength).map((e) => e.inputIds);
  const classTokens = encodeClassNames(tokenizer, classNames);
  const tensorBytes = inferenceTensorBytes(folders.modelDir, p.evalBatchSize, inputs, classTokens);
  await initBackend(p.backend, { threads: p.threads, device: p.device, log: say, tensorBytes });
  const model = loadInferenceModel(folders, say);
  const bar = new Progress({ label: `${p.split} (${p.decode})`, total: inputs.length, quiet: p.quiet });
  let done = 0;
  const onProgress = (d: number) => {
    bar.tick(d - done);
    done = d;
  };
  const preds =
    p.decode === 'rank'
      ? predictRank(model, inputs, classNames, classTokens, p.evalBatchSize, onProgress)
      : predictGenerate(model, tokenizer, inputs, classNames, classTokens, p.evalBatchSize, onProgress);
  bar.done();
  model.dispose();

  const yTrue = examples.map((e) => e.label);
  const m = classificationMetrics(yTrue, preds.labels, classNames.length);
  const outDir = path.resolve(p.outputDir ?? dir);
  try {
    fs.mkdirSync(outDir, { recursive: true });
  } catch (e) {
    throw new UsageError(`--output-dir ${outDir}: cannot create the folder (${(e as NodeJS.ErrnoException).code})`);
  }
  const metricsFile = path.join(outDir, 'metrics.json');
  const predictionsFile = path.join(outDir, 'predictions.txt');
  writeJsonAtomic(metricsFile, {
    checkpoint: dir,
    split: p.split,
    decode: p.decode,
    examples: examples.length,
    classes: classNames,
    accuracy: m.accuracy,
    macro_f1: m.macroF1,
    micro_f1: m.microF1,
    weighted_f1: m.weightedF1,
    invalid_outputs: m.invalid,
    per_class: Object.fromEntries(classNames.map((n, i) => [n, m.perClass[i]])),
    confusion_matrix: m.confusion,
    created_at: new Date().toISOString(),
  });
  writeFileAtomic(predictionsFile, preds.labels.map((l) => `${l}`).join('\n') + '\n');
  console.log(formatReport(m, classNames, `${examples.length} ${p.split} examples, ${p.decode} decoding`));
  say(`wrote ${metricsFile}`);
  say(`wrote ${predictionsFile}`);
  if (meta) {
    try {
      say(`report: ${writeRunReport({ run: dir })}`);
    } catch (e) {
      say(`(no report written: ${(e as Error).message})`);
    }
  }
}
