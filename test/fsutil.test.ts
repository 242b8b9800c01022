import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFolderAtomic } from '../src/fsutil.js';

function tempRoot(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-fsutil-'));
}

test('writeFolderAtomic: the folder appears complete, and nothing else is left beside it', async () => {
  const root = tempRoot();
  const dir = path.join(root, 'a', 'ckpt');
  await writeFolderAtomic(dir, (tmp) => {
    assert.ok(!fs.existsSync(dir), 'the target must not exist while it is being written');
    fs.writeFileSync(path.join(tmp, 'x.txt'), 'one');
  });
  assert.equal(fs.readFileSync(path.join(dir, 'x.txt'), 'utf-8'), 'one');
  assert.deepEqual(fs.readdirSync(path.dirname(dir)), ['ckpt']);
});

test('writeFolderAtomic: a failure leaves no folder and no temp folder, and rethrows', async () => {
  const root = tempRoot();
  const dir = path.join(root, 'ckpt');
  await assert.rejects(
    writeFolderAtomic(dir, async (tmp) => {
      fs.writeFileSync(path.join(tmp, 'half.bin'), 'x');
      throw new Error('disk full');
    }),
    /disk full/,
  );
  assert.deepEqual(fs.readdirSync(root), []);
});

test('writeFolderAtomic: without replace an existing folder is an error and stays as it was', async () => {
  const root = tempRoot();
  const dir = path.join(root, 'out');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'keep.txt'), 'old');
  await assert.rejects(writeFolderAtomic(dir, (tmp) => fs.writeFileSync(path.join(tmp, 'new.txt'), 'new')));
  assert.deepEqual(fs.readdirSync(dir), ['keep.txt']);
  assert.deepEqual(fs.readdirSync(root), ['out']);
});

test('writeFolderAtomic: replace swaps in the new folder only once it is complete', async () => {
  const root = tempRoot();
  const dir = path.join(root, 'out');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'keep.txt'), 'old');
  await assert.rejects(
    writeFolderAtomic(dir, () => {
      throw new Error('stopped');
    }, { replace: true }),
    /stopped/,
  );
  assert.deepEqual(fs.readdirSync(dir), ['keep.txt'], 'a failed replacement keeps the old folder');
  await writeFolderAtomic(dir, (tmp) => fs.writeFileSync(path.join(tmp, 'new.txt'), 'new'), { replace: true });
  assert.deepEqual(fs.readdirSync(dir), ['new.txt']);
  assert.deepEqual(fs.readdirSync(root), ['out']);
});
