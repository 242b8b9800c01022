/**
 * Importing the library loads its modules and nothing more: tfjs's kernel and gradient registries, its backends and
 * its flags stay as tfjs alone leaves them (initBackend, or the first model made, changes them; see src/index.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { REPO_ROOT } from './helpers/fixtures.js';

/**
 * Run in a fresh process: what tfjs holds after importing @tensorflow/tfjs alone, then what changed on importing
 * src/index.ts. Registry entries are compared by identity, so a kernel replaced under its own name counts.
 */
const SCRIPT = `
const tf = await import('@tensorflow/tfjs');
const registries = () => new Map(['kernelRegistry', 'gradRegistry'].map((name) => [name, new Map(globalThis._tfGlobals.get(name))]));
const snapshot = () => ({
  registries: registries(),
  flags: { ...tf.env().flags },
  backends: Object.keys(tf.engine().registryFactory).sort(),
  backend: tf.engine().backendName,
});
const before = snapshot();
const library = await import('./src/index.ts');
const after = snapshot();
const changedEntries = [...before.registries.keys()].flatMap((name) => {
  const [a, b] = [before.registries.get(name), after.registries.get(name)];
  return [...new Set([...a.keys(), ...b.keys()])].filter((key) => a.get(key) !== b.get(key)).map((key) => name + ': ' + key);
});
console.log(JSON.stringify({
  sameTf: library.tf.env() === tf.env(),
  kernels: before.registries.get('kernelRegistry').size,
  changedEntries,
  flags: [before.flags, after.flags],
  backends: [before.backends, after.backends],
  backend: [before.backend ?? null, after.backend ?? null],
}));
`;

test('importing src/index.ts leaves tfjs as tfjs alone leaves it', () => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT], {
    cwd: REPO_ROOT,
    encoding: 'utf-8',
  });
  const r = JSON.parse(out.trim().split('\n').at(-1)!) as {
    sameTf: boolean;
    kernels: number;
    changedEntries: string[];
    flags: [Record<string, unknown>, Record<string, unknown>];
    backends: [string[], string[]];
    backend: [string | null, string | null];
  };
  assert.ok(r.sameTf, 'the library uses the same tfjs');
  assert.ok(r.kernels > 100, `tfjs registered its kernels before the library loaded (${r.kernels})`);
  assert.deepEqual(r.changedEntries, [], 'kernels or gradients the import registered or replaced');
  assert.deepEqual(r.flags[1], r.flags[0], 'tfjs flags after the import');
  assert.deepEqual(r.backends[1], r.backends[0], 'backends registered');
  assert.deepEqual(r.backend[1], r.backend[0], 'backend in use');
});

test('a model made without initBackend registers the one-pass embedding gradient on cpu and quiets tfjs, once', async () => {
  const { T5Config, T5ForConditionalGeneration, tf } = await import('../src/index.js');
  const { replacementOf, restoreKernel } = await import('../src/engine/tfjs_internals.js');
  const config = new T5Config({ d_model: 8, d_kv: 4, d_ff: 16, num_layers: 1, num_heads: 2, vocab_size: 10 });
  assert.equal(replacementOf('UnsortedSegmentSum', 'cpu'), undefined);
  assert.equal(tf.env().getBool('PROD'), false);
  new T5ForConditionalGeneration(config).dispose();
  assert.equal(replacementOf('UnsortedSegmentSum', 'cpu'), 'segment-sum');
  assert.equal(tf.env().getBool('PROD'), true, "tfjs's production mode: no install-tfjs-node hint");
  restoreKernel('UnsortedSegmentSum', 'cpu');
  new T5ForConditionalGeneration(config).dispose();
  assert.equal(replacementOf('UnsortedSegmentSum', 'cpu'), undefined, 'the second model leaves the registry alone');
});
