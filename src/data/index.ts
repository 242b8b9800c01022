import * as path from 'node:path';
import type { HubClientOptions } from '../hub/download.js';
import { buildSplits } from './build.js';
import { readHubDataset } from './hub_dataset.js';
import { readLocal } from './local.js';
import { DEFAULT_CLASSES_MAP, type WriteSummary, defaultOutDir, writeProcessed } from './processed.js';

export {
  SPLITS,
  type SplitName,
  type Example,
  type ClassesMap,
  type SplitSummary,
  type WriteSummary,
  DEFAULT_CLASSES_MAP,
  defaultOutDir,
  classNamesOf,
  summarizeSplit,
  writeProcessed,
  readSplit,
  readClassesMap,
} from './processed.js';
export { type RawDataset, type RawSplit, type RawRecord, buildSplits } from './build.js';
export { type LocalOptions, readLocal, readMapping } from './local.js';
export {
  type HubDatasetOptions,
  type HubDataset,
  readHubDataset,
  DATA_OFFLINE_HINT,
  globToRegExp,
  configDataFiles,
  cardClassNames,
} from './hub_dataset.js';
export { parseDelimited } from './csv.js';
export { parseYaml, frontMatter, readCardHeader } from './dataset_card.js';

export const DEFAULT_DATASET = 'cardiffnlp/tweet_eval';
export const DEFAULT_SUBSET = 'emotion';
export const DEFAULT_REVISION = 'main';

/** What to load and where to write it; the Hub client's options (endpoint, token, cache, offline, …) for the Hub. */
export interface LoadDatasetOptions extends Omit<HubClientOptions, 'offlineHint'> {
  /** Hub data set id; default cardiffnlp/tweet_eval. */
  dataset?: string;
  /** Config of the data set; default emotion. */
  subset?: string;
  /** Branch, tag or commit; default main. */
  revision?: string;
  /** Read a local TweetEval folder or CSV / TSV / JSONL / JSON file(s) instead of the Hub. */
  from?: string;
  /** Leave out examples whose text is empty (TweetEval hate has a few) instead of stopping with an error. */
  skipEmptyTexts?: boolean;
  textColumn?: string;
  labelColumn?: string;
  /** Output folder; default `datasets/<dataset name>-<subset>_processed` (relative to the working folder). */
  out?: string;
  /** Classes map file; default classes_map.json. */
  classesMap?: string;
}

export interface Summary extends WriteSummary {
  /** What was read: `hf://datasets/<id>@<commit> (<subset>)` or the local path. */
  source: string;
  /** The Hub commit the data came from. */
  commit?: string;
}

/**
 * `t5cls load-dataset`: reads a data set from the Hub (or a local source with `from`), checks every record, and
 * writes `<out>/{train,validation,test}.json` and the classes map. Answers what was written, with split sizes
 * and class counts.
 */
export async function loadDataset(opts: LoadDatasetOptions = {}): Promise<Summary> {
  const dataset = opts.dataset ?? DEFAULT_DATASET;
  const subset = opts.subset ?? DEFAULT_SUBSET;
  const revision = opts.revision ?? DEFAULT_REVISION;
  let raw;
  let source: string;
  let commit: string | undefined;
  if (opts.from !== undefined) {
    opts.log?.(`reading ${opts.from}`);
    raw = readLocal(opts.from, { textColumn: opts.textColumn, labelColumn: opts.labelColumn });
    source = path.resolve(opts.from);
  } else {
    const hub = await readHubDataset({ ...opts, dataset, subset, revision });
    raw = hub;
    source = hub.source;
    commit = hub.commit;
  }
  const { classNames, splits } = buildSplits(raw, { skipEmptyTexts: opts.skipEmptyTexts, log: opts.log });
  const written = writeProcessed({
    outDir: opts.out ?? defaultOutDir(dataset, subset),
    classesMapPath: opts.classesMap ?? DEFAULT_CLASSES_MAP,
    splits,
    classNames,
  });
  return { ...written, source, ...(commit ? { commit } : {}) };
}
