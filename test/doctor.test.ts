/**
 * `t5cls doctor` through the real CLI: the report, its JSON form, and what it says about @tensorflow/tfjs-node-gpu
 * when it is not installed, when it fails to load for a missing CUDA library, and when it loads but TensorFlow logs
 * that it could not open the CUDA libraries (stand-in packages found through NODE_PATH).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { libraryAdvice, missingLibraries, parseNvidiaDriverVersion } from '../src/cli/doctor_gpu.js';
import { REPO_ROOT } from './helpers/fixtures.js';

const CLI = path.join(REPO_ROOT, 'bin/t5cls.js');
let work: string;

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: work,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** A folder holding node_modules/@tensorflow/tfjs-node-gpu with the given index.js. */
function fakeGpuPackage(name: string, indexJs: string): string {
  const root = path.join(work, name, 'node_modules');
  const dir = path.join(root, '@tensorflow/tfjs-node-gpu');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: '@tensorflow/tfjs-node-gpu', version: '4.22.0', main: 'index.js' }),
  );
  fs.writeFileSync(path.join(dir, 'index.js'), indexJs);
  return root;
}

const TF_LOG =
  "2024-05-01 10:00:00.000001: W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library 'libcudart.so.11.0'; dlerror: libcudart.so.11.0: cannot open shared object file: No such file or directory; LD_LIBRARY_PATH: /usr/local/nvidia/lib64\n" +
  "2024-05-01 10:00:00.000002: W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library 'libcudnn.so.8'; dlerror: libcudnn.so.8: cannot open shared object file: No such file or directory\n" +
  '2024-05-01 10:00:00.000003: W tensorflow/core/common_runtime/gpu/gpu_device.cc:1850] Cannot dlopen some GPU libraries. Skipping registering GPU devices...\n';

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-doctor-'));
});

after(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

test('missing libraries are read from loader errors and TensorFlow logs', () => {
  assert.deepEqual(missingLibraries(TF_LOG), ['libcudart.so.11.0', 'libcudnn.so.8']);
  assert.deepEqual(missingLibraries('Error: libtensorflow.so.2: cannot open shared object file: No such file or directory'), [
    'libtensorflow.so.2',
  ]);
  assert.deepEqual(missingLibraries('failed to load: missing shared library libcublas.so.11'), ['libcublas.so.11']);
  assert.deepEqual(missingLibraries("Error: /lib/x86_64-linux-gnu/libm.so.6: version `GLIBC_2.29' not found"), []);
  assert.match(libraryAdvice('libcudart.so.11.0'), /CUDA 11\.2.*LD_LIBRARY_PATH/);
  assert.match(libraryAdvice('libcudnn.so.8'), /cuDNN 8\.1/);
  assert.match(libraryAdvice('libcuda.so.1'), /NVIDIA driver/);
  assert.match(libraryAdvice('libtensorflow.so.2'), /npm rebuild @tensorflow\/tfjs-node-gpu/);
});

test('the NVIDIA driver version is read from /proc/driver/nvidia/version', () => {
  assert.equal(
    parseNvidiaDriverVersion(
      'NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\nGCC version:  gcc version 12.2.0\n',
    ),
    '535.104.05',
  );
  assert.equal(
    parseNvidiaDriverVersion(
      'NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release Build  (dvs-builder@U16-T02-35-3)\n',
    ),
    '550.54.15',
  );
});

test('doctor: the report, exit code 0, tfjs-node-gpu not installed', async () => {
  const r = await cli(['doctor']);
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout;
  assert.match(out, new RegExp(`Node\\.js\\s+${process.version.replace(/\./g, '\\.')} ok`));
  assert.match(out, /backend\s+auto → (wasm|cpu|tensorflow)/);
  assert.match(out, /threads\s+\d+ of \d+ core/);
  assert.match(out, /memory\s+[\d.]+ [GM]iB free of [\d.]+ [GM]iB/);
  assert.match(out, /speed\s+\d+(\.\d)? GFLOP\/s \(\d+×\d+ by \d+×\d+ matmul/);
  assert.match(out, /training\s+ok: 3 steps of a tiny T5/);
  assert.match(out, /GPU \(@tensorflow\/tfjs-node-gpu\): not installed/);
  assert.match(out, /CUDA 11\.2 and cuDNN 8\.1.*npm install @tensorflow\/tfjs-node-gpu@4\.22\.0.*downloads libtensorflow/);
  assert.match(out, /ready: training can run/);
  assert.match(out, /what fine-tunes here \(estimated peak memory, batch × 64 tokens; [\d.]+ GiB usable\):/);
  assert.match(out, /^  t5-small +61M  batch 16  AdamW +[\d.]+ GiB yes \(wasm\) +Adafactor +[\d.]+ GiB yes \(wasm\)$/m);
  assert.match(out, /^  t5-large +738M  batch 8 +AdamW +[\d.]+ GiB (yes \(cpu\)|no) +Adafactor/m);
  // LoRA rows: the flan-t5 shapes with an adapter of rank 16 on q, v and the numbers it trains.
  assert.match(out, /^with a LoRA adapter \(--lora-r 16, on q,v; the model frozen, only the adapter trained\):$/m);
  assert.match(out, /^  flan-t5-base +248M  batch 16  AdamW +[\d.]+ GiB (yes \((wasm|cpu)\)|no) +Adafactor +[\d.]+ GiB .*1\.8M trained$/m);
  assert.match(
    out,
    /^  flan-t5-xl +2850M  batch 8 +AdamW +1\d\.\d GiB (yes \(cpu\)|no) +Adafactor +1\d\.\d GiB (yes \(cpu\)|no) +9\.4M trained$/m,
  );
  for (const name of ['tensorflow-gpu', 'tensorflow', 'blas', 'onnxruntime', 'wasm', 'cpu'])
    assert.match(out, new RegExp(`^  (yes|no ) +${name} `, 'm'));
});

test('doctor --json: the summary as one JSON document', async () => {
  const r = await cli(['doctor', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.ok, true);
  assert.deepEqual(j.problems, []);
  assert.equal(j.node.version, process.version);
  assert.equal(j.node.ok, true);
  assert.equal(j.system.cores, os.availableParallelism());
  assert.equal(j.memory.totalBytes, os.totalmem());
  assert.ok(j.memory.freeBytes > 0 && j.memory.freeBytes <= j.memory.totalBytes);
  // t5-small has 60,506,624 parameters (HF's num_parameters()); float32 weights + grads + two AdamW moments.
  assert.equal(j.t5Small.parameters, 60_506_624);
  assert.equal(j.t5Small.adamwBytes, 60_506_624 * 16);
  // Sizes people fine-tune, with the published parameter counts; past the wasm heap the cpu engine takes over.
  const sizes = Object.fromEntries(j.sizes.map((z: { model: string }) => [z.model, z]));
  assert.deepEqual(Object.keys(sizes), ['t5-small', 't5-base', 'flan-t5-base', 't5-large', 't5-3b']);
  assert.equal(sizes['flan-t5-base'].parameters, 247_577_856);
  assert.equal(sizes['t5-large'].parameters, 737_668_096);
  assert.equal(sizes['t5-small'].adamw.engine, 'wasm');
  assert.equal(sizes['t5-large'].adamw.engine, 'cpu');
  assert.ok(sizes['t5-large'].adafactor.totalBytes < sizes['t5-large'].adamw.totalBytes - 2 * 2.9e9);
  assert.equal(sizes['t5-small'].adamw.fits, true);
  for (const z of j.sizes) assert.equal(z.trainable, z.parameters, z.model);
  // LoRA rows (r 16 on q, v): PEFT's trainable params; the frozen model held once, so flan-t5-xl needs less than
  // half of what full AdamW fine-tuning of the same size (t5-3b's row) needs.
  const lora = Object.fromEntries(j.loraSizes.map((z: { model: string }) => [z.model, z]));
  assert.deepEqual(Object.keys(lora), ['flan-t5-base', 'flan-t5-large', 'flan-t5-xl']);
  assert.deepEqual(
    j.loraSizes.map((z: { parameters: number; trainable: number }) => [z.parameters, z.trainable]),
    [
      [247_577_856, 1_769_472],
      [783_150_080, 4_718_592],
      [2_849_757_184, 9_437_184],
    ],
  );
  assert.deepEqual(lora['flan-t5-xl'].lora, { r: 16, targetModules: ['q', 'v'] });
  assert.equal(lora['flan-t5-xl'].adamw.engine, 'cpu');
  assert.ok(lora['flan-t5-xl'].adamw.totalBytes < sizes['t5-3b'].adamw.totalBytes / 2);
  const usable = 0.9 * (j.memory.limitBytes ?? j.memory.totalBytes);
  for (const z of j.loraSizes) assert.equal(z.adamw.fits, z.adamw.totalBytes <= usable, z.model);
  assert.deepEqual(
    j.backends.map((b: { name: string }) => b.name),
    ['tensorflow-gpu', 'tensorflow', 'blas', 'onnxruntime', 'wasm', 'cpu'],
  );
  assert.equal(j.backend.requested, 'auto');
  assert.ok(['wasm', 'cpu', 'tensorflow'].includes(j.backend.info.name));
  assert.equal(j.threads, j.backend.info.threads);
  assert.ok(Number.isInteger(j.threads) && j.threads >= 1);
  const s = j.speed;
  assert.ok(s.gflops > 0 && Number.isFinite(s.gflops));
  assert.ok(Math.abs(s.gflops - (2 * s.m * s.k * s.n) / (s.ms * 1e6)) < 1e-9 * s.gflops + 1e-12);
  assert.equal(j.training.ok, true);
  assert.equal(j.training.losses.length, 3);
  assert.ok(j.training.losses[2] < j.training.losses[0]);
  assert.equal(j.gpu.package, '@tensorflow/tfjs-node-gpu');
  assert.equal(j.gpu.installed, false);
  assert.equal(j.gpu.loads, false);
  assert.match(j.gpu.reason, /not installed/);
  assert.match(j.gpu.advice, /CUDA 11\.2 and cuDNN 8\.1/);
});

test('doctor --backend cpu without the native matmul: small probe, a warning, still ready', async () => {
  const r = await cli(['doctor', '--json', '--backend', 'cpu', '--threads', '1'], { T5CLS_NATIVE_MATMUL: '0' });
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.backend.info.name, 'cpu');
  assert.equal(j.backend.info.matmul, 'js');
  assert.equal(j.speed.m, 256);
  assert.ok(j.warnings.some((w: string) => /plain JavaScript: training will be very slow/.test(w)));
});

test('doctor --device cuda without a GPU package: exit code 1 with the reason', async () => {
  const r = await cli(['doctor', '--device', 'cuda']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /problem: the backend does not start: --device cuda needs @tensorflow\/tfjs-node-gpu@4\.22\.0/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /training cannot run here/);
});

test('doctor names the CUDA library tfjs-node-gpu failed to load', async () => {
  const nodePath = fakeGpuPackage(
    'broken',
    `throw new Error('libcudart.so.11.0: cannot open shared object file: No such file or directory');\n`,
  );
  const r = await cli(['doctor', '--json'], { NODE_PATH: nodePath });
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.gpu.installed, true);
  assert.equal(j.gpu.version, '4.22.0');
  assert.equal(j.gpu.loads, false);
  assert.deepEqual(j.gpu.missingLibraries, ['libcudart.so.11.0']);
  assert.match(j.gpu.reason, /failed to load: missing shared library libcudart\.so\.11\.0/);
  assert.match(j.gpu.advice, /libcudart\.so\.11\.0 is part of CUDA 11\.2/);
  assert.notEqual(j.backend.info.name, 'tensorflow');
  const text = await cli(['doctor'], { NODE_PATH: nodePath });
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /GPU \(@tensorflow\/tfjs-node-gpu 4\.22\.0\): installed, does not load/);
  assert.match(text.stdout, /missing: libcudart\.so\.11\.0/);
  assert.match(text.stdout, /what to do: libcudart\.so\.11\.0 is part of CUDA 11\.2/);
});

test("doctor reads TensorFlow's log when tfjs-node-gpu loads but runs on the CPU", async () => {
  // Loads, logs what TensorFlow logs when the CUDA libraries are missing, and registers a backend without a GPU.
  const nodePath = fakeGpuPackage(
    'cpu-only',
    `process.stderr.write(${JSON.stringify(TF_LOG)});\n` +
      `const tf = require('@tensorflow/tfjs');\n` +
      `tf.registerBackend('tensorflow', () => ({ isUsingGpuDevice: false, dispose() {} }), 3);\n` +
      `module.exports = tf;\n`,
  );
  const r = await cli(['doctor', '--json', '--backend', 'wasm'], {
    NODE_PATH: [nodePath, path.join(REPO_ROOT, 'node_modules')].join(path.delimiter),
  });
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.gpu.installed, true);
  assert.equal(j.gpu.loads, true);
  assert.equal(j.gpu.gpu, false);
  assert.deepEqual(j.gpu.missingLibraries, ['libcudart.so.11.0', 'libcudnn.so.8']);
  assert.match(j.gpu.reason, /loads, but TensorFlow could not load libcudart\.so\.11\.0, libcudnn\.so\.8 and runs on the CPU/);
  assert.match(j.gpu.advice, /CUDA 11\.2.*; libcudnn\.so\.8 is part of cuDNN: install cuDNN 8\.1/);
  assert.equal(j.backends[0].available, true);
  assert.match(j.backends[0].detail, /TensorFlow sees no usable GPU/);
  assert.equal(j.backend.info.name, 'wasm');
});
