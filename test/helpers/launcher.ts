/**
 * The launcher tests' helpers: the CLI run from source (no build needed), a work folder with TweetEval emotion's
 * slice, a tiny base model, and the Python side (the interpreter, code with the job's modules, a job's --check).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PYTHON_SOURCE } from '../../src/launcher/job_folder.js';
import { REPO_ROOT, TOKENIZER_DIR, TWEETEVAL_SLICE, tempDirs } from './fixtures.js';

export const launcherTemp = tempDirs('t5cls-launcher-');

const MAIN = pathToFileURL(path.join(REPO_ROOT, 'src/cli/main.ts')).href;
const TSX = pathToFileURL(path.join(REPO_ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

/** The CLI from source (no build needed), in `cwd`. */
export function cliFromSource(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): { code: number; out: string; stdout: string } {
  const code = `import(${JSON.stringify(MAIN)}).then(async (m) => { process.exitCode = await m.main(['node', 't5cls', ...process.argv.slice(1)]); })`;
  const r = spawnSync(process.execPath, ['--import', TSX, '-e', code, ...args], {
    cwd,
    encoding: 'utf-8',
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { code: r.status ?? 1, out: r.stdout + r.stderr, stdout: r.stdout };
}

/** A work folder with TweetEval emotion's slice as load-dataset writes it. */
export function emotionWork(): string {
  const work = launcherTemp.make();
  const r = cliFromSource(['load-dataset', '--from', path.join(TWEETEVAL_SLICE, 'emotion')], work);
  assert.equal(r.code, 0, r.out);
  return work;
}

/** The interpreter the Python tests use: T5CLS_PYTHON, else python3. */
export const PYTHON = process.env.T5CLS_PYTHON || 'python3';

/** false when PYTHON imports `modules`; else why the tests that need them are skipped. */
export function pythonSkip(modules: string[]): string | false {
  const r = spawnSync(PYTHON, ['-c', `import ${modules.join(', ')}`], { encoding: 'utf-8', timeout: 120_000 });
  if (r.status === 0) return false;
  const last = (r.stderr || String(r.error ?? '')).trim().split('\n').pop();
  return `needs a Python with ${modules.join(', ')} (T5CLS_PYTHON, else python3): ${PYTHON}: ${last}`;
}

/** Runs Python code with the job's modules importable; returns its stdout parsed as JSON. */
export function runPython(code: string, args: string[] = []): any {
  const r = spawnSync(PYTHON, ['-c', code, ...args], {
    encoding: 'utf-8',
    timeout: 300_000,
    env: { ...process.env, PYTHONPATH: PYTHON_SOURCE, HF_HUB_OFFLINE: '1', PYTHONDONTWRITEBYTECODE: '1' },
    maxBuffer: 1 << 28,
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** `train.py job.json --check OUT.json` of a job folder (one process): the values it wrote. */
export function runCheck(jobDir: string, out: string): any {
  const r = spawnSync(PYTHON, [path.join(jobDir, 't5cls_accelerate/train.py'), path.join(jobDir, 'job.json'), '--check', out], {
    encoding: 'utf-8',
    timeout: 300_000,
    env: { ...process.env, HF_HUB_OFFLINE: '1', PYTHONDONTWRITEBYTECODE: '1' },
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(fs.readFileSync(out, 'utf-8'));
}

/** A tiny T5's config file in `dir` (dropout off unless `extra` sets it), for --model-config. */
export function tinyConfigFile(dir: string, extra: Record<string, unknown> = {}): string {
  const file = path.join(dir, 'tiny-config.json');
  const config = { d_model: 32, d_kv: 8, d_ff: 64, num_layers: 2, num_decoder_layers: 2, num_heads: 4, dropout_rate: 0, ...extra };
  fs.writeFileSync(file, JSON.stringify(config));
  return file;
}

/**
 * A pretrained-layout base model for LoRA jobs: the random start a dry-run job writes, moved to `<work>/base`
 * (config.json and model.safetensors; the tokenizer is TOKENIZER_DIR).
 */
export function tinyBase(work: string, extra: Record<string, unknown> = {}): string {
  const args = ['train', '--launcher', 'accelerate', '--dry-run', '--init', 'random', '--model-config', tinyConfigFile(work, extra)];
  const r = cliFromSource([...args, '--tokenizer', TOKENIZER_DIR, '--max-train-examples', '4', '--quiet'], work);
  assert.equal(r.code, 0, r.out);
  const jobs = path.join(work, 'jobs');
  const job = path.join(jobs, fs.readdirSync(jobs)[0]!);
  const base = path.join(work, 'base');
  fs.renameSync(path.join(job, 'model'), base);
  fs.rmSync(jobs, { recursive: true });
  fs.rmSync(path.join(work, 'runs'), { recursive: true, force: true });
  return base;
}

/** The first job folder `train --launcher accelerate` wrote under `work`. */
export function firstJobDir(work: string): string {
  return path.join(work, 'jobs', fs.readdirSync(path.join(work, 'jobs'))[0]!);
}
