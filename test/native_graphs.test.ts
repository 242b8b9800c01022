/**
 * Inference stacks run as one ONNX Runtime graph (model/native_graphs.ts, chosen by model/t5_runtime.ts, through
 * engine/ort/graph_kernel.ts) must give what the tfjs ops give (which the fixture tests tie to HF), for every
 * feed-forward variant and shape option, and must stay out of the way while gradients are recorded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';

import { tf } from '../src/tf.js';
import { T5Config, T5ForConditionalGeneration } from '../src/model/index.js';
import { nativeGraphs } from '../src/engine/flags.js';
import { GRAPH_KERNEL, nativeGraphAvailable } from '../src/engine/ort/graph_kernel.js';
import { loadOrtMatMul } from '../src/engine/ort/runtime.js';
import { testBackends, useBackend } from './helpers/backends.js';
import { fixtureDir, maxAbs, maxAbsDiff, MODEL_FIXTURES, readJson } from './helpers/fixtures.js';
import { encoderGraph, graphFeeds } from '../src/model/native_graphs.js';
import { decodeTree } from '../src/eval/tree_scoring.js';

const ort = loadOrtMatMul(2);
const NO_ORT = ort.ok ? false : `onnxruntime-node not loadable: ${ort.reason}`;

/**
 * Encoder output and cross keys/values, then the logits of a causal decoder pass and of a prefix-tree pass (see
 * classTree), flattened, with the kernels that ran.
 */
async function encoderPass(model: T5ForConditionalGeneration, ids: number[][], mask: number[][], graphs: boolean) {
  nativeGraphs.enabled = graphs;
  try {
    let values: Float32Array[] = [];
    const profile = await tf.profile(() => {
      values = tf.tidy(() => {
        const m = tf.tensor2d(mask, undefined, 'int32');
        const { encoded, cross } = model.runtime.encodeForDecoding(tf.tensor2d(ids, undefined, 'int32'), m);
        const vocab = model.config.vocab_size;
        const decoderIds = ids.map((row) => [0, ...row.slice(0, 3).map((t) => (t * 7) % vocab)]);
        const causal = model.runtime.decodeSequence(tf.tensor2d(decoderIds, undefined, 'int32'), m, cross);
        const tree = [0, 5 % vocab, 9 % vocab, 11 % vocab, 1];
        const treeLogits = decodeTree(model, { tokens: tree, parents: [-1, 0, 1, 0, 3] }, m, cross);
        return [encoded, ...cross.flatMap((kv) => [kv.key, kv.value]), causal, treeLogits].map((t) => t.dataSync() as Float32Array);
      });
    });
    return { values, kernels: new Set(profile.kernels.map((k) => k.name)) };
  } finally {
    nativeGraphs.enabled = true;
  }
}

function assertSame(native: Float32Array[], ops: Float32Array[], what: string): void {
  assert.equal(native.length, ops.length);
  native.forEach((v, i) => {
    const scale = Math.max(maxAbs(ops[i]!), 1);
    const d = maxAbsDiff(v, ops[i]!);
    assert.ok(d <= 2e-5 * scale, `${what}: output ${i} differs by ${d} (magnitude ${scale})`);
  });
}

const VARIANTS: Record<string, Record<string, unknown>> = {
  // d_kv * heads != d_model, more decoder than encoder layers, untied head
  relu: { feed_forward_proj: 'relu', d_model: 24, d_kv: 10, num_heads: 3, num_layers: 2, num_decoder_layers: 3, tie_word_embeddings: false },
  'gated-gelu': { feed_forward_proj: 'gated-gelu', d_model: 32, d_kv: 8, num_heads: 4, num_layers: 1, num_decoder_layers: 1 },
  gelu: { feed_forward_proj: 'gelu', d_model: 32, d_kv: 8, num_heads: 4, num_layers: 2, num_decoder_layers: 2 },
  'gated-silu': { feed_forward_proj: 'gated-silu', d_model: 16, d_kv: 4, num_heads: 4, num_layers: 3, num_decoder_layers: 1, layer_norm_epsilon: 1e-3 },
};

for (const backend of testBackends().filter((b) => b !== 'wasm-pure')) {
  for (const [variant, fields] of Object.entries(VARIANTS)) {
    test(`[${backend}] native encoder and decoder graphs equal the tfjs ops: ${variant}`, { skip: NO_ORT }, async () => {
      await useBackend(backend);
      const config = new T5Config({ vocab_size: 64, d_ff: 40, relative_attention_num_buckets: 8, relative_attention_max_distance: 16, ...fields });
      const model = new T5ForConditionalGeneration(config, { seed: 3 });
      try {
        // Three rows, the last two padded.
        const ids = [
          [5, 9, 13, 2, 40, 1],
          [7, 7, 21, 1, 0, 0],
          [63, 1, 0, 0, 0, 0],
        ];
        const mask = ids.map((row, i) => row.map((_, j) => (j < [6, 4, 2][i]! ? 1 : 0)));
        const native = await encoderPass(model, ids, mask, true);
        const ops = await encoderPass(model, ids, mask, false);
        assert.ok(native.kernels.has(GRAPH_KERNEL), [...native.kernels].join(', '));
        assert.ok(!ops.kernels.has(GRAPH_KERNEL));
        assert.equal(native.values.length, 3 + 2 * config.num_decoder_layers);
        assert.equal(native.kernels.has('BatchMatMul'), false, 'the decoder ran tfjs ops');
        assertSame(native.values, ops.values, variant);
      } finally {
        model.dispose();
      }
    });
  }

  for (const name of MODEL_FIXTURES) {
    test(`[${backend}] ${name}: native graphs equal the tfjs ops; gradients never use them`, { skip: NO_ORT }, async () => {
      await useBackend(backend);
      const dir = fixtureDir(name);
      const { inputs } = readJson(path.join(dir, 'fixture.json'));
      const model = T5ForConditionalGeneration.fromPretrained(dir);
      try {
        assert.ok(nativeGraphAvailable());
        const native = await encoderPass(model, inputs.input_ids, inputs.attention_mask, true);
        const ops = await encoderPass(model, inputs.input_ids, inputs.attention_mask, false);
        assert.ok(native.kernels.has(GRAPH_KERNEL));
        assertSame(native.values, ops.values, name);

        const params = [...model.namedParameters().values()];
        let seen = true;
        const profile = await tf.profile(() => {
          const { value, grads } = tf.variableGrads(() => {
            seen = nativeGraphAvailable();
            return model.forward({ inputIds: inputs.input_ids, attentionMask: inputs.attention_mask, labels: inputs.labels }).loss!;
          }, params);
          tf.dispose([value, ...Object.values(grads)]);
        });
        assert.equal(seen, false, 'the graph must not be available while a gradient is recorded');
        assert.ok(!profile.kernels.some((k) => k.name === GRAPH_KERNEL));
      } finally {
        model.dispose();
      }
    });
  }
}

test('with the native matmul off there is no graph kernel', async () => {
  await tf.ready();
  const { initBackend } = await import('../src/engine/init.js');
  await initBackend('cpu', { nativeMatmul: false, threads: 1 });
  assert.equal(nativeGraphAvailable(), false);
  const config = new T5Config({ vocab_size: 32, d_model: 8, d_kv: 4, d_ff: 16, num_heads: 2, num_layers: 1 });
  const model = new T5ForConditionalGeneration(config, { seed: 1 });
  try {
    const out = await encoderPass(model, [[3, 4, 1]], [[1, 1, 1]], true);
    assert.ok(!out.kernels.has(GRAPH_KERNEL));
  } finally {
    model.dispose();
  }
});

test('graphs read the threaded wasm build (shared memory) through copies', { skip: NO_ORT }, async () => {
  const { initBackend } = await import('../src/engine/init.js');
  const info = await initBackend('wasm', { wasmBuild: 'threaded-simd', threads: 2, nativeMatmul: true });
  assert.equal(info.wasmBuild, 'threaded-simd');
  const config = new T5Config({ vocab_size: 64, d_model: 16, d_kv: 4, d_ff: 24, num_heads: 4, num_layers: 2, relative_attention_num_buckets: 8 });
  const model = new T5ForConditionalGeneration(config, { seed: 5 });
  try {
    const ids = [[4, 8, 15, 16, 23, 1], [42, 1, 0, 0, 0, 0]];
    const mask = [[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]];
    const native = await encoderPass(model, ids, mask, true);
    const ops = await encoderPass(model, ids, mask, false);
    assert.ok(native.kernels.has(GRAPH_KERNEL));
    assertSame(native.values, ops.values, 'threaded build');
  } finally {
    model.dispose();
  }
});

test('when ONNX Runtime fails on a graph, inference warns once and continues on tfjs kernels', { skip: NO_ORT }, async () => {
  const { initBackend } = await import('../src/engine/init.js');
  const info = await initBackend('wasm', { nativeMatmul: true, threads: 2 });
  const loaded = loadOrtMatMul(info.threads);
  assert.ok(loaded.ok);
  const runtime = loaded.ort as { runGraph: (...args: unknown[]) => void };
  const original = runtime.runGraph;
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  const config = new T5Config({ vocab_size: 64, d_model: 16, d_kv: 4, d_ff: 24, num_heads: 4, num_layers: 2, relative_attention_num_buckets: 8 });
  const model = new T5ForConditionalGeneration(config, { seed: 9 });
  const args = { inputIds: [[4, 8, 15, 1]], decoderInputIds: [[0, 5, 6]] };
  try {
    nativeGraphs.enabled = false;
    const want = tf.tidy(() => model.forward(args).logits.dataSync());
    nativeGraphs.enabled = true;
    runtime.runGraph = () => {
      throw new Error('Could not find an implementation for MultiHeadAttention(1) node');
    };
    const before = tf.memory().numTensors;
    const got = tf.tidy(() => model.forward(args).logits.dataSync());
    assert.equal(tf.memory().numTensors, before, 'the failed graph call leaks tensors');
    assert.equal(maxAbsDiff(got, want), 0);
    assert.equal(nativeGraphs.enabled, false);
    assert.equal(nativeGraphAvailable(), false);
    await new Promise((r) => setImmediate(r));
    assert.equal(warnings.length, 1, warnings.join('; '));
    assert.match(warnings[0]!, /ONNX Runtime could not run the encoder graph \(Could not find an implementation for MultiHeadAttention\(1\) node\); inference continues on tfjs kernels/);
  } finally {
    runtime.runGraph = original;
    nativeGraphs.enabled = true;
    process.off('warning', onWarning);
    model.dispose();
  }
});

test('graphFeeds orders named tensors and parameters as the graph declares them, and refuses a wrong or missing name', () => {
  const c = new T5Config({ vocab_size: 8, d_model: 4, d_kv: 2, d_ff: 8, num_layers: 1, num_decoder_layers: 1, num_heads: 2 });
  const graph = encoderGraph(c);
  const feeds = graphFeeds(graph, { bias: 'B', embedded: 'E' }, (name) => `p:${name}`);
  assert.deepEqual(feeds.slice(0, 2), ['E', 'B']);
  assert.deepEqual(feeds.slice(2), graph.parameters.map((n) => `p:${n}`));
  assert.ok(graph.parameters.includes('encoder.block.0.layer.0.SelfAttention.q.weight'));
  assert.throws(() => graphFeeds(graph, { embedded: 'E' }, (n) => n), /input "bias" was not given/);
  assert.throws(() => graphFeeds(graph, { embedded: 'E', bias: 'B', self_bias: 'S' }, (n) => n), /"self_bias" is not one of its tensor inputs/);
});
