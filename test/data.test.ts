import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FormatError, T5clsError } from '../src/errors.js';
import {
  type LoadDatasetOptions,
  cardClassNames,
  configDataFiles,
  defaultOutDir,
  globToRegExp,
  loadDataset,
  parseDelimited,
  parseYaml,
  readCardHeader,
  readClassesMap,
  readSplit,
} from '../src/data/index.js';
import { closedPort, startFakeHub, tweetEvalRepo, type FakeHub } from './helpers/fake_hub.js';
import { SHARED, sharedSkip, tempDirs, TWEETEVAL, TWEETEVAL_SLICE } from './helpers/fixtures.js';

interface Rec {
  text: string;
  label: number;
}

/** The TweetEval files (the committed slice) read directly, as the reference: one tweet a line, trimmed; one integer label a line. */
function reference(task: string): Record<'train' | 'validation' | 'test', Rec[]> {
  const read = (f: string): string[] => {
    const l = fs.readFileSync(path.join(TWEETEVAL_SLICE, task, f), 'utf-8').split('\n');
    l.pop();
    return l;
  };
  const split = (p: string): Rec[] => {
    const labels = read(`${p}_labels.txt`);
    return read(`${p}_text.txt`).map((t, i) => ({ text: t.trim(), label: Number(labels[i]) }));
  };
  return { train: split('train'), validation: split('val'), test: split('test') };
}

const readJson = (f: string): unknown => JSON.parse(fs.readFileSync(f, 'utf-8'));

let hub: FakeHub;
const tempRoots = tempDirs('t5cls-data-');
const tmp = (): string => tempRoots.make();

function hubOpts(work: string, extra: Partial<LoadDatasetOptions> = {}): LoadDatasetOptions {
  return {
    endpoint: hub.url,
    token: '',
    hfHome: path.join(work, 'hf'),
    out: path.join(work, 'out'),
    classesMap: path.join(work, 'classes_map.json'),
    retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 },
    ...extra,
  };
}


before(async () => {
  hub = await startFakeHub({ datasets: [tweetEvalRepo(TWEETEVAL_SLICE, ['emotion', 'irony'])] });
});

after(async () => {
  await hub.close();
  tempRoots.removeAll();
});

beforeEach(() => {
  hub.requests.length = 0;
});

// Class counts of the committed TweetEval slice (`sort <split>_labels.txt | uniq -c` in test/fixtures/tweeteval/<task>).
const EMOTION_COUNTS = {
  train: { anger: 87, joy: 48, optimism: 18, sadness: 47 },
  validation: { anger: 22, joy: 10, optimism: 3, sadness: 15 },
  test: { anger: 46, joy: 21, optimism: 9, sadness: 24 },
};
const IRONY_COUNTS = {
  train: { non_irony: 153, irony: 147 },
  validation: { non_irony: 30, irony: 20 },
  test: { non_irony: 28, irony: 22 },
};

describe('load-dataset from the Hub', () => {
  for (const [task, classes, counts] of [
    ['emotion', { anger: 0, joy: 1, optimism: 2, sadness: 3 }, EMOTION_COUNTS],
    ['irony', { non_irony: 0, irony: 1 }, IRONY_COUNTS],
  ] as const) {
    test(`${task}: the Hub's parquet files give the records of the TweetEval files, and --from gives the same files`, async () => {
      const work = tmp();
      const summary = await loadDataset(hubOpts(work, { subset: task }));
      const ref = reference(task);
      for (const split of ['train', 'validation', 'test'] as const) {
        assert.deepEqual(readJson(path.join(work, 'out', `${split}.json`)), ref[split], `${split} records`);
        assert.deepEqual(summary.splits[split], { size: ref[split].length, classCounts: counts[split] });
      }
      assert.deepEqual(readJson(path.join(work, 'classes_map.json')), classes);
      assert.deepEqual(summary.classNames, Object.keys(classes));
      assert.equal(summary.commit, hub.commitOf('dataset', 'cardiffnlp/tweet_eval'));
      assert.equal(summary.source, `hf://datasets/cardiffnlp/tweet_eval@${summary.commit} (${task})`);

      const local = tmp();
      const s2 = await loadDataset({
        from: path.join(TWEETEVAL_SLICE, task),
        out: path.join(local, 'out'),
        classesMap: path.join(local, 'classes_map.json'),
      });
      for (const f of ['train.json', 'validation.json', 'test.json']) {
        assert.ok(fs.readFileSync(path.join(local, 'out', f)).equals(fs.readFileSync(path.join(work, 'out', f))), f);
      }
      assert.deepEqual(readJson(path.join(local, 'classes_map.json')), classes);
      assert.deepEqual(s2.splits, summary.splits);
      assert.equal(s2.commit, undefined);
    });
  }

  test('the cache holds blobs, refs and snapshots; a second run downloads nothing; offline runs use it', async () => {
    const work = tmp();
    const progress: [number, number | undefined][] = [];
    const first = await loadDataset(hubOpts(work, { onProgress: (d, t) => progress.push([d, t]) }));
    const commit = hub.commitOf('dataset', 'cardiffnlp/tweet_eval');
    const storage = path.join(work, 'hf', 'hub', 'datasets--cardiffnlp--tweet_eval');
    assert.equal(fs.readFileSync(path.join(storage, 'refs', 'main'), 'utf-8'), commit);
    const snap = path.join(storage, 'snapshots', commit);
    const parquet = ['train', 'validation', 'test'].map((s) => `emotion/${s}-00000-of-00001.parquet`);
    assert.deepEqual(fs.readdirSync(path.join(snap, 'emotion')).sort(), parquet.map((p) => path.basename(p)).sort());
    assert.ok(fs.existsSync(path.join(snap, 'README.md')));
    assert.ok(!fs.existsSync(path.join(snap, 'irony')), 'only the files of the asked config');
    for (const p of parquet) {
      const target = fs.readlinkSync(path.join(snap, p));
      assert.match(target, /^\.\.\/\.\.\/\.\.\/blobs\/[0-9a-f]{64}$/, 'LFS files link to blobs named by sha256');
    }
    assert.match(fs.readlinkSync(path.join(snap, 'README.md')), /^\.\.\/\.\.\/blobs\/[0-9a-f]{40}$/);
    const parquetBytes = parquet.reduce((a, p) => a + fs.statSync(path.join(snap, p)).size, 0);
    assert.deepEqual(progress[progress.length - 1], [parquetBytes, parquetBytes]);
    assert.equal(hub.requests.filter((r) => r.server === 'cdn').length, 3);

    hub.requests.length = 0;
    await loadDataset(hubOpts(work));
    assert.deepEqual(
      hub.requests.map((r) => `${r.method} ${r.url}`),
      ['GET /api/datasets/cardiffnlp/tweet_eval/revision/main'],
    );

    const dead = `http://127.0.0.1:${await closedPort()}`;
    const lines: string[] = [];
    const offline = tmp();
    const third = await loadDataset({
      ...hubOpts(work, { endpoint: dead, log: (l) => lines.push(l) }),
      out: path.join(offline, 'out'),
      classesMap: path.join(offline, 'classes_map.json'),
    });
    assert.deepEqual(third.splits, first.splits);
    assert.ok(fs.readFileSync(path.join(offline, 'out', 'train.json')).equals(fs.readFileSync(path.join(work, 'out', 'train.json'))));
    assert.ok(lines.some((l) => l.includes(`using the cached snapshot ${commit}`)));
  });

  test('an unreachable Hub with nothing cached: one line that names --from PATH', async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    await assert.rejects(loadDataset(hubOpts(tmp(), { endpoint: dead })), (e: Error) => {
      assert.ok(e instanceof T5clsError);
      assert.match(e.message, new RegExp(`^Could not reach the Hugging Face Hub at ${dead} \\(connection refused after 3 tries\\); .*--from PATH`));
      assert.ok(!e.message.includes('\n'));
      return true;
    });
  });

  test('the legacy id tweet_eval is redirected to cardiffnlp/tweet_eval', async () => {
    const work = tmp();
    const s = await loadDataset(hubOpts(work, { dataset: 'tweet_eval', subset: 'irony' }));
    assert.deepEqual(s.splits.validation, { size: 50, classCounts: IRONY_COUNTS.validation });
    assert.ok(hub.requests.some((r) => r.url === '/api/datasets/tweet_eval/revision/main' && r.status === 307));
    assert.ok(hub.requests.some((r) => r.url.startsWith('/datasets/tweet_eval/resolve/') && r.status === 307));
    assert.ok(fs.existsSync(path.join(work, 'hf', 'hub', 'datasets--tweet_eval', 'refs', 'main')));
  });

  test('an unknown subset lists the subsets; a missing repo says so', async () => {
    await assert.rejects(loadDataset(hubOpts(tmp(), { subset: 'sentiment' })), /no subset 'sentiment' \(subsets: emotion, irony\)/);
    await assert.rejects(loadDataset(hubOpts(tmp(), { dataset: 'nobody/nothing' })), /Dataset repository 'nobody\/nothing' was not found/);
  });

  test('the default output folder', () => {
    assert.equal(defaultOutDir('cardiffnlp/tweet_eval', 'emotion'), path.join('datasets', 'tweet_eval-emotion_processed'));
    assert.equal(defaultOutDir('tweet_eval', 'irony'), path.join('datasets', 'tweet_eval-irony_processed'));
  });
});

/** Writes files into a fresh folder and answers its path. */
function folder(files: Record<string, string>): string {
  const d = tmp();
  for (const [f, c] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(d, f)), { recursive: true });
    fs.writeFileSync(path.join(d, f), c);
  }
  return d;
}

async function loadLocal(from: string, extra: Partial<LoadDatasetOptions> = {}) {
  const out = tmp();
  const summary = await loadDataset({ from, out: path.join(out, 'p'), classesMap: path.join(out, 'cm.json'), ...extra });
  const split = (s: string): unknown => (fs.existsSync(path.join(out, 'p', `${s}.json`)) ? readJson(path.join(out, 'p', `${s}.json`)) : undefined);
  return { summary, classes: readJson(path.join(out, 'cm.json')), train: split('train'), validation: split('validation'), test: split('test'), out };
}

describe('--from local files', () => {
  test('CSV: quoted fields, doubled quotes, line breaks in a field, CRLF; names become sorted classes', async () => {
    const csv = 'id,text,label\r\n1,"Hello, world",joy\r\n2,"She said ""hi""",anger\r\n3,"two\r\nlines",joy\r\n4,  padded  ,sadness\r\n';
    const d = folder({ 'data.csv': csv });
    const r = await loadLocal(path.join(d, 'data.csv'));
    assert.deepEqual(r.classes, { anger: 0, joy: 1, sadness: 2 });
    assert.deepEqual(r.train, [
      { text: 'Hello, world', label: 1 },
      { text: 'She said "hi"', label: 0 },
      { text: 'two\r\nlines', label: 1 },
      { text: 'padded', label: 2 },
    ]);
    assert.equal(r.validation, undefined);
    assert.deepEqual(r.summary.splits, { train: { size: 4, classCounts: { anger: 1, joy: 2, sadness: 1 } } });
  });

  test('a TSV folder with ids, other column names, and dev as the validation split', async () => {
    const d = folder({
      'train.tsv': 'sentence\tgold\nfirst one\t2\nsecond\t0\n',
      'dev.tsv': 'sentence\tgold\nthird\t1\n',
      'test.tsv': 'sentence\tgold\nfourth "quoted" word\t0\n',
    });
    const r = await loadLocal(d, { textColumn: 'sentence', labelColumn: 'gold' });
    assert.deepEqual(r.classes, { 0: 0, 1: 1, 2: 2 });
    assert.deepEqual(r.train, [
      { text: 'first one', label: 2 },
      { text: 'second', label: 0 },
    ]);
    assert.deepEqual(r.validation, [{ text: 'third', label: 1 }]);
    assert.deepEqual(r.test, [{ text: 'fourth "quoted" word', label: 0 }]);
  });

  test('JSONL with names and JSON with ids named by a mapping.txt', async () => {
    const d = folder({ 'x.jsonl': '{"text": "good day", "label": "pos"}\n\n{"text": "bad day", "label": "neg", "extra": 1}\n' });
    const r = await loadLocal(path.join(d, 'x.jsonl'));
    assert.deepEqual(r.classes, { neg: 0, pos: 1 });
    assert.deepEqual(r.train, [
      { text: 'good day', label: 1 },
      { text: 'bad day', label: 0 },
    ]);

    const j = folder({
      'train.json': JSON.stringify([{ text: 'a', label: 1 }, { text: 'b', label: 'zero' }, { text: ' c ', label: '1' }]),
      'val.json': JSON.stringify({ data: [{ text: 'd', label: 0 }] }),
      'mapping.txt': '0\tzero\n1\tone',
    });
    const r2 = await loadLocal(j);
    assert.deepEqual(r2.classes, { zero: 0, one: 1 });
    assert.deepEqual(r2.train, [
      { text: 'a', label: 1 },
      { text: 'b', label: 0 },
      { text: 'c', label: 1 },
    ]);
    assert.deepEqual(r2.validation, [{ text: 'd', label: 0 }]);
  });

  test('a TweetEval task folder with mapping.txt in the parent folder; stale splits of an earlier run are removed', async () => {
    const root = folder({
      'mapping.txt': '0\tneg\n1\tpos\n',
      'task/train_text.txt': ' one \ntwo\n',
      'task/train_labels.txt': '1\n0\n',
    });
    const out = tmp();
    fs.mkdirSync(path.join(out, 'p'));
    fs.writeFileSync(path.join(out, 'p', 'test.json'), '[]');
    await loadDataset({ from: path.join(root, 'task'), out: path.join(out, 'p'), classesMap: path.join(out, 'cm.json') });
    assert.deepEqual(readJson(path.join(out, 'p', 'train.json')), [
      { text: 'one', label: 1 },
      { text: 'two', label: 0 },
    ]);
    assert.deepEqual(readJson(path.join(out, 'cm.json')), { neg: 0, pos: 1 });
    assert.ok(!fs.existsSync(path.join(out, 'p', 'test.json')));
  });
});

describe('bad input: each error names the split, file, line and value', () => {
  const rejects = async (from: string, re: RegExp, extra: Partial<LoadDatasetOptions> = {}): Promise<void> => {
    const out = tmp();
    await assert.rejects(loadDataset({ from, out: path.join(out, 'p'), classesMap: path.join(out, 'cm.json'), ...extra }), (e: Error) => {
      assert.ok(e instanceof T5clsError, `${e.name}: ${e.message}`);
      assert.equal(e.exitCode, 2);
      assert.match(e.message, re);
      assert.ok(!e.message.includes('\n'), 'one line');
      return true;
    });
    assert.ok(!fs.existsSync(path.join(out, 'p', 'train.json')), 'nothing is written');
  };

  test('TweetEval: empty text, unknown label, line counts that differ', async () => {
    const base = { 'mapping.txt': '0\tneg\n1\tpos', 'train_labels.txt': '0\n1\n0\n' };
    let d = folder({ ...base, 'train_text.txt': 'fine\n   \nalso fine\n' });
    await rejects(d, new RegExp(`^train split, ${d}/train_text\\.txt line 2: empty text "   " \\(pass --skip-empty-texts to leave such examples out\\)$`));
    d = folder({ ...base, 'train_text.txt': 'a\nb\nc\n', 'val_text.txt': 'x\ny\n', 'val_labels.txt': '1\n7\n' });
    await rejects(d, new RegExp(`^validation split, ${d}/val_labels\\.txt line 2: unknown label "7"; expected one of neg, pos or an id 0\\.\\.1 \\(from ${d}/mapping\\.txt\\)$`));
    d = folder({ ...base, 'train_text.txt': 'a\nb\n' });
    await rejects(d, /train split: .*train_text\.txt has 2 lines but .*train_labels\.txt has 3/);
  });

  test('--skip-empty-texts leaves empty tweets out of each split and names their lines', async () => {
    const d = folder({
      'mapping.txt': '0\tneg\n1\tpos',
      'train_text.txt': 'a\n\nb\n  \nc\n',
      'train_labels.txt': '0\n1\n0\n1\n1\n',
      'val_text.txt': '\t\nx\n',
      'val_labels.txt': '1\n0\n',
    });
    const lines: string[] = [];
    const out = tmp();
    const summary = await loadDataset({ from: d, skipEmptyTexts: true, out: path.join(out, 'p'), classesMap: path.join(out, 'cm.json'), log: (l) => lines.push(l) });
    assert.deepEqual(readJson(path.join(out, 'p', 'train.json')), [
      { text: 'a', label: 0 },
      { text: 'b', label: 0 },
      { text: 'c', label: 1 },
    ]);
    assert.deepEqual(summary.splits.validation, { size: 1, classCounts: { neg: 1, pos: 0 } });
    assert.deepEqual(lines.filter((l) => l.includes('left out')), [
      `train split: left out 2 empty text(s), ${d}/train_text.txt lines 2, 4`,
      `validation split: left out 1 empty text(s), ${d}/val_text.txt lines 1`,
    ]);
  });

  test('the real hate task has empty tweets: the first one is reported', { skip: sharedSkip('the full TweetEval hate train split') }, async () => {
    await rejects(path.join(TWEETEVAL, 'hate'), new RegExp(`^train split, ${TWEETEVAL}/hate/train_text\\.txt line 1468: empty text "" \\(pass --skip-empty-texts to leave such examples out\\)$`));
    const lines: string[] = [];
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-hate-'));
    const summary = await loadDataset({ from: path.join(TWEETEVAL, 'hate'), skipEmptyTexts: true, out, classesMap: path.join(out, 'classes.json'), log: (l) => lines.push(l) });
    assert.equal(summary.splits.train!.size, 9000 - 7);
    assert.equal(summary.splits.validation!.size, 1000 - 1);
    assert.ok(lines.some((l) => /train split: left out 7 empty text\(s\), .*lines 1468, 1983/.test(l)), lines.join('\n'));
    fs.rmSync(out, { recursive: true, force: true });
  });

  test('CSV: a missing column, a short row, an unclosed quote, an unknown label name', async () => {
    let d = folder({ 'a.csv': 'sentence,label\nx,1\n' });
    await rejects(path.join(d, 'a.csv'), /a\.csv line 1: no column "text" in the header \(columns: sentence, label\); choose it with --text-column/);
    d = folder({ 'a.csv': 'text,label\nx,1\ny\n' });
    await rejects(path.join(d, 'a.csv'), /^train split, .*a\.csv line 3: 1 fields where the header has 2$/);
    d = folder({ 'a.csv': 'text,label\n"x,1\ny,2\n' });
    await rejects(path.join(d, 'a.csv'), /a\.csv: line 2: quoted field is never closed/);
    d = folder({ 'train.csv': 'text,label\nx,neg\ny,maybe\n', 'mapping.txt': '0\tneg\n1\tpos\n' });
    await rejects(d, /^train split, .*train\.csv line 3: unknown label "maybe"; expected one of neg, pos or an id 0\.\.1/);
  });

  test('JSONL / JSON: invalid JSON with line and column, a missing field, a label that is not a string or number', async () => {
    let d = folder({ 'a.jsonl': '{"text": "ok", "label": "x"}\n{"text": "a", "label": }\n' });
    await rejects(path.join(d, 'a.jsonl'), /a\.jsonl:2:24: invalid JSON: expected a value, found "}"/);
    d = folder({ 'a.json': '[\n{"text": "a", "label": 0},\n{"text": "b" "label": 1}\n]\n' });
    await rejects(path.join(d, 'a.json'), /a\.json:3:14: invalid JSON: expected ',' or '}', found "\\""/);
    d = folder({ 'a.jsonl': '{"text": "a"}\n' });
    await rejects(path.join(d, 'a.jsonl'), /^train split, .*a\.jsonl line 1: no "label" field \(fields: text\)/);
    d = folder({ 'a.json': '[\n{"text": "a", "label": "x"},\n{"text": "b", "label": [1]}\n]' });
    await rejects(path.join(d, 'a.json'), /^train split, .*a\.json line 3: missing label \(found \[1\]\)$/);
    d = folder({ 'a.json': '[\n{"text": 5, "label": "x"}\n]' });
    await rejects(path.join(d, 'a.json'), /^train split, .*a\.json line 2: text must be a string, found 5$/);
  });

  test('a path that is neither a data folder nor a known file type', async () => {
    await rejects(folder({ 'notes.md': 'x' }), /neither a TweetEval folder .* nor one with train\.csv/);
    const d = folder({ 'a.parquet': 'x' });
    await rejects(path.join(d, 'a.parquet'), /unsupported file type "\.parquet"/);
  });
});

describe('test data beside the clone', () => {
  test('sharedSkip: false when the folder is there; else the reason, or with CI set an error', () => {
    const there = tmp();
    assert.equal(sharedSkip('x', there, { CI: 'true' }), false);
    const missing = path.join(SHARED, 'data/no-such-folder');
    assert.equal(sharedSkip('the full thing', missing, {}), 'the full thing needs ../shared/data/no-such-folder (not beside this clone)');
    assert.equal(sharedSkip('the full thing', missing, { CI: 'false' }), 'the full thing needs ../shared/data/no-such-folder (not beside this clone)');
    assert.throws(() => sharedSkip('the full thing', missing, { CI: 'true' }), new RegExp(`^Error: CI is set but ${missing} is missing: the full thing needs`));
  });

  // The committed slice (test/fixtures/tweeteval, see its README): the first lines of each split, as the originals.
  const SLICE = [
    ['emotion', ['anger', 'joy', 'optimism', 'sadness'], { train: 200, val: 50, test: 100 }],
    ['irony', ['non_irony', 'irony'], { train: 300, val: 50, test: 50 }],
  ] as const;
  const sliceFile = (task: string, f: string): string => fs.readFileSync(path.join(TWEETEVAL_SLICE, task, f), 'utf-8');

  test('the committed TweetEval slice: its line counts, class names and labels', () => {
    for (const [task, names, sizes] of SLICE) {
      assert.deepEqual(sliceFile(task, 'mapping.txt').split('\n'), names.map((n, i) => `${i}\t${n}`));
      for (const [split, n] of Object.entries(sizes)) {
        const texts = sliceFile(task, `${split}_text.txt`).split('\n');
        const labels = sliceFile(task, `${split}_labels.txt`).split('\n');
        assert.equal(texts.length, n + 1, `${task} ${split}_text.txt: ${n} lines, each ending in a newline`);
        assert.equal(labels.length, n + 1, `${task} ${split}_labels.txt: ${n} lines, each ending in a newline`);
        assert.ok(texts.slice(0, n).every((t) => t.trim() !== ''), `${task} ${split}: no empty tweet`);
        assert.ok(labels.slice(0, n).every((l) => /^\d+$/.test(l) && Number(l) < names.length), `${task} ${split} labels`);
      }
    }
  });

  test('the committed TweetEval slice is the start of the original files', { skip: sharedSkip('comparing the slice with the full TweetEval files') }, () => {
    for (const [task, , sizes] of SLICE) {
      const full = (f: string): string => fs.readFileSync(path.join(TWEETEVAL, task, f), 'utf-8');
      assert.equal(sliceFile(task, 'mapping.txt'), full('mapping.txt'), `${task} mapping.txt`);
      for (const split of Object.keys(sizes)) {
        for (const f of [`${split}_text.txt`, `${split}_labels.txt`]) assert.ok(full(f).startsWith(sliceFile(task, f)), `${task} ${f} starts with the slice`);
      }
    }
  });
});

describe('reading processed splits back', () => {
  const MAP = { anger: 0, joy: 1, optimism: 2, sadness: 3 };

  test('readSplit gives back what load-dataset wrote', async () => {
    const local = tmp();
    await loadDataset({ from: path.join(TWEETEVAL_SLICE, 'emotion'), out: path.join(local, 'out'), classesMap: path.join(local, 'cm.json') });
    const map = readClassesMap(path.join(local, 'cm.json'));
    assert.deepEqual(map, MAP);
    assert.deepEqual(readSplit(path.join(local, 'out', 'validation.json'), map), reference('emotion').validation);
  });

  test('readSplit checks every record', () => {
    const d = folder({
      'badjson.json': '[\n{"text": "a", "label": 0},\n{"text": "b", "label": 1,}\n]',
      'notext.json': '[\n{"text": "a", "label": 0},\n{"label": 1}\n]',
      'nolabel.json': '[{"text": "a"}]',
      'empty.json': '[\n  {"text": "  ", "label": 0}\n]',
      'badlabel.json': '[\n{"text": "a", "label": 4}\n]',
      'obj.json': '{"text": "a", "label": 0}',
    });
    const f = (n: string): string => path.join(d, n);
    assert.throws(() => readSplit(f('badjson.json'), MAP), new RegExp(`${f('badjson.json')}:3:26: invalid JSON: expected a property name in double quotes, found "}"$`));
    assert.throws(() => readSplit(f('notext.json'), MAP), new RegExp(`${f('notext.json')}: record 2 \\(line 3\\): missing "text"$`));
    assert.throws(() => readSplit(f('nolabel.json'), MAP), /nolabel\.json: record 1 \(line 1\): missing "label"$/);
    assert.throws(() => readSplit(f('empty.json'), MAP), /empty\.json: record 1 \(line 2\): "text" is empty$/);
    assert.throws(() => readSplit(f('badlabel.json'), MAP), /badlabel\.json: record 1 \(line 2\): "label" 4 is not a class id of the classes map \(0\.\.3\)$/);
    assert.throws(() => readSplit(f('obj.json'), MAP), /obj\.json: expected a JSON array/);
    assert.throws(() => readSplit(f('missing.json'), MAP), /missing\.json: cannot read the split \(no such file\)/);
  });

  test('readClassesMap wants unique ids 0..n-1', () => {
    const d = folder({
      'gap.json': '{"a": 0, "b": 2}',
      'dup.json': '{"a": 0, "b": 0}',
      'frac.json': '{"a": 0, "b": 1.5}',
      'arr.json': '["a", "b"]',
    });
    assert.throws(() => readClassesMap(path.join(d, 'gap.json')), /gap\.json: ids must be 0\.\.1 without gaps, but no class has id 1/);
    assert.throws(() => readClassesMap(path.join(d, 'dup.json')), /dup\.json: classes "a" and "b" both have id 0/);
    assert.throws(() => readClassesMap(path.join(d, 'frac.json')), /frac\.json: class "b" has id 1\.5, expected an integer 0\.\.1/);
    assert.throws(() => readClassesMap(path.join(d, 'arr.json')), /arr\.json: a classes map must be a JSON object/);
  });
});

describe('dataset cards and data_files', () => {
  test('data_files globs match within a folder; ** crosses folders', () => {
    const re = globToRegExp('emotion/train-*');
    assert.ok(re.test('emotion/train-00000-of-00001.parquet'));
    assert.ok(!re.test('emotion/test-00000-of-00001.parquet'));
    assert.ok(!re.test('emotion/train-x/y.parquet'));
    assert.ok(!re.test('other/emotion/train-0.parquet'));
    assert.ok(globToRegExp('data/**/*.parquet').test('data/a/b/c.parquet'));
    assert.ok(globToRegExp('data/**/*.parquet').test('data/c.parquet'));
    assert.ok(globToRegExp('train-0000[0-1].csv').test('train-00001.csv'));
    assert.ok(!globToRegExp('a.b').test('axb'));
  });

  test('configs[].data_files in its forms, and class names from dataset_info', () => {
    const card = parseYaml(
      [
        'dataset_info:',
        '- config_name: a',
        '  features:',
        '  - name: text',
        '    dtype: string',
        '  - name: label',
        '    dtype:',
        '      class_label:',
        '        names:',
        "          '0': neg",
        "          '1': pos",
        '- config_name: b',
        '  features:',
        '  - name: label',
        '    dtype:',
        '      class_label:',
        '        names: [x, "y z"]',
        'configs:',
        '- config_name: a',
        '  data_files:',
        '  - split: train',
        '    path:',
        '    - a/train-*',
        '    - extra/train.parquet',
        '  - split: test',
        '    path: a/test-*',
        '- config_name: b',
        '  data_dir: bdir',
        '  data_files: "*.parquet"',
        '- config_name: c',
        '  data_files:',
        '    train: c/tr.parquet',
        '    validation: [c/va.parquet]',
      ].join('\n'),
    );
    assert.deepEqual(configDataFiles(card, 'a', 'card'), { train: ['a/train-*', 'extra/train.parquet'], test: ['a/test-*'] });
    assert.deepEqual(configDataFiles(card, 'b', 'card'), { train: ['bdir/*.parquet'] });
    assert.deepEqual(configDataFiles(card, 'c', 'card'), { train: ['c/tr.parquet'], validation: ['c/va.parquet'] });
    assert.throws(() => configDataFiles(card, 'd', 'card'), /no subset 'd' \(subsets: a, b, c\)/);
    assert.deepEqual(cardClassNames(card, 'a', 'label'), ['neg', 'pos']);
    assert.deepEqual(cardClassNames(card, 'b', 'label'), ['x', 'y z']);
    assert.equal(cardClassNames(card, 'a', 'text'), undefined);
    assert.equal(cardClassNames(card, 'c', 'label'), undefined);
  });

  test('the YAML reader: quoting, comments, block scalars, flow collections, numbers', () => {
    const v = parseYaml(
      [
        'pretty_name: TweetEval  # a comment',
        "quoted: 'it''s # not a comment'",
        'dq: "tab\\there \\u00e9"',
        'num: 45000',
        'neg: -1.5',
        'yes: true',
        'nothing: ~',
        'text: |',
        '  line 1',
        '    indented',
        'folded: >-',
        '  a',
        '  b',
        '',
        '  c',
        'flow: {a: [1, two], b: "x, y"}',
        'list:',
        '  - - inner',
        '  - k: v',
        '    k2: v2',
        'plain: multi',
        '  line',
      ].join('\n'),
    );
    assert.deepEqual(v, {
      pretty_name: 'TweetEval',
      quoted: "it's # not a comment",
      dq: 'tab\there é',
      num: 45000,
      neg: -1.5,
      yes: true,
      nothing: null,
      text: 'line 1\n  indented\n',
      folded: 'a b\nc',
      flow: { a: [1, 'two'], b: 'x, y' },
      list: [['inner'], { k: 'v', k2: 'v2' }],
      plain: 'multi line',
    });
  });

  // The irony slice with its card rewritten in YAML the hand-written reader before the `yaml` package could not read.
  const RICH_CARD = [
    '---',
    'pretty_name: TweetEval irony, re-described',
    'description: |',
    '  Tweets labelled ironic or not.',
    '  # kept: inside a block scalar this is text',
    'class_names: &names {0: plain, 1: ironic}',
    'files: &files',
    '  data_files:',
    '  - {split: train, path: "irony/train-*"}',
    "  - {split: validation, path: 'irony/validation-*'}",
    '  - split: test',
    '    path: >-',
    '      irony/test-*',
    'dataset_info:',
    '- config_name: irony',
    '  features:',
    '  - {name: text, dtype: string}',
    '  - {name: label, dtype: {class_label: {names: *names}}}',
    'configs:',
    '- config_name: irony',
    '  <<: *files',
    '---',
    '',
    '# A card',
  ].join('\n');
  const BROKEN_CARD = [
    '---',
    'pretty_name: broken',
    'configs:',
    '- config_name: irony',
    '  data_files:',
    '  - split: train',
    '    path: "irony/train-*',
    '---',
  ].join('\n');

  test('a card with flow mappings, anchors, aliases, merge keys and block scalars is read as PyYAML reads it', async () => {
    const card = readCardHeader(RICH_CARD, 'README.md') as Record<string, unknown>;
    assert.equal(card.description, 'Tweets labelled ironic or not.\n# kept: inside a block scalar this is text\n');
    assert.deepEqual(card.class_names, { 0: 'plain', 1: 'ironic' });
    assert.deepEqual(configDataFiles(card as never, 'irony', 'card'), {
      train: ['irony/train-*'],
      validation: ['irony/validation-*'],
      test: ['irony/test-*'],
    });
    assert.deepEqual(cardClassNames(card as never, 'irony', 'label'), ['plain', 'ironic']);

    const repo = tweetEvalRepo(TWEETEVAL_SLICE, ['irony'], 'someone/rich-card');
    repo.files = repo.files.map((f) => (f.path === 'README.md' ? { ...f, content: RICH_CARD } : f));
    const richHub = await startFakeHub({ datasets: [repo] });
    try {
      const work = tmp();
      const summary = await loadDataset(hubOpts(work, { endpoint: richHub.url, dataset: 'someone/rich-card', subset: 'irony' }));
      assert.deepEqual(summary.classNames, ['plain', 'ironic']);
      assert.deepEqual(summary.splits.validation, { size: 50, classCounts: { plain: 30, ironic: 20 } });
    } finally {
      await richHub.close();
    }
  });

  test('a malformed card: one line naming README.md and the line of the file (not of the YAML block)', async () => {
    const where = /^hf:\/\/datasets\/someone\/broken-card\/README\.md: line 7, column \d+: Missing closing "quote$/;
    for (const text of [BROKEN_CARD, BROKEN_CARD.replace(/\n/g, '\r\n'), '\uFEFF' + BROKEN_CARD]) {
      assert.throws(() => readCardHeader(text, 'hf://datasets/someone/broken-card/README.md'), (e: unknown) => e instanceof FormatError && where.test((e as Error).message));
    }
    assert.throws(() => readCardHeader('---\na: 1\nb: *nowhere\n---\n', 'README.md'), /^FormatError: README\.md: line 3, column 4: no anchor &nowhere before the alias \*nowhere$/);
    assert.throws(() => readCardHeader('# no header\n', 'README.md'), /README\.md: no YAML header/);

    const repo = tweetEvalRepo(TWEETEVAL_SLICE, ['irony'], 'someone/broken-card');
    repo.files = repo.files.map((f) => (f.path === 'README.md' ? { ...f, content: BROKEN_CARD } : f));
    const brokenHub = await startFakeHub({ datasets: [repo] });
    try {
      await assert.rejects(
        loadDataset(hubOpts(tmp(), { endpoint: brokenHub.url, dataset: 'someone/broken-card', subset: 'irony' })),
        (e: unknown) => e instanceof FormatError && where.test((e as Error).message),
      );
    } finally {
      await brokenHub.close();
    }
  });

  test('the CSV reader keeps line numbers of rows that span lines', () => {
    const rows = parseDelimited('a,b\n"x\ny",1\n\nz,"2"\n', ',', 'f.csv');
    assert.deepEqual(rows, [
      { fields: ['a', 'b'], line: 1 },
      { fields: ['x\ny', '1'], line: 2 },
      { fields: ['z', '2'], line: 5 },
    ]);
  });
});
