import * as fs from 'node:fs';
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
import { FormatError, UsageError } from '../errors.js';
import { type RepoRef, isCached, listSnapshot, readRef, repoCacheDir, snapshotPath, writeRef } from '../hub/cache.js';
import { type HubClientOptions, downloadFiles, getRepoInfo, hubClient } from '../hub/download.js';
import { HubUnreachableError } from '../hub/http.js';
import type { RawDataset, RawSplit } from './build.js';
import { SPLITS, type SplitName } from './processed.js';
import { type YamlValue, readCardHeader } from './dataset_card.js';

export const DATA_OFFLINE_HINT =
  'to work offline, read local files with --from PATH (a TweetEval folder, or CSV / TSV / JSONL / JSON files)';

export interface HubDatasetOptions extends HubClientOptions {
  dataset: string;
  subset: string;
  revision: string;
  textColumn?: string;
  labelColumn?: string;
}

export interface HubDataset extends RawDataset {
  commit: string;
  source: string;
}

type Obj = { [k: string]: YamlValue };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** fsspec-style glob as the `datasets` library matches `data_files`: `*` and `?` stay inside a folder, `**` does not. */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re +=
          '[' +
          pattern
            .slice(i + 1, end)
            .replace(/^!/, '^')
            .replace(/\\/g, '\\\\') +
          ']';
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** `configs[].data_files` of the card's YAML for one config, as patterns by split. */
export function configDataFiles(card: YamlValue, subset: string, where: string): Record<string, string[]> {
  const configs = isObj(card) ? card.configs : undefined;
  if (!Array.isArray(configs)) throw new FormatError(`${where}: the YAML header has no "configs" list describing the data files`);
  const entry = configs.find((c) => isObj(c) && c.config_name === subset);
  if (!isObj(entry)) {
    const names = configs.map((c) => (isObj(c) ? String(c.config_name) : '?'));
    throw new UsageError(`${where}: no subset '${subset}' (subsets: ${names.join(', ')})`);
  }
  const dataDir = typeof entry.data_dir === 'string' ? entry.data_dir.replace(/\/+$/, '') + '/' : '';
  const asList = (v: YamlValue | undefined): string[] =>
    typeof v === 'string' ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  const df = entry.data_files;
  const out: Record<string, string[]> = {};
  if (typeof df === 'string' || (Array.isArray(df) && df.every((x) => typeof x === 'string'))) {
    out.train = asList(df);
  } else if (Array.isArray(df)) {
    for (const item of df) {
      if (!isObj(item) || typeof item.split !== 'string')
        throw new FormatError(`${where}: config '${subset}': each data_files entry needs a split and a path`);
      (out[item.split] ??= []).push(...asList(item.path));
    }
  } else if (isObj(df)) {
    for (const [split, v] of Object.entries(df)) out[split] = asList(v);
  } else {
    throw new FormatError(`${where}: config '${subset}' has no data_files`);
  }
  for (const k of Object.keys(out)) out[k] = out[k]!.map((p) => dataDir + p.replace(/^\.?\//, ''));
  return out;
}

function namesFromLabelFeature(feature: unknown): string[] | undefined {
  if (!isObj(feature)) return undefined;
  const dtype = isObj(feature.dtype) ? feature.dtype : feature;
  const cl = isObj(dtype.class_label) ? dtype.class_label : undefined;
  const names = cl?.names;
  if (Array.isArray(names)) return names.map(String);
  if (isObj(names)) {
    const out: string[] = [];
    for (const [k, v] of Object.entries(names)) out[Number(k)] = String(v);
    return out.length === Object.keys(names).length && out.every((n) => n !== undefined) ? out : undefined;
  }
  return undefined;
}

/** Class names of the label column from `dataset_info[].features` (a `class_label`), if the card declares them. */
export function cardClassNames(card: YamlValue, subset: string, labelColumn: string): string[] | undefined {
  const di = isObj(card) ? card.dataset_info : undefined;
  const entries = Array.isArray(di) ? di.filter(isObj) : isObj(di) ? [di] : [];
  const entry =
    entries.find((e) => e.config_name === subset) ??
    (entries.length === 1 && entries[0]!.config_name === undefined ? entries[0] : undefined);
  const features = entry?.features;
  if (Array.isArray(features)) return namesFromLabelFeature(features.find((f) => isObj(f) && f.name === labelColumn));
  if (isObj(features)) return namesFromLabelFeature(features[labelColumn]);
  return undefined;
}

/** Class names from the `huggingface` metadata that the `datasets` library stores in the parquet files it writes. */
function parquetClassNames(kv: { key: string; value?: string }[] | undefined, labelColumn: string): string[] | undefined {
  const hf = kv?.find((k) => k.key === 'huggingface')?.value;
  if (!hf) return undefined;
  try {
    const f = (JSON.parse(hf) as { info?: { features?: Record<string, { _type?: string; names?: unknown }> } }).info?.features?.[
      labelColumn
    ];
    return f?._type === 'ClassLabel' && Array.isArray(f.names) ? f.names.map(String) : undefined;
  } catch {
    return undefined;
  }
}

async function readParquet(
  localPath: string,
  shown: string,
  split: SplitName,
  textColumn: string,
  labelColumn: string,
): Promise<{ raw: RawSplit; classNames?: string[] }> {
  const buf = fs.readFileSync(localPath);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  let rows: Record<string, unknown>[];
  let classNames: string[] | undefined;
  try {
    const meta = parquetMetadata(ab);
    const columns = parquetSchema(meta).children.map((c) => c.element.name);
    for (const [col, opt] of [
      [textColumn, 'text'],
      [labelColumn, 'label'],
    ]) {
      if (!columns.includes(col!)) {
        throw new UsageError(`${shown}: no column "${col}" (columns: ${columns.join(', ')}); choose it with --${opt}-column`);
      }
    }
    classNames = parquetClassNames(meta.key_value_metadata, labelColumn);
    rows = await parquetReadObjects({ file: ab, columns: [textColumn, labelColumn] });
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new FormatError(`${shown}: not a readable parquet file (${e instanceof Error ? e.message : String(e)})`);
  }
  return {
    raw: {
      split,
      textFile: shown,
      labelFile: shown,
      unit: 'row',
      records: rows.map((r, i) => ({ text: r[textColumn], label: r[labelColumn], line: i + 1 })),
    },
    classNames,
  };
}

/**
 * Reads one config of a parquet data set from the Hub as the `datasets` library does: the file list and commit
 * from the Hub API, the README.md YAML for the config's `data_files` globs and class names, then the parquet files
 * of each split, all through the shared cache. Without a connection, a cached snapshot of the revision is used.
 */
export async function readHubDataset(opts: HubDatasetOptions): Promise<HubDataset> {
  const client = hubClient({ offlineHint: DATA_OFFLINE_HINT, ...opts });
  const repo: RepoRef = { type: 'dataset', id: opts.dataset };
  const textColumn = opts.textColumn ?? 'text';
  const labelColumn = opts.labelColumn ?? 'label';
  const storage = repoCacheDir(client.cacheDir, repo);

  let commit: string;
  let files: string[];
  try {
    if (client.offline) throw new HubUnreachableError(client.http.endpoint, 'HF_HUB_OFFLINE is set', DATA_OFFLINE_HINT);
    const info = await getRepoInfo(client, repo, opts.revision);
    commit = info.sha;
    files = info.files;
    writeRef(storage, opts.revision, commit);
    opts.log?.(`${opts.dataset}@${opts.revision}: commit ${commit}`);
  } catch (e) {
    if (!(e instanceof HubUnreachableError)) throw e;
    const cached = readRef(storage, opts.revision);
    if (!cached || !isCached(snapshotPath(storage, cached, 'README.md'))) throw e;
    commit = cached;
    files = listSnapshot(storage, commit);
    opts.log?.(`The Hub could not be reached; using the cached snapshot ${commit} of ${opts.dataset}`);
  }
  const shown = (f: string): string => `hf://datasets/${opts.dataset}/${f}`;

  if (!files.includes('README.md')) {
    throw new UsageError(`Dataset repository '${opts.dataset}' has no README.md, so its configs and data files are unknown`);
  }
  const quiet = { ...client, onProgress: undefined };
  const readme = (await downloadFiles(quiet, repo, commit, ['README.md'])).paths.get('README.md')!;
  const card = readCardHeader(fs.readFileSync(readme, 'utf-8'), shown('README.md'));
  const patterns = configDataFiles(card, opts.subset, `Dataset repository '${opts.dataset}'`);

  const bySplit = new Map<SplitName, string[]>();
  for (const [split, pats] of Object.entries(patterns)) {
    if (!(SPLITS as readonly string[]).includes(split)) {
      opts.log?.(`${opts.dataset} (${opts.subset}): split '${split}' is not train, validation or test; skipped`);
      continue;
    }
    const res = pats.map(globToRegExp);
    const matched = files.filter((f) => res.some((r) => r.test(f))).sort();
    if (matched.length === 0) {
      throw new UsageError(
        `Dataset repository '${opts.dataset}' (${opts.subset}): no file matches ${pats.join(', ')} for the ${split} split`,
      );
    }
    const other = matched.find((f) => !f.endsWith('.parquet'));
    if (other) throw new UsageError(`${shown(other)}: only parquet data files are supported`);
    bySplit.set(split as SplitName, matched);
  }
  if (!bySplit.has('train')) throw new UsageError(`Dataset repository '${opts.dataset}' (${opts.subset}): no train split`);

  const all = [...bySplit.values()].flat();
  const downloaded = await downloadFiles(client, repo, commit, all);

  let classNames = cardClassNames(card, opts.subset, labelColumn);
  let classNamesFrom = classNames ? `${shown('README.md')} dataset_info` : undefined;
  const splits: RawSplit[] = [];
  for (const split of SPLITS) {
    for (const f of bySplit.get(split) ?? []) {
      const r = await readParquet(downloaded.paths.get(f)!, shown(f), split, textColumn, labelColumn);
      splits.push(r.raw);
      if (!classNames && r.classNames) {
        classNames = r.classNames;
        classNamesFrom = `${shown(f)} metadata`;
      }
    }
  }
  return {
    splits,
    classNames,
    classNamesFrom,
    commit,
    source: `hf://datasets/${opts.dataset}@${commit} (${opts.subset})`,
  };
}
