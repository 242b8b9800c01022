import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { addSchemaOptions, resolveParams } from '../src/cli/options.js';
import { COMMAND_PARAMS, optionInfo, ParamsSchema, parseParams, type CommandName } from '../src/params.js';
import { adafactorScaleParameter, trainOptions } from '../src/train/types.js';
import { UsageError } from '../src/errors.js';
import { REPO_ROOT } from './helpers/fixtures.js';

function parse(command: CommandName, args: string[]) {
  const cmd = addSchemaOptions(new Command(command), command).exitOverride().configureOutput({ writeErr: () => {} });
  cmd.parse(args, { from: 'user' });
  return resolveParams(cmd, command);
}

test('defaults come from the schema', () => {
  const { params, given } = parse('train', []);
  assert.equal(params.epochs, 10);
  assert.equal(params.batchSize, 16);
  assert.equal(params.evalBatchSize, 64);
  assert.equal(params.useAdafactor, false);
  assert.equal(params.learningRate, undefined);
  assert.equal(params.maxSourceLength, 512);
  assert.equal(params.prefixText, 'tweet_eval emotion sentence: ');
  assert.equal(params.model, 't5-small');
  assert.equal(params.seed, 42);
  assert.equal(given.size, 0);
});

test('booleans are real booleans, with --no- forms', () => {
  assert.equal(parse('train', ['--use-adafactor']).params.useAdafactor, true);
  assert.equal(parse('train', ['--use-adafactor', '--no-use-adafactor']).params.useAdafactor, false);
  assert.equal(parse('train', ['--no-use-weighted-random-sampler']).params.useWeightedRandomSampler, false);
  // A value after a boolean flag is not swallowed as "true"/"false": it is an excess argument.
  assert.throws(() => parse('train', ['--use-adafactor=False']));
});

test('numbers are validated with their range', () => {
  assert.equal(parse('train', ['--batch-size', '8']).params.batchSize, 8);
  assert.equal(parse('train', ['--learning-rate', '3e-4']).params.learningRate, 3e-4);
  assert.throws(() => parse('train', ['--batch-size', '0']), (e: Error) => e instanceof UsageError && /--batch-size: expected a number ≥ 1 \(got "0"\)/.test(e.message));
  assert.throws(() => parse('train', ['--epochs', 'abc']), (e: Error) => e instanceof UsageError && /--epochs: expected a number/.test(e.message));
  assert.throws(() => parse('train', ['--epochs', '1.5']), (e: Error) => e instanceof UsageError && /--epochs: expected an integer/.test(e.message));
  assert.throws(() => parse('train', ['--learning-rate', '-1']), /--learning-rate/);
  assert.throws(() => parse('train', ['--backend', 'gpu']), /gpu/);
});

test('unknown flags are refused', () => {
  assert.throws(() => parse('train', ['--batchsize', '3']), /unknown option/);
  assert.throws(() => parse('test', ['--epochs', '3']), /unknown option/);
});

test('--config holds the same names; flags win over it', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-params-'));
  try {
    const file = path.join(dir, 'params.json');
    fs.writeFileSync(file, JSON.stringify({ epochs: 3, 'batch-size': 4, use_adafactor: true, prefixText: '' }));
    const { params, given } = parse('train', ['--config', file, '--epochs', '5']);
    assert.equal(params.epochs, 5);
    assert.equal(params.batchSize, 4);
    assert.equal(params.useAdafactor, true);
    assert.equal(params.prefixText, '');
    assert.ok(given.has('prefixText') && given.has('batchSize'));
    fs.writeFileSync(file, JSON.stringify({ epochs: 0 }));
    assert.throws(() => parse('train', ['--config', file]), /--epochs: expected a number ≥ 1/);
    fs.writeFileSync(file, JSON.stringify({ epoch: 2 }));
    assert.throws(() => parse('train', ['--config', file]), /"epoch" is not a known option/);
    fs.writeFileSync(file, '{ "epochs": ');
    assert.throws(() => parse('train', ['--config', file]), /not valid JSON/);
    assert.throws(() => parse('train', ['--config', path.join(dir, 'missing.json')]), /cannot read the file \(ENOENT\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('every option of every command is in the schema with help text', () => {
  for (const [command, names] of Object.entries(COMMAND_PARAMS)) {
    for (const name of names) {
      assert.ok(name in ParamsSchema.shape, `${command}: ${name}`);
      assert.ok(optionInfo(name).help.length > 5, `${name} has no help`);
    }
  }
});

test('the CLI answers bad values with one line and exit code 2', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-cli-'));
  try {
    const run = (...args: string[]) => spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/t5cls.js'), ...args], { cwd: dir, encoding: 'utf-8' });
    for (const args of [['train', '--batch-size', '0'], ['train', '--epochs', 'abc'], ['train', '--bogus'], ['train', '--data-dir', 'nowhere']]) {
      const r = run(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')} printed: ${r.stderr}`);
    }
    const help = run('train', '--help');
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--use-adafactor/);
    assert.match(help.stdout, /--batch-size <n>.*\(default: 16\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('--resume works alone or with a run', () => {
  assert.equal(parse('train', ['--resume']).params.resume, true);
  assert.equal(parse('train', ['--resume', 'runs/t5-small_Nov25_10-00-00']).params.resume, 'runs/t5-small_Nov25_10-00-00');
  assert.equal(parse('train', []).params.resume, undefined);
});

test('a flag whose schema also takes a list may be repeated; the others may not', () => {
  const repeatable = (Object.keys(ParamsSchema.shape) as (keyof typeof ParamsSchema.shape)[]).filter((n) => optionInfo(n).repeatable);
  assert.deepEqual(repeatable, ['from']);
});

test('--adafactor-scale-parameter defaults to on from a random start and off from a checkpoint; given, it wins', () => {
  const scaled = (raw: Record<string, unknown>) => trainOptions(parseParams('train', raw)).adafactorScaleParameter;
  assert.equal(scaled({}), false);
  assert.equal(scaled({ init: 'random' }), true);
  assert.equal(scaled({ init: 'random', adafactorScaleParameter: false }), false);
  assert.equal(scaled({ adafactorScaleParameter: true }), true);
  assert.equal(adafactorScaleParameter(parseParams('pretrain', { init: 'random' })), true);
  assert.equal(adafactorScaleParameter(parseParams('pretrain', {})), false);
});
