import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { addSchemaOptions, resolveParams } from '../src/cli/options.js';
import { COMMAND_SCHEMAS, parseParams, type CommandName } from '../src/params/commands.js';
import { commandOptions } from '../src/params/option_info.js';
import { adafactorScaleParameter } from '../src/train/types.js';
import { trainOptions } from '../src/cli/train_options.js';
import { UsageError } from '../src/errors.js';
import { REPO_ROOT } from './helpers/fixtures.js';

function parse(command: CommandName, args: string[]) {
  const cmd = addSchemaOptions(new Command(command), command)
    .exitOverride()
    .configureOutput({ writeErr: () => {} });
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
  assert.throws(
    () => parse('train', ['--batch-size', '0']),
    (e: Error) => e instanceof UsageError && /--batch-size: expected a number ≥ 1 \(got "0"\)/.test(e.message),
  );
  assert.throws(
    () => parse('train', ['--epochs', 'abc']),
    (e: Error) => e instanceof UsageError && /--epochs: expected a number/.test(e.message),
  );
  assert.throws(
    () => parse('train', ['--epochs', '1.5']),
    (e: Error) => e instanceof UsageError && /--epochs: expected an integer/.test(e.message),
  );
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

const COMMANDS = Object.keys(COMMAND_SCHEMAS) as CommandName[];

test('every option of every command has help text', () => {
  for (const command of COMMANDS) {
    for (const info of commandOptions(command)) assert.ok(info.help.length > 5, `${command}: ${info.name} has no help`);
  }
});

test('the CLI answers bad values with one line and exit code 2', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-cli-'));
  try {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/t5cls.js'), ...args], { cwd: dir, encoding: 'utf-8' });
    for (const args of [
      ['train', '--batch-size', '0'],
      ['train', '--epochs', 'abc'],
      ['train', '--bogus'],
      ['train', '--data-dir', 'nowhere'],
    ]) {
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
  const repeatable = new Set(
    COMMANDS.flatMap((c) =>
      commandOptions(c)
        .filter((o) => o.repeatable)
        .map((o) => o.name),
    ),
  );
  assert.deepEqual([...repeatable], ['from']);
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

test('a --config key of another command is refused naming the command; one of no command, as unknown', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-params-'));
  try {
    const file = path.join(dir, 'params.json');
    const refused = (command: CommandName, config: object) => {
      fs.writeFileSync(file, JSON.stringify(config));
      return () => parse(command, ['--config', file]);
    };
    assert.throws(refused('train', { json: true }), /^UsageError: --config \S+params\.json: "json" is not an option of train$/);
    assert.throws(refused('test', { 'batch-size': 4 }), /"batch-size" is not an option of test$/);
    assert.throws(refused('doctor', { quiet: true }), /"quiet" is not an option of doctor$/);
    assert.throws(refused('load-dataset', { model: 't5-base' }), /"model" is not an option of load-dataset$/);
    // predict's texts are its arguments, not an option: no command takes them from --config.
    assert.throws(refused('predict', { texts: ['hi'] }), /"texts" is not a known option$/);
    assert.throws(refused('report', { weights_name: 'x' }), /"weights_name" is not an option of report$/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("each command's params hold its own options and no other", () => {
  for (const command of COMMANDS) {
    const names = commandOptions(command).map((o) => o.name);
    const params = parse(command, []).params as Record<string, unknown>;
    const unexpected = Object.keys(params).filter((k) => !names.includes(k));
    assert.deepEqual(unexpected, [], command);
  }
  assert.deepEqual(Object.keys(parse('doctor', []).params).sort(), ['backend', 'device', 'json', 'verbose']);
});

test('a command may give an option a default of its own: pretrain runs Adafactor for one epoch, predict ranks', () => {
  const pretrain = parse('pretrain', []);
  assert.equal(pretrain.params.useAdafactor, true);
  assert.equal(pretrain.params.epochs, 1);
  assert.equal(pretrain.given.size, 0);
  assert.equal(parse('pretrain', ['--no-use-adafactor', '--epochs', '3']).params.useAdafactor, false);
  assert.equal(parse('train', []).params.useAdafactor, false);
  assert.equal(parse('train', []).params.epochs, 10);
  assert.equal(parse('predict', []).params.decode, 'rank');
  assert.equal(parse('test', []).params.decode, 'generate');
  const help = (command: CommandName) => addSchemaOptions(new Command(command), command).helpInformation().replace(/\s+/g, ' ');
  assert.match(help('pretrain'), /--use-adafactor train with Adafactor instead of AdamW \(default: true\)/);
  assert.match(help('train'), /--use-adafactor train with Adafactor instead of AdamW \(default: false\)/);
  assert.match(
    help('predict'),
    /--decode <value> generate = greedy decoding; rank = most likely class name \(never invalid\) \(default: "rank"\)/,
  );
});

test('an option is written once: every command that takes it has the same flag, kind and help', () => {
  // --model names the model to train (default t5-small), or an adapter's base (no default: its config names one).
  const OWN_DEFAULTS = new Set([
    'pretrain useAdafactor',
    'pretrain epochs',
    'predict decode',
    'test model',
    'predict model',
    'export model',
    'merge model',
  ]);
  const first = new Map<string, ReturnType<typeof commandOptions>[number]>();
  for (const command of COMMANDS) {
    for (const info of commandOptions(command)) {
      const seen = first.get(info.name);
      if (!seen) {
        first.set(info.name, info);
        continue;
      }
      const { defaultValue, ...rest } = info;
      const { defaultValue: firstDefault, ...firstRest } = seen;
      assert.deepEqual(rest, firstRest, `${command} ${info.name}`);
      if (!OWN_DEFAULTS.has(`${command} ${info.name}`)) assert.deepEqual(defaultValue, firstDefault, `${command} ${info.name}`);
    }
  }
});

test('wrong values are told in the same words as ever', () => {
  const message = (command: CommandName, args: string[]) => {
    try {
      parse(command, args);
    } catch (e) {
      return (e as Error).message;
    }
    return 'accepted';
  };
  assert.equal(message('train', ['--learning-rate', '1e999']), '--learning-rate: Number must be finite (got "1e999")');
  assert.equal(message('train', ['--epochs', '1e999']), '--epochs: expected an integer (got "1e999")');
  assert.equal(message('train', ['--model', '']), '--model: expected a non-empty value (got "")');
  assert.equal(message('pretrain', ['--noise-density', '1']), '--noise-density: expected a number ≤ 0.99 (got "1")');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-params-'));
  try {
    const file = path.join(dir, 'params.json');
    const withConfig = (command: CommandName, config: object) => {
      fs.writeFileSync(file, JSON.stringify(config));
      return message(command, ['--config', file]);
    };
    assert.equal(withConfig('train', { backend: 'gpu' }), '--backend: expected one of auto, tensorflow, wasm, cpu (got "gpu")');
    assert.equal(withConfig('train', { device: 1 }), "--device: expected 'auto' | 'cuda' | 'cpu' (got 1)");
    assert.equal(withConfig('train', { useAdafactor: 'yes' }), '--use-adafactor: expected boolean (got "yes")');
    assert.equal(withConfig('train', { model: 5 }), '--model: expected string (got 5)');
    assert.equal(withConfig('train', { resume: false }), '--resume: Invalid input (got false)');
    assert.equal(withConfig('pretrain', { from: [] }), '--from: Array must contain at least 1 element(s) (got [])');
    assert.equal(withConfig('train', { seed: '12345678901234567890' }), 'accepted');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the library's training options are mapped from train's params, field by field", () => {
  const p = parseParams('train', { learningRate: 3e-4, useAdafactorSchedule: true, maxSteps: 7, earlyStoppingPatience: 2, seed: 5 });
  assert.deepEqual(trainOptions(p), {
    epochs: 10,
    batchSize: 16,
    evalBatchSize: 64,
    learningRate: 3e-4,
    lrWarmupSteps: 0,
    weightDecay: 0,
    useAdafactor: true,
    useAdafactorSchedule: true,
    adafactorScaleParameter: false,
    useWeightedRandomSampler: false,
    gradientAccumulationSteps: 1,
    earlyStoppingPatience: 2,
    maxSteps: 7,
    saveEverySteps: undefined,
    seed: 5,
    prefixText: 'tweet_eval emotion sentence: ',
    maxSourceLength: 512,
    quiet: false,
  });
});
