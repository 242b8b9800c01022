/**
 * Backend choice, fallbacks and their messages, the optional-package probes (with stand-in tfjs-node packages
 * written to a temp folder), the wasm builds, and the hand-encoded ONNX model (decoded with protobufjs).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';

import { tf } from '../src/tf.js';
import { initBackend } from '../src/engine/init.js';
import { describeBackends } from '../src/engine/backend_probes.js';
import { NATIVE_MATMUL_ENV } from '../src/engine/flags.js';
import { T5clsError, UsageError } from '../src/errors.js';
import { matMulModel, onnxModel } from '../src/engine/onnx/builder.js';
import { decodeOnnx } from './helpers/onnx_proto.js';
import { loadFailureReason } from '../src/engine/optional_packages.js';
import { loadOrtMatMul } from '../src/engine/ort/runtime.js';
import { loadBlasMatMul } from '../src/engine/blas/runtime.js';

const ort = loadOrtMatMul(2);
const blas = loadBlasMatMul(2);
const NO_ORT = ort.ok ? false : `onnxruntime-node not loadable: ${ort.reason}`;

function matMulValues(): number[][] {
  return tf.tidy(() => {
    const a = tf.tensor2d([[1, 2], [3, 4]]);
    const b = tf.tensor2d([[5, 6], [7, 8]]);
    // a·b, aᵀ·b, a·bᵀ
    return [tf.matMul(a, b), tf.matMul(a, b, true, false), tf.matMul(a, b, false, true)].map((t) =>
      Array.from(t.dataSync()),
    );
  });
}
const MATMUL_EXPECTED = [
  [19, 22, 43, 50],
  [26, 30, 38, 44],
  [17, 23, 39, 53],
];

describe('initBackend', () => {
  test('cpu without native matmul: stock JS matmul, our UnsortedSegmentSum, one log line', async () => {
    const lines: string[] = [];
    const info = await initBackend('cpu', { nativeMatmul: false, threads: 1, log: (l) => lines.push(l) });
    assert.equal(tf.getBackend(), 'cpu');
    assert.equal(info.name, 'cpu');
    assert.equal(info.matmul, 'js');
    assert.equal(info.nativeMatmul, false);
    assert.equal(info.device, 'cpu');
    assert.deepEqual(info.kernels, ['UnsortedSegmentSum', 'Add', 'Sub', 'Multiply', 'RealDiv', 'Softmax', 'Relu', 'Step', 'Tanh', 'Sum', 'T5clsReluGrad', 'T5clsReluDropout']);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^backend: cpu \(JavaScript\), JavaScript matmul/);
    assert.deepEqual(matMulValues(), MATMUL_EXPECTED);
  });

  test(`${NATIVE_MATMUL_ENV}=0 turns the native matmul off and says so`, async () => {
    const saved = process.env[NATIVE_MATMUL_ENV];
    process.env[NATIVE_MATMUL_ENV] = '0';
    try {
      const info = await initBackend('wasm', { threads: 1 });
      assert.equal(info.nativeMatmul, false);
      assert.equal(info.matmul, 'wasm');
      assert.ok(info.skipped.some((s) => s.includes(`${NATIVE_MATMUL_ENV}=0`)), info.skipped.join('; '));
    } finally {
      if (saved === undefined) delete process.env[NATIVE_MATMUL_ENV];
      else process.env[NATIVE_MATMUL_ENV] = saved;
    }
  });

  test('wasm without native matmul runs the threaded SIMD build with the threads asked for', async () => {
    const info = await initBackend('wasm', { nativeMatmul: false, threads: 2 });
    assert.equal(tf.getBackend(), 'wasm');
    assert.equal(info.wasmBuild, 'threaded-simd');
    assert.equal(info.threads, 2);
    assert.deepEqual(info.kernels.sort(), ['BatchMatMul', 'Identity', 'UnsortedSegmentSum', '_FusedMatMul']);
    assert.match(info.description, /^wasm \(threaded SIMD build, 2 threads\), wasm matmul$/);
    assert.deepEqual(matMulValues(), MATMUL_EXPECTED);
  });

  test('the single-threaded SIMD build on request', async () => {
    const info = await initBackend('wasm', { nativeMatmul: false, wasmBuild: 'simd', threads: 4 });
    assert.equal(info.wasmBuild, 'simd');
    assert.equal(info.threads, 1);
    assert.deepEqual(matMulValues(), MATMUL_EXPECTED);
  });

  const autoSkip = NO_ORT || (process.env[NATIVE_MATMUL_ENV] === '0' && `${NATIVE_MATMUL_ENV}=0`);
  test('auto without tfjs-node: wasm SIMD build with the native matmul (OpenBLAS where it loads, ONNX Runtime)', { skip: autoSkip }, async () => {
    const lines: string[] = [];
    const info = await initBackend('auto', { threads: 2, log: (l) => lines.push(l) });
    assert.equal(info.name, 'wasm');
    assert.equal(info.wasmBuild, 'simd');
    assert.equal(info.nativeMatmul, true);
    assert.equal(info.matmul, blas.ok ? 'blas' : 'onnxruntime');
    assert.equal(info.blas, blas.ok ? blas.blas.name : undefined);
    assert.equal(info.threads, 2);
    assert.equal(info.packages['onnxruntime-node'], ort.ok ? ort.ort.version : '');
    assert.ok(info.skipped.includes('@tensorflow/tfjs-node-gpu is not installed'), info.skipped.join('; '));
    assert.ok(info.skipped.includes('@tensorflow/tfjs-node is not installed'), info.skipped.join('; '));
    const libraries = blas.ok ? `${blas.blas.name.replace(/[()]/g, '\\$&')} and ONNX Runtime` : 'ONNX Runtime';
    assert.match(lines[0]!, new RegExp(`^backend: wasm \\(SIMD build\\) \\+ ${libraries} [\\d.]+ matmul, 2 threads \\(`));
    assert.deepEqual(matMulValues(), MATMUL_EXPECTED);
  });

  test('rejects bad threads and cuda on an embedded backend', async () => {
    await assert.rejects(initBackend('cpu', { threads: 0 }), (e: unknown) => e instanceof UsageError && /--threads/.test(e.message));
    await assert.rejects(initBackend('cpu', { threads: 1.5 }), UsageError);
    await assert.rejects(
      initBackend('wasm', { device: 'cuda' }),
      (e: unknown) => e instanceof UsageError && /tfjs-node-gpu/.test(e.message) && /--backend wasm/.test(e.message),
    );
  });

  test('device cuda without tfjs-node-gpu says what to install', async () => {
    await assert.rejects(initBackend('auto', { device: 'cuda' }), (e: unknown) => {
      assert.ok(e instanceof T5clsError);
      assert.equal(e.exitCode, 1);
      assert.match(e.message, new RegExp(`@tensorflow/tfjs-node-gpu@${tf.version_core.replace(/\./g, '\\.')}`));
      assert.match(e.message, /CUDA 11\.2 and cuDNN 8\.1/);
      assert.match(e.message, /@tensorflow\/tfjs-node-gpu is not installed/);
      assert.equal(e.message.includes('\n'), false);
      return true;
    });
  });

  test('backend tensorflow without tfjs-node names both packages', async () => {
    await assert.rejects(
      initBackend('tensorflow'),
      (e: unknown) =>
        e instanceof T5clsError &&
        /@tensorflow\/tfjs-node-gpu or @tensorflow\/tfjs-node/.test(e.message) &&
        /@tensorflow\/tfjs-node is not installed/.test(e.message),
    );
  });

  after(async () => {
    await tf.setBackend('cpu');
  });
});

describe('tfjs-node packages (stand-ins in a temp folder)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-backend-test-'));
  const req = createRequire(import.meta.url);
  const write = (pkg: string, version: string, main: string) => {
    const p = path.join(dir, 'node_modules', pkg);
    fs.mkdirSync(p, { recursive: true });
    fs.writeFileSync(path.join(p, 'package.json'), JSON.stringify({ name: pkg, version, main: 'index.js' }));
    fs.writeFileSync(path.join(p, 'index.js'), main);
  };
  // What tfjs-node-gpu's binding throws when the CUDA runtime is absent.
  write(
    '@tensorflow/tfjs-node-gpu',
    '4.22.0',
    `throw new Error('libcudart.so.11.0: cannot open shared object file: No such file or directory');\n`,
  );
  // A tfjs-node that registers a 'tensorflow' backend (backed by the JS cpu backend) in our tfjs-core.
  write(
    '@tensorflow/tfjs-node',
    '4.22.0',
    `const core = require(${JSON.stringify(req.resolve('@tensorflow/tfjs-core'))});\n` +
      `const cpu = require(${JSON.stringify(req.resolve('@tensorflow/tfjs-backend-cpu'))});\n` +
      `core.registerBackend('tensorflow', () => new cpu.MathBackendCPU(), 3);\n`,
  );

  test('describeBackends reports the missing CUDA library and the working tfjs-node', async () => {
    const probes = await describeBackends({ modulePaths: [dir], threads: 1 });
    assert.deepEqual(
      probes.map((p) => p.name),
      ['tensorflow-gpu', 'tensorflow', 'blas', 'onnxruntime', 'wasm', 'cpu'],
    );
    const gpu = probes[0]!;
    assert.equal(gpu.installed, true);
    assert.equal(gpu.available, false);
    assert.match(gpu.detail, /4\.22\.0 failed to load: missing shared library libcudart\.so\.11\.0/);
    assert.match(gpu.detail, /CUDA 11\.2/);
    const cpuTf = probes[1]!;
    assert.equal(cpuTf.available, true);
    assert.equal(cpuTf.version, '4.22.0');
    assert.equal(probes[3]!.available, true);
    assert.equal(probes[4]!.available, true);
    assert.equal(probes[2]!.available, ort.ok && process.env[NATIVE_MATMUL_ENV] !== '0');
  });

  test('device cuda fails with the missing library named', async () => {
    await assert.rejects(initBackend('tensorflow', { device: 'cuda', modulePaths: [dir] }), (e: unknown) => {
      assert.ok(e instanceof T5clsError);
      assert.match(e.message, /missing shared library libcudart\.so\.11\.0/);
      assert.match(e.message, /CUDA 11\.2 and cuDNN 8\.1/);
      return true;
    });
  });

  test('auto takes tfjs-node when tfjs-node-gpu does not load', async () => {
    const lines: string[] = [];
    const info = await initBackend('auto', { modulePaths: [dir], log: (l) => lines.push(l) });
    assert.equal(tf.getBackend(), 'tensorflow');
    assert.equal(info.name, 'tensorflow');
    assert.equal(info.device, 'cpu');
    assert.equal(info.matmul, 'tensorflow');
    assert.deepEqual(info.packages, { '@tensorflow/tfjs-node': '4.22.0' });
    assert.equal(info.skipped.length, 1);
    assert.match(info.skipped[0]!, /libcudart\.so\.11\.0/);
    assert.match(lines[0]!, /^backend: tensorflow \(@tensorflow\/tfjs-node 4\.22\.0, CPU, \d+ threads?\) \(.*libcudart/);
  });

  test('device cpu skips tfjs-node-gpu altogether', async () => {
    const info = await initBackend('tensorflow', { device: 'cpu', modulePaths: [dir] });
    assert.equal(info.name, 'tensorflow');
    assert.deepEqual(info.skipped, []);
  });

  after(async () => {
    await tf.setBackend('cpu');
    tf.removeBackend('tensorflow');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('loadFailureReason', () => {
  test('names the missing shared library, the too-old system library, or the first line', () => {
    assert.equal(
      loadFailureReason(new Error('libcudart.so.11.0: cannot open shared object file: No such file or directory')),
      'missing shared library libcudart.so.11.0',
    );
    assert.equal(
      loadFailureReason(
        new Error('/x/lib/libtensorflow.so.2: cannot open shared object file: No such file or directory'),
      ),
      'missing shared library libtensorflow.so.2',
    );
    assert.equal(
      loadFailureReason(
        new Error("/lib/x86_64-linux-gnu/libm.so.6: version `GLIBC_2.29' not found (required by /x/onnxruntime_binding.node)"),
      ),
      'system library too old: GLIBC_2.29 not found',
    );
    assert.equal(loadFailureReason(new Error('\nsomething else broke\n    at foo')), 'something else broke');
    assert.equal(loadFailureReason('plain text'), 'plain text');
  });
});

describe('the hand-encoded ONNX model', () => {
  // Decoded independently of our encoder (test/helpers/onnx_proto.ts); an empty integer list left out.
  const decode = (bytes: Uint8Array) => {
    const m = decodeOnnx(bytes);
    for (const node of m.graph.node) for (const a of node.attribute) if (a.ints?.length === 0) delete a.ints;
    return m;
  };

  test('plain MatMul: opset 17, float inputs of any shape', () => {
    const m = decode(matMulModel(false, false));
    assert.equal(m.ir_version, 8);
    assert.deepEqual(m.opset_import, [{ version: 17 }]);
    assert.equal(m.graph.node.length, 1);
    const node = m.graph.node[0]!;
    assert.equal(node.op_type, 'MatMul');
    assert.equal(node.domain, undefined);
    assert.deepEqual(node.input, ['A', 'B']);
    assert.deepEqual(node.output, ['Y']);
    assert.deepEqual(node.attribute, []);
    for (const v of [...m.graph.input, ...m.graph.output]) {
      assert.equal(v.type.tensor_type.elem_type, 1);
      assert.equal(v.type.tensor_type.shape, undefined);
    }
    assert.deepEqual(m.graph.input.map((v) => v.name), ['A', 'B']);
  });

  test('transposed operands: com.microsoft FusedMatMul with transA/transB', () => {
    const m = decode(matMulModel(true, false));
    assert.deepEqual(m.opset_import, [{ version: 17 }, { domain: 'com.microsoft', version: 1 }]);
    const node = m.graph.node[0]!;
    assert.equal(node.op_type, 'FusedMatMul');
    assert.equal(node.domain, 'com.microsoft');
    assert.deepEqual(node.attribute, [
      { name: 'transA', i: 1, type: 2 },
      { name: 'transB', type: 2 },
    ]);
  });

  test('graphs: float, integer and integer-list attributes, left-out optional inputs, int64 constants', () => {
    const m = decode(
      onnxModel(
        [
          { op: 'Reshape', inputs: ['X', 'shape'], outputs: ['r'] },
          { op: 'Transpose', inputs: ['r'], outputs: ['t'], attributes: { perm: [0, 2, 1, -1] } },
          { op: 'MultiHeadAttention', domain: 'com.microsoft', inputs: ['t', 't', 't', '', 'm'], outputs: ['Y'], attributes: { num_heads: 4, scale: { float: 0.5 } } },
        ],
        ['X', 'm'],
        ['Y'],
        undefined,
        { shape: [0, -1, 4, 8] },
      ),
    );
    assert.deepEqual(m.opset_import, [{ version: 17 }, { domain: 'com.microsoft', version: 1 }]);
    assert.deepEqual(m.graph.node.map((n) => n.op_type), ['Reshape', 'Transpose', 'MultiHeadAttention']);
    assert.deepEqual(m.graph.node[1]!.attribute, [{ name: 'perm', ints: [0, 2, 1, -1], type: 7 }]);
    assert.deepEqual(m.graph.node[2]!.input, ['t', 't', 't', '', 'm']);
    assert.deepEqual(m.graph.node[2]!.attribute, [
      { name: 'num_heads', i: 4, type: 2 },
      { name: 'scale', f: 0.5, type: 1 },
    ]);
    const [init] = m.graph.initializer;
    assert.equal(init!.name, 'shape');
    assert.deepEqual(init!.dims, [4]);
    assert.equal(init!.data_type, 7);
    const raw = new DataView(init!.raw_data!.buffer, init!.raw_data!.byteOffset, init!.raw_data!.byteLength);
    assert.deepEqual([0, 1, 2, 3].map((i) => Number(raw.getBigInt64(8 * i, true))), [0, -1, 4, 8]);
    assert.deepEqual(m.graph.input.map((v) => v.name), ['X', 'm']);
  });
});
