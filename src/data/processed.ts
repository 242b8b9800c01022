import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError, UsageError } from '../errors.js';
import { readUtf8 } from './text_file.js';
import { writeFileAtomic, writeJsonAtomic } from '../fsutil.js';
import { arrayElementLines, parseJsonLocated } from './json.js';

export const SPLITS = ['train', 'validation', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];

export interface Example {
  text: string;
  label: number;
}

/** `{"anger": 0, "joy": 1, …}`: class name to id, ids 0..n-1. */
export type ClassesMap = Record<string, number>;

export interface SplitSummary {
  size: number;
  /** Examples per class name, every class listed (0 where absent), in id order. */
  classCounts: Record<string, number>;
}

export interface WriteSummary {
  outDir: string;
  classesMapPath: string;
  classNames: string[];
  /** The files written, by split. */
  files: Partial<Record<SplitName, string>>;
  splits: Partial<Record<SplitName, SplitSummary>>;
}

export const DEFAULT_CLASSES_MAP = 'classes_map.json';

/** `datasets/<dataset-name>-<subset>_processed`, e.g. `datasets/tweet_eval-emotion_processed` for cardiffnlp/tweet_eval. */
export function defaultOutDir(dataset: string, subset: string): string {
  const name = dataset.split('/').filter(Boolean).pop() ?? dataset;
  for (const [what, v] of [
    ['data set', name],
    ['subset', subset],
  ] as const) {
    if (!/^[\w.-]+$/.test(v) || v === '.' || v === '..')
      throw new UsageError(`${what} name ${JSON.stringify(v)} may only hold letters, digits, "-", "_" and "."`);
  }
  return path.join('datasets', `${name}-${subset}_processed`);
}

export function classNamesOf(map: ClassesMap): string[] {
  const names: string[] = [];
  for (const [name, id] of Object.entries(map)) names[id] = name;
  return names;
}

export function summarizeSplit(examples: Example[], classNames: string[]): SplitSummary {
  const counts = new Array<number>(classNames.length).fill(0);
  for (const e of examples) counts[e.label]!++;
  return { size: examples.length, classCounts: Object.fromEntries(classNames.map((n, i) => [n, counts[i]!])) };
}

/** One record a line, so that a line number in an error leads to the record. */
function splitJson(examples: Example[]): string {
  if (examples.length === 0) return '[]\n';
  return '[\n' + examples.map((e) => JSON.stringify({ text: e.text, label: e.label })).join(',\n') + '\n]\n';
}

/**
 * Writes `outDir/{train,validation,test}.json` (`[{"text": …, "label": id}]`) for the splits given, removing
 * those of an earlier run that this one lacks, and the classes map `{"name": id}`; every file atomically.
 */
export function writeProcessed(opts: {
  outDir: string;
  classesMapPath: string;
  splits: Partial<Record<SplitName, Example[]>>;
  classNames: string[];
}): WriteSummary {
  const { outDir, classesMapPath, splits, classNames } = opts;
  if (new Set(classNames).size !== classNames.length) throw new UsageError(`class names are not unique: ${classNames.join(', ')}`);
  for (const [split, examples] of Object.entries(splits) as [SplitName, Example[]][]) {
    examples.forEach((e, i) => {
      if (!Number.isInteger(e.label) || e.label < 0 || e.label >= classNames.length) {
        throw new UsageError(`${split} example ${i + 1}: label ${e.label} is not a class id 0..${classNames.length - 1}`);
      }
    });
  }
  try {
    fs.mkdirSync(outDir, { recursive: true });
    fs.mkdirSync(path.dirname(path.resolve(classesMapPath)), { recursive: true });
  } catch (e) {
    throw new UsageError(`cannot create the output folder ${outDir} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const summary: WriteSummary = { outDir, classesMapPath, classNames, files: {}, splits: {} };
  for (const split of SPLITS) {
    const file = path.join(outDir, `${split}.json`);
    const examples = splits[split];
    if (!examples) {
      fs.rmSync(file, { force: true });
      continue;
    }
    writeFileAtomic(file, splitJson(examples));
    summary.files[split] = file;
    summary.splits[split] = summarizeSplit(examples, classNames);
  }
  writeJsonAtomic(classesMapPath, Object.fromEntries(classNames.map((n, i) => [n, i])));
  return summary;
}

function readText(file: string, what: string): string {
  return readUtf8(file, what);
}

/** Reads and checks a classes map: a JSON object of class name to id, ids unique and exactly 0..n-1. */
export function readClassesMap(file: string): ClassesMap {
  const text = readText(file, 'classes map');
  const v = parseJsonLocated(text, file);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new FormatError(`${file}: a classes map must be a JSON object {"class name": id, …}`);
  }
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length === 0) throw new FormatError(`${file}: the classes map is empty`);
  const byId = new Map<number, string>();
  for (const [name, id] of entries) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new FormatError(
        `${file}: class ${JSON.stringify(name)} has id ${JSON.stringify(id)}, expected an integer 0..${entries.length - 1}`,
      );
    }
    if (name.trim() === '') throw new FormatError(`${file}: a class name is empty (id ${id})`);
    const other = byId.get(id);
    if (other !== undefined)
      throw new FormatError(`${file}: classes ${JSON.stringify(other)} and ${JSON.stringify(name)} both have id ${id}`);
    byId.set(id, name);
  }
  for (let i = 0; i < entries.length; i++) {
    if (!byId.has(i)) {
      throw new FormatError(`${file}: ids must be 0..${entries.length - 1} without gaps, but no class has id ${i}`);
    }
  }
  return Object.fromEntries(entries) as ClassesMap;
}

/**
 * Reads a processed split written by `writeProcessed`, checking every record: a JSON array of objects with a
 * non-empty string `text` and an integer `label` that is an id of the classes map.
 */
export function readSplit(file: string, classesMap: ClassesMap): Example[] {
  const text = readText(file, 'split');
  const v = parseJsonLocated(text, file);
  if (!Array.isArray(v)) {
    throw new FormatError(`${file}: expected a JSON array of {"text": …, "label": …} records, found ${v === null ? 'null' : typeof v}`);
  }
  const lines = arrayElementLines(text);
  const ids = new Set(Object.values(classesMap));
  const n = ids.size;
  return v.map((rec: unknown, i): Example => {
    const where = `${file}: record ${i + 1}${lines[i] !== undefined ? ` (line ${lines[i]})` : ''}`;
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) {
      throw new FormatError(`${where}: expected an object {"text": …, "label": …}, found ${JSON.stringify(rec)}`);
    }
    const r = rec as Record<string, unknown>;
    if (!('text' in r)) throw new FormatError(`${where}: missing "text"`);
    if (!('label' in r)) throw new FormatError(`${where}: missing "label"`);
    if (typeof r.text !== 'string') throw new FormatError(`${where}: "text" must be a string, found ${JSON.stringify(r.text)}`);
    if (r.text.trim() === '') throw new FormatError(`${where}: "text" is empty`);
    if (typeof r.label !== 'number' || !Number.isInteger(r.label) || !ids.has(r.label)) {
      throw new FormatError(`${where}: "label" ${JSON.stringify(r.label)} is not a class id of the classes map (0..${n - 1})`);
    }
    return { text: r.text, label: r.label };
  });
}
