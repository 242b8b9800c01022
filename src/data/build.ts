import { UsageError } from '../errors.js';
import type { Example, SplitName } from './processed.js';

/** A record as a source read it, before its text is checked and its label mapped to an id. */
export interface RawRecord {
  text: unknown;
  label: unknown;
  /** 1-based line (text files), row (parquet) or record number, for messages. */
  line: number;
}

export interface RawSplit {
  split: SplitName;
  /** Where texts come from, and where labels come from (the same file except in the TweetEval layout). */
  textFile: string;
  labelFile: string;
  unit: 'line' | 'row' | 'record';
  records: RawRecord[];
}

export interface RawDataset {
  splits: RawSplit[];
  /** Class names by id when the source declares them (mapping.txt, a ClassLabel feature). */
  classNames?: string[];
  /** Where those names come from, for messages. */
  classNamesFrom?: string;
}

const INT_RE = /^-?\d+$/;

function listNames(names: string[]): string {
  const shown = names.slice(0, 20).join(', ');
  return names.length > 20 ? `${shown}, … (${names.length} classes)` : shown;
}

function labelKey(v: unknown): string | number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') return v.trim() === '' ? undefined : v.trim();
  return undefined;
}

function isIdLike(k: string | number): boolean {
  return typeof k === 'number' ? Number.isInteger(k) : INT_RE.test(k);
}

/**
 * Checks texts (trimmed, never empty) and maps labels to ids. Labels may be ids or names. Without declared class
 * names, labels that are all integers are ids (class names "0".."n-1"), otherwise they are names, ordered as
 * sorted strings. Every error names the split, the file, the line and the value.
 */
export function buildSplits(
  raw: RawDataset,
  opts: { skipEmptyTexts?: boolean; log?: (line: string) => void } = {},
): { classNames: string[]; splits: Partial<Record<SplitName, Example[]>> } {
  const at = (s: RawSplit, file: string, r: RawRecord): string => `${s.split} split, ${file} ${s.unit} ${r.line}`;

  for (const s of raw.splits) {
    for (const r of s.records) {
      if (labelKey(r.label) === undefined) {
        throw new UsageError(
          `${at(s, s.labelFile, r)}: missing label${r.label === undefined ? '' : ` (found ${JSON.stringify(r.label)})`}`,
        );
      }
    }
  }

  let classNames = raw.classNames;
  let byName: Map<string, number>;
  const from = raw.classNamesFrom ? ` (from ${raw.classNamesFrom})` : '';
  if (classNames) {
    byName = new Map(classNames.map((n, i) => [n, i]));
  } else {
    const keys = raw.splits.flatMap((s) => s.records.map((r) => labelKey(r.label)!));
    if (keys.length > 0 && keys.every(isIdLike)) {
      let max = -1;
      for (const s of raw.splits) {
        for (const r of s.records) {
          const id = Number(labelKey(r.label));
          if (id < 0) throw new UsageError(`${at(s, s.labelFile, r)}: label ${JSON.stringify(r.label)} is negative; ids start at 0`);
          if (id > max) max = id;
        }
      }
      classNames = Array.from({ length: max + 1 }, (_, i) => String(i));
      byName = new Map();
    } else {
      classNames = [...new Set(keys.map(String))].sort();
      byName = new Map(classNames.map((n, i) => [n, i]));
    }
  }
  const names = classNames;

  const splits: Partial<Record<SplitName, Example[]>> = {};
  for (const s of raw.splits) {
    const examples = (splits[s.split] ??= []);
    const skipped: number[] = [];
    for (const r of s.records) {
      const ex = toExample(s, r);
      if (ex) examples.push(ex);
      else skipped.push(r.line);
    }
    if (skipped.length) {
      opts.log?.(
        `${s.split} split: left out ${skipped.length} empty text(s), ${s.textFile} ${s.unit}s ` +
          `${skipped.slice(0, 10).join(', ')}${skipped.length > 10 ? ', …' : ''}`,
      );
    }
  }
  return { classNames: names, splits };

  function toExample(s: RawSplit, r: RawRecord): Example | undefined {
    if (typeof r.text !== 'string') {
      throw new UsageError(`${at(s, s.textFile, r)}: text must be a string, found ${JSON.stringify(r.text) ?? String(r.text)}`);
    }
    const text = r.text.trim();
    if (text === '') {
      if (opts.skipEmptyTexts) return undefined;
      throw new UsageError(
        `${at(s, s.textFile, r)}: empty text ${JSON.stringify(r.text)} (pass --skip-empty-texts to leave such examples out)`,
      );
    }
    const k = labelKey(r.label)!;
    let label = typeof k === 'string' ? byName.get(k) : undefined;
    if (label === undefined && isIdLike(k)) {
      const id = Number(k);
      if (id >= 0 && id < names.length) label = id;
    }
    if (label === undefined) {
      const expected = byName.size > 0 ? `one of ${listNames(names)} or an id 0..${names.length - 1}` : `an id 0..${names.length - 1}`;
      throw new UsageError(`${at(s, s.labelFile, r)}: unknown label ${JSON.stringify(labelKey(r.label))}; expected ${expected}${from}`);
    }
    return { text, label };
  }
}
