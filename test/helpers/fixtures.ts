import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The repository's own reference data (see test/fixtures/README.md): all a clone needs to run its tests. */
export const FIXTURES = path.join(REPO_ROOT, 'test/fixtures');
/** The genuine T5 tokenizer (t5-small's), committed. */
export const TOKENIZER_DIR = path.join(FIXTURES, 't5-small-tokenizer');
/** A committed slice of TweetEval: the first lines of each split of emotion and irony, as the original files. */
export const TWEETEVAL_SLICE = path.join(FIXTURES, 'tweeteval');
/** Read-only material beside the clone, in CI and the project's workplace; a bare clone has none. */
export const SHARED = path.resolve(REPO_ROOT, '../shared');
/** TweetEval's original files in full, for the few tests that need them: guard those with `sharedSkip`. */
export const TWEETEVAL = path.join(SHARED, 'data/tweeteval');
/** The model fixtures, each also as transformers 5.x saves it (`-hf5`: the same weights, so every reference holds). */
export const MODEL_FIXTURES = ['t5-tiny', 't5-tiny-v11', 't5-tiny-long', 't5-tiny-hf5', 't5-tiny-v11-hf5', 't5-tiny-long-hf5'] as const;

export function fixtureDir(name: string): string {
  return path.join(FIXTURES, name);
}

/** CI set to anything but '', '0' or 'false'. */
export function inCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env.CI?.trim().toLowerCase();
  return ci !== undefined && ci !== '' && ci !== '0' && ci !== 'false';
}

/**
 * The node:test `skip` value for a test that needs `dir` under ../shared (default: the full TweetEval files), e.g.
 * `test('…', { skip: sharedSkip('the full hate train split') }, …)`: false when it is there, else the reason, so a
 * bare clone reports the test as skipped and why. With CI set a missing folder throws instead (the test file
 * fails): CI always has ../shared beside the clone, and a skip there would hide a broken layout.
 */
export function sharedSkip(what: string, dir: string = TWEETEVAL, env: NodeJS.ProcessEnv = process.env): false | string {
  if (fs.existsSync(dir)) return false;
  const reason = `${what} needs ../shared/${path.relative(SHARED, dir)} (not beside this clone)`;
  if (inCI(env)) throw new Error(`CI is set but ${dir} is missing: ${reason}`);
  return reason;
}

export function readJson<T = any>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf-8')) as T;
}

/** Largest absolute difference between two equally long flat arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

export function flatten(x: unknown): number[] {
  return Array.isArray(x) ? x.flatMap(flatten) : [x as number];
}

/** Temporary folders named `<prefix>XXXXXX` under the OS temp folder, all removed by `removeAll`. */
export function tempDirs(prefix: string): { make(): string; removeAll(): void } {
  const made: string[] = [];
  return {
    make() {
      const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
      made.push(d);
      return d;
    },
    removeAll() {
      for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
    },
  };
}
