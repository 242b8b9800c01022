/**
 * Unlabeled text for `pretrain`: plain text files (one text per line), the text column of CSV / TSV / JSONL / JSON
 * files, TweetEval folders (their `*_text.txt` files) and folders of those, several sources at once.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../errors.js';
import { parseDelimited } from './csv.js';
import { parseJsonLocated } from './json.js';
import { readUtf8 } from './text_file.js';

export interface TextSourceOptions {
  /** Column (CSV/TSV) or field (JSON/JSONL) holding the text; default `text`. */
  textColumn?: string;
}

export interface TextSourceFile {
  file: string;
  texts: string[];
}

const TABLE_EXTS = new Set(['.csv', '.tsv', '.jsonl', '.json']);

function lines(text: string): string[] {
  return text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

function textField(value: unknown, column: string, where: string): string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`${where}: expected an object with a "${column}" field, found ${JSON.stringify(value).slice(0, 80)}`);
  }
  const v = (value as Record<string, unknown>)[column];
  if (v === undefined)
    throw new UsageError(`${where}: no "${column}" field (fields: ${Object.keys(value).join(', ')}); choose it with --text-column`);
  if (typeof v !== 'string') throw new UsageError(`${where}: "${column}" is ${JSON.stringify(v)}, expected a string`);
  return v;
}

/** The texts of one file; empty texts are left out. */
export function readTextFile(file: string, opts: TextSourceOptions = {}): string[] {
  const column = opts.textColumn ?? 'text';
  const ext = path.extname(file).toLowerCase();
  const content = readUtf8(file);
  let texts: string[];
  if (ext === '.csv' || ext === '.tsv') {
    const rows = parseDelimited(content, ext === '.csv' ? ',' : '\t', file);
    if (rows.length === 0) throw new UsageError(`${file}: empty (a header row with a "${column}" column is expected)`);
    const header = rows[0]!.fields.map((h) => h.trim());
    const ti = header.indexOf(column);
    if (ti < 0)
      throw new UsageError(
        `${file} line 1: no column "${column}" in the header (columns: ${header.join(', ')}); choose it with --text-column`,
      );
    texts = rows.slice(1).map((r) => r.fields[ti] ?? '');
  } else if (ext === '.jsonl') {
    texts = lines(content).flatMap((l, i) =>
      l.trim() === '' ? [] : [textField(parseJsonLocated(l, file, i), column, `${file} line ${i + 1}`)],
    );
  } else if (ext === '.json') {
    const v = parseJsonLocated(content, file);
    const records = Array.isArray(v) ? v : (v as { data?: unknown } | null)?.data;
    if (!Array.isArray(records)) throw new UsageError(`${file}: expected a JSON array of records (or an object whose "data" is one)`);
    texts = records.map((r, i) => textField(r, column, `${file} record ${i + 1}`));
  } else if (ext === '.txt' || ext === '') {
    texts = lines(content);
  } else {
    throw new UsageError(
      `${file}: unsupported file type ${JSON.stringify(ext)}; use .txt (one text per line), .csv, .tsv, .jsonl or .json`,
    );
  }
  return texts.map((t) => t.trim()).filter((t) => t !== '');
}

/** Files of a folder to read: a TweetEval folder's `*_text.txt`; otherwise text and table files, recursively. */
function folderFiles(dir: string): string[] {
  const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
  const tweetEval = entries.filter((e) => e.isFile() && /_text\.txt$/.test(e.name));
  if (tweetEval.length) return tweetEval.map((e) => path.join(dir, e.name));
  return entries.flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return folderFiles(p);
    const ext = path.extname(e.name).toLowerCase();
    return e.isFile() && (ext === '.txt' || TABLE_EXTS.has(ext)) ? [p] : [];
  });
}

/** Reads every source (a file or a folder) in order; a source without any text is an error naming it. */
export function readTextSources(sources: readonly string[], opts: TextSourceOptions = {}): TextSourceFile[] {
  if (sources.length === 0) throw new UsageError('--from: give at least one text file or folder');
  const out: TextSourceFile[] = [];
  for (const source of sources) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(source);
    } catch {
      throw new UsageError(`--from ${source}: no such file or folder`);
    }
    const files = stat.isDirectory() ? folderFiles(source) : [source];
    if (files.length === 0) throw new UsageError(`--from ${source}: no .txt, .csv, .tsv, .jsonl or .json files in this folder`);
    const read = files.map((file) => ({ file, texts: readTextFile(file, opts) }));
    if (read.every((f) => f.texts.length === 0)) throw new UsageError(`--from ${source}: no texts (every line or record is empty)`);
    out.push(...read.filter((f) => f.texts.length > 0));
  }
  return out;
}
