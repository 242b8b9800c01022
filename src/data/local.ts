import * as fs from 'node:fs';
import * as path from 'node:path';
import { readUtf8 } from './text_file.js';
import { UsageError } from '../errors.js';
import type { RawDataset, RawRecord, RawSplit } from './build.js';
import { parseDelimited } from './csv.js';
import { arrayElementLines, parseJsonLocated } from './json.js';
import type { SplitName } from './processed.js';

export interface LocalOptions {
  /** Column (CSV/TSV) or field (JSON/JSONL) holding the text; default `text`. */
  textColumn?: string;
  /** Column or field holding the label, as a class name or an id; default `label`. */
  labelColumn?: string;
}

const TWEETEVAL_SPLITS: [string, SplitName][] = [
  ['train', 'train'],
  ['val', 'validation'],
  ['test', 'test'],
];

const TABLE_EXTS = ['.csv', '.tsv', '.jsonl', '.json'];
const SPLIT_FILE_NAMES: Record<SplitName, string[]> = {
  train: ['train'],
  validation: ['validation', 'val', 'dev'],
  test: ['test'],
};

function readText(file: string): string {
  return readUtf8(file);
}

/** The lines of a text file; the line break after the last line does not start another one. */
function textLines(text: string): string[] {
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/** TweetEval's mapping.txt: `id<TAB>name` a line, ids 0..n-1. */
export function readMapping(file: string): string[] {
  const names: string[] = [];
  textLines(readText(file)).forEach((l, i) => {
    if (l.trim() === '') return;
    const m = /^\s*(\d+)\s+(.*\S)\s*$/.exec(l);
    if (!m) throw new UsageError(`${file} line ${i + 1}: expected "id<TAB>class name", found ${JSON.stringify(l)}`);
    const id = Number(m[1]);
    if (names[id] !== undefined) throw new UsageError(`${file} line ${i + 1}: id ${id} appears twice`);
    names[id] = m[2]!;
  });
  for (let i = 0; i < names.length; i++) {
    if (names[i] === undefined) throw new UsageError(`${file}: ids must be 0..${names.length - 1} without gaps, but id ${i} is missing`);
  }
  if (names.length === 0) throw new UsageError(`${file}: no classes`);
  if (new Set(names).size !== names.length) throw new UsageError(`${file}: class names are not unique`);
  return names;
}

function isTweetEvalDir(dir: string): boolean {
  return TWEETEVAL_SPLITS.some(([s]) => fs.existsSync(path.join(dir, `${s}_text.txt`)));
}

/** `{train,val,test}_{text,labels}.txt` with `mapping.txt` here or in the parent folder. */
function readTweetEval(dir: string): RawDataset {
  const mapping = [path.join(dir, 'mapping.txt'), path.join(dir, '..', 'mapping.txt')].find((f) => fs.existsSync(f));
  if (!mapping) throw new UsageError(`${dir}: TweetEval folder without mapping.txt (looked here and in the parent folder)`);
  const splits: RawSplit[] = [];
  for (const [prefix, split] of TWEETEVAL_SPLITS) {
    const textFile = path.join(dir, `${prefix}_text.txt`);
    const labelFile = path.join(dir, `${prefix}_labels.txt`);
    const hasText = fs.existsSync(textFile);
    const hasLabels = fs.existsSync(labelFile);
    if (!hasText && !hasLabels) continue;
    if (!hasText || !hasLabels)
      throw new UsageError(`${hasText ? labelFile : textFile}: missing (${hasText ? textFile : labelFile} is there)`);
    const texts = textLines(readText(textFile));
    const labels = textLines(readText(labelFile));
    if (texts.length !== labels.length) {
      throw new UsageError(`${split} split: ${textFile} has ${texts.length} lines but ${labelFile} has ${labels.length}`);
    }
    splits.push({
      split,
      textFile,
      labelFile,
      unit: 'line',
      records: texts.map((text, i) => ({ text, label: labels[i], line: i + 1 })),
    });
  }
  if (!splits.some((s) => s.split === 'train')) throw new UsageError(`${dir}: no train_text.txt`);
  return { splits, classNames: readMapping(mapping), classNamesFrom: mapping };
}

function fieldOf(obj: unknown, key: string): unknown {
  return typeof obj === 'object' && obj !== null && !Array.isArray(obj) ? (obj as Record<string, unknown>)[key] : undefined;
}

function tableRecords(file: string, split: SplitName, opts: Required<LocalOptions>): Pick<RawSplit, 'unit' | 'records'> {
  const ext = path.extname(file).toLowerCase();
  const text = readText(file);
  const { textColumn, labelColumn } = opts;
  const objectRecords = (objs: { value: unknown; line: number }[], unit: 'line' | 'record'): RawRecord[] =>
    objs.map(({ value, line }) => {
      const where = `${split} split, ${file} ${unit} ${line}`;
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new UsageError(`${where}: expected an object with "${textColumn}" and "${labelColumn}", found ${JSON.stringify(value)}`);
      }
      for (const key of [textColumn, labelColumn]) {
        if (!(key in value)) {
          throw new UsageError(
            `${where}: no "${key}" field (fields: ${Object.keys(value).join(', ')}); choose it with ` +
              `--${key === textColumn ? 'text' : 'label'}-column`,
          );
        }
      }
      return { text: fieldOf(value, textColumn), label: fieldOf(value, labelColumn), line };
    });

  if (ext === '.csv' || ext === '.tsv') {
    const rows = parseDelimited(text, ext === '.csv' ? ',' : '\t', file);
    if (rows.length === 0)
      throw new UsageError(`${file}: empty (a header row with "${textColumn}" and "${labelColumn}" columns is expected)`);
    const header = rows[0]!.fields.map((h) => h.trim());
    const ti = header.indexOf(textColumn);
    const li = header.indexOf(labelColumn);
    for (const [idx, col, opt] of [
      [ti, textColumn, 'text'],
      [li, labelColumn, 'label'],
    ] as const) {
      if (idx < 0) {
        throw new UsageError(
          `${file} line 1: no column "${col}" in the header (columns: ${header.join(', ')}); choose it with --${opt}-column`,
        );
      }
    }
    return {
      unit: 'line',
      records: rows.slice(1).map((r) => {
        if (r.fields.length !== header.length) {
          throw new UsageError(`${split} split, ${file} line ${r.line}: ${r.fields.length} fields where the header has ${header.length}`);
        }
        return { text: r.fields[ti], label: r.fields[li], line: r.line };
      }),
    };
  }
  if (ext === '.jsonl') {
    const objs: { value: unknown; line: number }[] = [];
    textLines(text).forEach((l, i) => {
      if (l.trim() === '') return;
      objs.push({ value: parseJsonLocated(l, file, i), line: i + 1 });
    });
    return { unit: 'line', records: objectRecords(objs, 'line') };
  }
  if (ext === '.json') {
    const v = parseJsonLocated(text, file);
    if (Array.isArray(v)) {
      const lines = arrayElementLines(text);
      const oneALine = new Set(lines).size === lines.length && lines.length === v.length;
      return {
        unit: oneALine ? 'line' : 'record',
        records: objectRecords(
          v.map((value, i) => ({ value, line: oneALine ? lines[i]! : i + 1 })),
          oneALine ? 'line' : 'record',
        ),
      };
    }
    const data = fieldOf(v, 'data');
    if (Array.isArray(data))
      return {
        unit: 'record',
        records: objectRecords(
          data.map((value, i) => ({ value, line: i + 1 })),
          'record',
        ),
      };
    throw new UsageError(`${file}: expected a JSON array of records (or an object whose "data" is one)`);
  }
  throw new UsageError(`${file}: unsupported file type ${JSON.stringify(ext)}; use .csv, .tsv, .jsonl or .json`);
}

/** Split files of a folder: `train.*`, `validation.*` / `val.*` / `dev.*`, `test.*`. */
function splitFiles(dir: string): Partial<Record<SplitName, string>> {
  const out: Partial<Record<SplitName, string>> = {};
  for (const [split, bases] of Object.entries(SPLIT_FILE_NAMES) as [SplitName, string[]][]) {
    const found = bases.flatMap((b) => TABLE_EXTS.map((e) => path.join(dir, b + e))).filter((f) => fs.existsSync(f));
    if (found.length > 1)
      throw new UsageError(`${dir}: more than one file for the ${split} split (${found.map((f) => path.basename(f)).join(', ')})`);
    if (found[0]) out[split] = found[0];
  }
  return out;
}

/**
 * Reads a local data set: a TweetEval folder, a folder of `train` / `validation` (or `val`, `dev`) / `test` files,
 * or a single CSV / TSV / JSONL / JSON file (the train split).
 */
export function readLocal(from: string, opts: LocalOptions = {}): RawDataset {
  const o: Required<LocalOptions> = { textColumn: opts.textColumn ?? 'text', labelColumn: opts.labelColumn ?? 'label' };
  let stat: fs.Stats;
  try {
    stat = fs.statSync(from);
  } catch {
    throw new UsageError(`--from ${from}: no such file or folder`);
  }
  if (stat.isDirectory()) {
    if (isTweetEvalDir(from)) return readTweetEval(from);
    const files = splitFiles(from);
    if (!files.train) {
      throw new UsageError(
        `--from ${from}: neither a TweetEval folder (train_text.txt, train_labels.txt, mapping.txt) nor one with train.csv / ` +
          `.tsv / .jsonl / .json`,
      );
    }
    const mapping = path.join(from, 'mapping.txt');
    const hasMapping = fs.existsSync(mapping);
    return {
      splits: (Object.entries(files) as [SplitName, string][]).map(([split, file]) => ({
        split,
        textFile: file,
        labelFile: file,
        ...tableRecords(file, split, o),
      })),
      ...(hasMapping ? { classNames: readMapping(mapping), classNamesFrom: mapping } : {}),
    };
  }
  return { splits: [{ split: 'train', textFile: from, labelFile: from, ...tableRecords(from, 'train', o) }] };
}
