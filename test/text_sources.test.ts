import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readTextSources } from '../src/data/text_sources.js';
import { TWEETEVAL_SLICE } from './helpers/fixtures.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-texts-'));
const write = (name: string, content: string) => {
  const p = path.join(dir, name);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
  return p;
};
const lineCount = (f: string) => fs.readFileSync(f, 'utf-8').split('\n').filter((l) => l.trim() !== '').length;

test('a TweetEval folder gives its train, val and test texts, not labels or mapping', () => {
  const task = path.join(TWEETEVAL_SLICE, 'irony');
  const files = readTextSources([task]);
  assert.deepEqual(files.map((f) => path.basename(f.file)), ['test_text.txt', 'train_text.txt', 'val_text.txt']);
  for (const f of files) assert.equal(f.texts.length, lineCount(f.file));
  assert.equal(files[1]!.texts[0], fs.readFileSync(path.join(task, 'train_text.txt'), 'utf-8').split('\n')[0]!.trim());
});

test('text, CSV, TSV, JSONL and JSON files and nested folders, several sources at once, empty texts left out', () => {
  write('mix/a.txt', 'first line\n\n  second line  \r\n');
  write('mix/b.csv', 'id,body\n1,"a, quoted text"\n2,plain\n');
  write('mix/sub/c.jsonl', '{"body": "json line"}\n\n{"body": ""}\n');
  write('mix/sub/d.json', '[{"body": "from json"}]');
  write('mix/sub/ignored.md', '# not read');
  const tsv = write('e.tsv', 'body\tx\ntab text\t1\n');
  const files = readTextSources([path.join(dir, 'mix'), tsv], { textColumn: 'body' });
  assert.deepEqual(
    files.map((f) => [path.relative(dir, f.file), f.texts]),
    [
      ['mix/a.txt', ['first line', 'second line']],
      ['mix/b.csv', ['a, quoted text', 'plain']],
      ['mix/sub/c.jsonl', ['json line']],
      ['mix/sub/d.json', ['from json']],
      ['e.tsv', ['tab text']],
    ],
  );
});

test('bad sources: one line naming the source, the line and what was expected', () => {
  const missing = path.join(dir, 'nope');
  assert.throws(() => readTextSources([missing]), { message: `--from ${missing}: no such file or folder` });
  const empty = write('empty/e.txt', '\n  \n');
  assert.throws(() => readTextSources([path.dirname(empty)]), { message: `--from ${path.dirname(empty)}: no texts (every line or record is empty)` });
  const noCol = write('nocol.csv', 'a,b\n1,2\n');
  assert.throws(() => readTextSources([noCol]), { message: `${noCol} line 1: no column "text" in the header (columns: a, b); choose it with --text-column` });
  const badJson = write('bad.jsonl', '{"text": "ok"}\n{"text": 3}\n');
  assert.throws(() => readTextSources([badJson]), { message: `${badJson} line 2: "text" is 3, expected a string` });
  const other = write('x.parquet', '');
  assert.throws(() => readTextSources([other]), /x\.parquet: unsupported file type "\.parquet"/);
  fs.mkdirSync(path.join(dir, 'none'));
  assert.throws(() => readTextSources([path.join(dir, 'none')]), /none: no \.txt, \.csv, \.tsv, \.jsonl or \.json files in this folder$/);
});
