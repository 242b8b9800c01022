/** Names that become paths cannot leave their folder. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertRepoId, assertRevision, repoFolderName } from '../src/hub/cache.js';
import { defaultOutDir } from '../src/data/index.js';
import { assertSafeName } from '../src/train/checkpoint.js';
import { UsageError } from '../src/errors.js';

test('Hub ids and revisions are checked before they become cache paths', () => {
  for (const ok of ['t5-small', 'google-t5/t5-small', 'cardiffnlp/tweet_eval', 'google/flan-t5-small']) assert.doesNotThrow(() => assertRepoId(ok));
  for (const bad of ['../etc', 'a/../b', '/abs', 'a/b/c', 'x--y', 'a\0b', '', 'a/', '.hidden/x', 'name.']) {
    assert.throws(() => assertRepoId(bad), UsageError, bad);
  }
  assert.equal(repoFolderName({ type: 'model', id: 'google-t5/t5-small' }), 'models--google-t5--t5-small');
  for (const ok of ['main', 'v1.0', 'refs/pr/1', 'a'.repeat(40)]) assert.doesNotThrow(() => assertRevision(ok));
  for (const bad of ['../main', 'a/../../b', '/etc', 'a\\b', 'x\0', '', 'a//b']) assert.throws(() => assertRevision(bad), UsageError, bad);
});

test('data set and subset names cannot escape datasets/', () => {
  assert.equal(defaultOutDir('cardiffnlp/tweet_eval', 'emotion').replace(/\\/g, '/'), 'datasets/tweet_eval-emotion_processed');
  for (const [d, s] of [['x', '../../etc'], ['x', '..'], ['x', 'a/b'], ['..', 'emotion'], ['x', 'a\0']]) {
    assert.throws(() => defaultOutDir(d, s), UsageError, `${d} ${s}`);
  }
});

test('checkpoint and run names are plain folder names', () => {
  assert.doesNotThrow(() => assertSafeName('t5-small-Nov25_10-00-00-epoch3', '--weights-name'));
  for (const bad of ['../x', '..', '.', '/abs', 'a/b', 'a\\b', 'a\0b', '']) assert.throws(() => assertSafeName(bad, '--weights-name'), UsageError, bad);
});

test('runs started in the same second get different names', async () => {
  const { claimRunName } = await import('../src/cli/shared.js');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-runs-'));
  try {
    const start = new Date(2026, 10, 25, 14, 3, 59);
    const names = [0, 1, 2].map(() => claimRunName(dir, 't5-small', start).runName);
    assert.deepEqual(names, ['t5-small_Nov25_14-03-59', 't5-small_Nov25_14-03-59-2', 't5-small_Nov25_14-03-59-3']);
    assert.deepEqual(fs.readdirSync(dir).sort(), [...names].sort());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
