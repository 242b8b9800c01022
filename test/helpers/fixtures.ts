import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SHARED = path.resolve(REPO_ROOT, '../shared');
export const FIXTURES = path.join(SHARED, 'fixtures');
export const TOKENIZER_DIR = path.join(SHARED, 'models/t5-small-tokenizer');
export const TWEETEVAL = path.join(SHARED, 'data/tweeteval');
export const MODEL_FIXTURES = ['t5-tiny', 't5-tiny-v11', 't5-tiny-long'] as const;

export function fixtureDir(name: string): string {
  return path.join(FIXTURES, name);
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
