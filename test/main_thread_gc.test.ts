import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MODULE = path.join(ROOT, 'src/engine/cpu/main_thread_gc.ts');

/** keepMarkingOnMainThread() twice in a fresh node process, then a GC-heavy loop that must survive the change. */
function run(nodeArgs: string[], env: Record<string, string> = {}): string {
  const code = `import { keepMarkingOnMainThread } from ${JSON.stringify(MODULE)};
const a = keepMarkingOnMainThread(), b = keepMarkingOnMainThread();
let keep = [];
for (let i = 0; i < 400; i++) { keep.push(new Float32Array(1 << 18)); if (keep.length > 8) keep = []; }
console.log(a, b);`;
  const r = spawnSync(process.execPath, [...nodeArgs, '--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    encoding: 'utf-8',
    env: { ...process.env, T5CLS_CONCURRENT_GC: '', NODE_OPTIONS: '', ...env },
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

test('the cpu engine turns concurrent marking off once, unless T5CLS_CONCURRENT_GC=1 or node was given the flag', () => {
  assert.equal(run([]), 'true false');
  assert.equal(run([], { T5CLS_CONCURRENT_GC: '1' }), 'false false');
  assert.equal(run(['--concurrent-marking']), 'false false');
});
