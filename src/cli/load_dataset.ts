/** `t5cls load-dataset`: fetch a data set (Hub or local files) and write the processed splits and classes map. */
import * as path from 'node:path';
import type { ParsedParams } from './options.js';
import { loadDataset } from '../data/index.js';
import { Progress } from '../progress.js';
import { sayer } from './shared.js';
import { UsageError } from '../errors.js';

export async function run({ params: p, given }: ParsedParams<'load-dataset'>): Promise<void> {
  const say = sayer(p.quiet);
  if (Array.isArray(p.from) && p.from.length > 1)
    throw new UsageError(`--from: load-dataset reads one source, got ${p.from.length} (${p.from.join(', ')})`);
  const from = Array.isArray(p.from) ? p.from[0] : p.from;
  // A local source names its own output folder (datasets/<folder or file name>_processed) unless the user named a
  // data set or subset: a TweetEval task folder must not land in the default emotion folder.
  let out = p.out;
  if (!out && from && !given.has('subset') && !given.has('dataset')) {
    const base = path.basename(path.resolve(from)).replace(/\.(csv|tsv|jsonl|json)$/i, '');
    out = path.join('datasets', `${base}_processed`);
  }
  let bar: Progress | undefined;
  let last = 0;
  const summary = await loadDataset({
    dataset: p.dataset,
    subset: p.subset,
    revision: p.revision,
    from,
    textColumn: p.textColumn,
    labelColumn: p.labelColumn,
    skipEmptyTexts: p.skipEmptyTexts,
    out: out ? path.resolve(out) : undefined,
    classesMap: path.resolve(p.classesMap),
    log: say,
    onProgress: (done, total) => {
      bar ??= new Progress({ label: 'download', total, quiet: p.quiet });
      bar.tick(done - last);
      last = done;
    },
  });
  bar?.done();
  console.log(`source: ${summary.source}`);
  for (const [split, info] of Object.entries(summary.splits)) {
    const counts = Object.entries(info.classCounts)
      .map(([name, n]) => `${name} ${n}`)
      .join(', ');
    console.log(`${split}: ${info.size} examples (${counts})`);
  }
  console.log(`wrote ${summary.outDir} and ${summary.classesMapPath}`);
}
