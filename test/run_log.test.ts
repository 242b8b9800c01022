import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FormatError } from '../src/errors.js';
import { RunLog } from '../src/train/run_log.js';
import { parseRunLog, readRunLog } from '../src/run_log_format.js';

function tmpFile(): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-runlog-'));
  return { dir, file: path.join(dir, 'logs', 'train.log') };
}

function clock(): () => Date {
  let t = Date.UTC(2024, 4, 1, 12, 0, 0);
  return () => new Date((t += 60_000));
}

test('writes readable text, each call appended at once', () => {
  const { dir, file } = tmpFile();
  try {
    const log = new RunLog(file, clock());
    log.options({ model: 't5-small', learning_rate: 3e-4, batch_size: 8, fp16: false, labels: ['neg', 'pos'] });
    assert.equal(
      fs.readFileSync(file, 'utf-8'),
      '[options] 2024-05-01T12:01:00.000Z\n' +
        'model: t5-small\n' +
        'learning_rate: 0.0003\n' +
        'batch_size: 8\n' +
        'fp16: false\n' +
        'labels: ["neg","pos"]\n\n',
    );
    // The named fields come in a fixed order whatever the object's order; extras follow.
    log.epoch(1, { dev_accuracy: 0.7, extra_metric: 2, train_loss: 0.4231, learning_rate: 0.0003 });
    log.line('saved checkpoint to out/epoch-1');
    assert.equal(
      fs.readFileSync(file, 'utf-8').split('\n\n').slice(1).join('\n\n'),
      '[epoch 1] 2024-05-01T12:02:00.000Z\n' +
        'learning_rate: 0.0003\n' +
        'train_loss: 0.4231\n' +
        'dev_accuracy: 0.7\n' +
        'extra_metric: 2\n\n' +
        'saved checkpoint to out/epoch-1\n',
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('round trip: options, epochs and free lines come back exactly', () => {
  const { dir, file } = tmpFile();
  try {
    const log = new RunLog(file, clock());
    log.options({
      model: 't5-small',
      learning_rate: 3e-4,
      seed: 42,
      unset: undefined,
      empty: '',
      spaced: '  padded ',
      multiline: 'a\nb',
      quoted: '"already quoted"',
      colon: 'key: value',
      unicode: 'émotion 😀',
    });
    log.line('training on 3257 examples');
    const e1 = {
      learning_rate: 0.0003,
      train_loss: 0.42311234567891234,
      train_accuracy: 0.8123,
      dev_accuracy: 2 / 3,
      dev_macro_f1: 0.6834,
      dev_micro_f1: 2 / 3,
      dev_weighted_f1: 1e-7,
    };
    log.epoch(1, e1);
    log.epoch(2, { learning_rate: 0.0002, train_loss: NaN, dev_accuracy: 0.71, dev_macro_f1: undefined });
    log.line('resuming from epoch 1\nsecond line');
    log.epoch(2, { learning_rate: 0.0002, train_loss: 0.39, dev_accuracy: 0.72 }); // resumed run logs epoch 2 again
    log.options({ learning_rate: 1e-3 });

    const parsed = readRunLog(file);
    assert.deepEqual(parsed.options, {
      model: 't5-small',
      learning_rate: '0.001', // the later options block wins
      seed: '42',
      unset: '',
      empty: '',
      spaced: '  padded ',
      multiline: 'a\nb',
      quoted: '"already quoted"',
      colon: 'key: value',
      unicode: 'émotion 😀',
    });
    assert.deepEqual(parsed.epochs, [
      { epoch: 1, time: '2024-05-01T12:02:00.000Z', metrics: e1 },
      { epoch: 2, time: '2024-05-01T12:04:00.000Z', metrics: { learning_rate: 0.0002, train_loss: 0.39, dev_accuracy: 0.72 } },
    ]);
    assert.deepEqual(parsed.lines, ['training on 3257 examples', 'resuming from epoch 1', 'second line']);

    // The first epoch-2 block (before the resume) had a NaN loss; it reads back as NaN.
    const first2 = parseRunLog(fs.readFileSync(file, 'utf-8').split('resuming')[0]!).epochs[1]!;
    assert.ok(Number.isNaN(first2.metrics.train_loss));
    assert.equal(first2.metrics.dev_accuracy, 0.71);
    assert.ok(!('dev_macro_f1' in first2.metrics));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('parses hand-written text, CRLF included', () => {
  const text = [
    'note before',
    '[epoch 3]',
    'dev_accuracy: 0.5',
    'train_loss: 1e-3',
    '',
    '[options]',
    'x: 1',
    '',
  ].join('\r\n');
  assert.deepEqual(parseRunLog(text), {
    options: { x: '1' },
    epochs: [{ epoch: 3, metrics: { dev_accuracy: 0.5, train_loss: 0.001 } }],
    lines: ['note before'],
  });
});

test('malformed logs fail with the line number', () => {
  assert.throws(
    () => parseRunLog('[epoch 1]\ndev_accuracy: high\n', 'out/train.log'),
    (e: unknown) => e instanceof FormatError && e.message === 'out/train.log:2: dev_accuracy must be a number, got "high"',
  );
  assert.throws(() => parseRunLog('[options]\nno separator here\n'), /run log:2: expected "name: value"/);
  assert.throws(() => parseRunLog('[options]\nx: "unterminated\n'), /run log:2: a value starting with a quote/);
  assert.throws(() => parseRunLog('[epoch 1]\nx:\n'), /x must be a number/);
});

test('rejects what could not be read back', () => {
  const { dir, file } = tmpFile();
  try {
    const log = new RunLog(file);
    assert.throws(() => log.options({ 'a:b': 1 }), RangeError);
    assert.throws(() => log.options({ ' lead': 1 }), RangeError);
    assert.throws(() => log.options({ '[x': 1 }), RangeError);
    assert.throws(() => log.epoch(1.5, {}), RangeError);
    assert.throws(() => log.epoch(1, { dev_accuracy: '0.5' as unknown as number }), TypeError);
    assert.throws(() => log.line('[epoch 4]'), RangeError);
    assert.equal(fs.existsSync(file), false); // nothing half-written
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
