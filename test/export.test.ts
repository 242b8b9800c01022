/**
 * `t5cls export` against transformers.js v4 (@huggingface/transformers, loading the folder from local files only):
 *
 * - the PyTorch fixtures (t5-tiny: relu, tied head; t5-tiny-v11: gated-gelu, untied head; t5-tiny-long: log-spaced
 *   position buckets) exported with the genuine T5 tokenizer: decoder logits against the fixture's and t5cls's own
 *   within 1e-4, one step at a time through the key/value cache too, and greedy generation against both;
 * - the ONNX files decoded with protobufjs: standard operators at opset 17 only, the inputs and outputs
 *   transformers.js feeds and reads, weights stored as the checkpoint has them;
 * - the CLI (bin/t5cls.js over dist/: run `npm run build` first) on a checkpoint trained here: `pipeline(
 *   'text2text-generation')` on the export gives the text `t5cls predict --decode generate` gives.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../src/tf.js';
import { initBackend } from '../src/engine/init.js';
import { T5ForConditionalGeneration } from '../src/model/modeling_t5.js';
import { relativePositionBucket } from '../src/model/layers.js';
import { T5Tokenizer } from '../src/tokenizer/index.js';
import { openSafetensorsFile } from '../src/safetensors.js';
import { UsageError } from '../src/errors.js';
import { exportCheckpoint, DECODER_FILE, DECODER_Q8_FILE, ENCODER_FILE, ENCODER_Q8_FILE, type ExportMeta } from '../src/export/index.js';
import { positionTableValues } from '../src/export/t5_weights.js';
import { quantizeInt8 } from '../src/export/quantize.js';
import { fixtureDir, maxAbsDiff, readJson, REPO_ROOT, tempDirs, TOKENIZER_DIR } from './helpers/fixtures.js';
import { allNodes, decodeOnnx, shapeOf } from './helpers/onnx_proto.js';
import { saveTinyClassifier, TINY_CLASSES, TINY_TRAIN } from './helpers/tiny_classifier.js';

type Transformers = typeof import('@huggingface/transformers');
const loaded = await import('@huggingface/transformers').then(
  (m): Transformers => m,
  (e: Error) => e,
);
// CI installs the devDependencies: there a missing transformers.js is a failure, not a skip.
const NO_TJS = loaded instanceof Error && !process.env.CI ? `@huggingface/transformers not loadable: ${loaded.message}` : false;
const tjs = loaded instanceof Error ? undefined : loaded;
if (tjs) tjs.env.allowRemoteModels = false;

const CLI = path.join(REPO_ROOT, 'bin/t5cls.js');
const temp = tempDirs('t5cls-export-');

/** The standard operators the export may use: every onnxruntime build (web included) has them at opset 17. */
const STANDARD_OPS = new Set([
  'Add', 'Cast', 'Clip', 'Concat', 'Erf', 'Gather', 'Gemm', 'Greater', 'Identity', 'If', 'MatMul', 'Mul', 'Range',
  'Reciprocal', 'ReduceMean', 'Relu', 'Reshape', 'Shape', 'Sigmoid', 'Slice', 'Softmax', 'Sqrt', 'Sub', 'Tanh',
  'Transpose', 'Unsqueeze',
]);

function int64(rows: number[][]) {
  return new tjs!.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0]!.length]);
}

function toNumbers(rows: unknown): number[][] {
  return (rows as bigint[][]).map((r) => r.map(Number));
}

after(() => temp.removeAll());

test('the position table gives every relative position the bucket HF gives it', () => {
  for (const [buckets, maxDistance] of [[8, 20], [32, 128]] as const) {
    for (const bidirectional of [true, false]) {
      // One head whose bias is its bucket id.
      const table = positionTableValues(Float32Array.from({ length: buckets }, (_, i) => i), bidirectional, buckets, maxDistance, 1);
      for (let r = -3 * maxDistance; r <= 3 * maxDistance; r++) {
        const row = Math.min(Math.max(r, -maxDistance), maxDistance) + maxDistance;
        assert.equal(table[row], relativePositionBucket(r, bidirectional, buckets, maxDistance), `relative position ${r}`);
      }
    }
  }
});

test('8-bit quantization: one scale per row or column, each value within half a step, zero channels kept', () => {
  const values = Float32Array.from([0.5, -1.27, 0, 0.3, 2.54, 0, -0.01, 0.02, 0]);
  for (const axis of [0, 1] as const) {
    const { q, scales } = quantizeInt8(values, 3, 3, axis);
    assert.equal(scales.length, 3);
    values.forEach((v, i) => {
      const scale = scales[axis === 0 ? Math.floor(i / 3) : i % 3]!;
      assert.ok(Math.abs(q[i]! * scale - v) <= scale / 2 + 1e-7, `axis ${axis}, value ${i}`);
    });
  }
  // The largest magnitude of a channel maps to ±127; an all-zero column gets scale 1.
  const byColumn = quantizeInt8(values, 3, 3, 1);
  assert.deepEqual([byColumn.q[0], byColumn.q[4], byColumn.scales[2], byColumn.q[2], byColumn.q[5], byColumn.q[8]], [127, 127, 1, 0, 0, 0]);
  const byRow = quantizeInt8(values, 3, 3, 0);
  assert.deepEqual([byRow.q[1], byRow.q[4], byRow.q[7]], [-127, 127, 127]);
});

for (const name of ['t5-tiny', 't5-tiny-v11', 't5-tiny-long', 't5-tiny-v11-hf5'] as const) {
  describe(`${name} exported and run by transformers.js`, { skip: NO_TJS }, () => {
    const fx = readJson(path.join(fixtureDir(name), 'fixture.json'));
    const { input_ids: inputIds, attention_mask: attentionMask, decoder_input_ids: decoderInputIds } = fx.inputs as Record<string, number[][]>;
    const vocab = fx.logits.shape[2] as number;
    const reference = (fx.logits.data as number[][][]).flat(2);
    let out: string;
    let model: Awaited<ReturnType<Transformers['AutoModelForSeq2SeqLM']['from_pretrained']>>;
    let ours: T5ForConditionalGeneration;
    /** t5cls's logits for the fixture's decoder inputs. */
    let oursLogits: Float32Array;

    before(async () => {
      await initBackend('wasm');
      out = path.join(temp.make(), 'export');
      await exportCheckpoint(fixtureDir(name), { out, tokenizer: TOKENIZER_DIR, classesMap: ['yes', 'no'], prefixText: '' });
      model = await tjs!.AutoModelForSeq2SeqLM.from_pretrained(out, { local_files_only: true });
      ours = T5ForConditionalGeneration.fromPretrained(fixtureDir(name));
      oursLogits = tf.tidy(() => ours.forward({ inputIds, attentionMask, decoderInputIds }).logits.dataSync() as Float32Array);
    });

    after(async () => {
      await model?.dispose();
      ours?.dispose();
    });

    test('decoder logits over the whole sequence agree with PyTorch and with t5cls within 1e-4', async () => {
      const output = await model({ input_ids: int64(inputIds), attention_mask: int64(attentionMask), decoder_input_ids: int64(decoderInputIds) });
      assert.deepEqual(output.logits.dims, fx.logits.shape);
      const logits = output.logits.data as Float32Array;
      assert.ok(maxAbsDiff(logits, reference) < 1e-4, `vs PyTorch: ${maxAbsDiff(logits, reference)}`);
      assert.ok(maxAbsDiff(logits, oursLogits) < 1e-4, `vs t5cls: ${maxAbsDiff(logits, oursLogits)}`);
    });

    test('the first decoder step (empty cache) and each cached step after it give the same logits', async () => {
      const ort = await import('onnxruntime-node');
      const encoder = await ort.InferenceSession.create(path.join(out, ENCODER_FILE));
      const decoder = await ort.InferenceSession.create(path.join(out, DECODER_FILE));
      const feedsI64 = (rows: number[][]) => new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0]!.length]);
      const { last_hidden_state: encoded } = await encoder.run({ input_ids: feedsI64(inputIds), attention_mask: feedsI64(attentionMask) });
      const batch = inputIds.length;
      const steps = decoderInputIds[0]!.length;
      const pastNames = decoder.inputNames.filter((n) => n.startsWith('past_key_values.'));
      let present: Record<string, unknown> = {};
      for (let s = 0; s < steps; s++) {
        const past = Object.fromEntries(
          pastNames.map((n) => {
            const heads = fx.config.num_heads as number;
            const empty = new ort.Tensor('float32', new Float32Array(0), [batch, heads, 0, fx.config.d_kv as number]);
            return [n, s === 0 ? empty : present[n.replace('past_key_values', 'present')]];
          }),
        );
        present = await decoder.run({
          ...past,
          encoder_attention_mask: feedsI64(attentionMask),
          input_ids: feedsI64(decoderInputIds.map((row) => [row[s]!])),
          encoder_hidden_states: encoded!,
          use_cache_branch: new ort.Tensor('bool', [s > 0], [1]),
        });
        const logits = (present.logits as { data: Float32Array }).data;
        const want = Array.from({ length: batch }, (_, b) => reference.slice((b * steps + s) * vocab, (b * steps + s + 1) * vocab)).flat();
        assert.ok(maxAbsDiff(logits, want) < 1e-4, `step ${s}: ${maxAbsDiff(logits, want)}`);
      }
      await encoder.release();
      await decoder.release();
    });

    test('greedy generation gives the token ids PyTorch and t5cls give', async () => {
      for (const [key, suppressTokens] of [['generation', []], ['generation_suppress_token_0', [0]]] as const) {
        const want = fx[key].sequences as number[][];
        const maxNewTokens = want[0]!.length - 1;
        const got = await model.generate({
          inputs: int64(inputIds),
          attention_mask: int64(attentionMask),
          max_new_tokens: maxNewTokens,
          ...(suppressTokens.length ? { suppress_tokens: [...suppressTokens] } : {}),
        });
        assert.deepEqual(toNumbers((got as { tolist(): unknown }).tolist()), want, key);
        assert.deepEqual(ours.generate({ inputIds, attentionMask, maxNewTokens, suppressTokens: [...suppressTokens] }), want, `${key} (t5cls)`);
      }
    });
  });
}

describe('the ONNX files', () => {
  let out: string;
  before(async () => {
    out = path.join(temp.make(), 'v11');
    await exportCheckpoint(fixtureDir('t5-tiny-v11'), { out, tokenizer: TOKENIZER_DIR, classesMap: ['yes', 'no'], quantize: true });
  });

  test('standard operators at opset 17 only, in the graphs and in the If branches', () => {
    for (const file of [ENCODER_FILE, DECODER_FILE, ENCODER_Q8_FILE, DECODER_Q8_FILE]) {
      const m = decodeOnnx(fs.readFileSync(path.join(out, file)));
      assert.equal(m.ir_version, 8);
      assert.equal(m.producer_name, 't5cls');
      assert.deepEqual(m.opset_import, [{ version: 17 }]);
      const ops = new Set(allNodes(m.graph).map((node) => node.op_type));
      assert.equal(ops.has('DequantizeLinear'), file.includes('quantized'), file);
      for (const node of allNodes(m.graph)) {
        assert.ok(STANDARD_OPS.has(node.op_type) || node.op_type === 'DequantizeLinear', `${file}: ${node.op_type}`);
        assert.equal(node.domain, undefined, `${file}: ${node.op_type} in domain ${node.domain}`);
      }
    }
  });

  test('--quantize: 8-bit files under the names transformers.js loads for dtype q8, under half the size, logits within 4%', { skip: NO_TJS }, async () => {
    for (const [fp32, q8] of [[ENCODER_FILE, ENCODER_Q8_FILE], [DECODER_FILE, DECODER_Q8_FILE]]) {
      const ratio = fs.statSync(path.join(out, q8)).size / fs.statSync(path.join(out, fp32)).size;
      assert.ok(ratio < 0.5, `${q8}: ${ratio} of ${fp32}`);
    }
    assert.equal(readJson(path.join(out, 'config.json'))['transformers.js_config'], undefined, 'browsers should default to the 8-bit files');
    const fx = readJson(path.join(fixtureDir('t5-tiny-v11'), 'fixture.json'));
    const model = await tjs!.AutoModelForSeq2SeqLM.from_pretrained(out, { local_files_only: true, dtype: 'q8' });
    try {
      const { input_ids, attention_mask, decoder_input_ids } = fx.inputs as Record<string, number[][]>;
      const output = await model({ input_ids: int64(input_ids), attention_mask: int64(attention_mask), decoder_input_ids: int64(decoder_input_ids) });
      const reference = (fx.logits.data as number[][][]).flat(2);
      const error = maxAbsDiff(output.logits.data as Float32Array, reference);
      const scale = Math.max(...reference.map(Math.abs));
      assert.ok(error > 0 && error < 0.04 * scale, `8-bit logits off by ${error} (largest logit ${scale})`);
    } finally {
      await model.dispose();
    }
  });

  test('the inputs and outputs transformers.js feeds and reads, with the shapes it sizes empty caches from', () => {
    const encoder = decodeOnnx(fs.readFileSync(path.join(out, ENCODER_FILE))).graph;
    assert.deepEqual(encoder.input.map((v) => [v.name, shapeOf(v)]), [
      ['input_ids', ['batch_size', 'encoder_sequence_length']],
      ['attention_mask', ['batch_size', 'encoder_sequence_length']],
    ]);
    assert.deepEqual(encoder.output.map((v) => [v.name, shapeOf(v)]), [['last_hidden_state', ['batch_size', 'encoder_sequence_length', 32]]]);
    const decoder = decodeOnnx(fs.readFileSync(path.join(out, DECODER_FILE))).graph;
    const past = [0, 1].flatMap((i) => ['decoder', 'encoder'].flatMap((part) => ['key', 'value'].map((kind) => `${i}.${part}.${kind}`)));
    assert.deepEqual(decoder.input.map((v) => v.name), [
      'encoder_attention_mask', 'input_ids', 'encoder_hidden_states', ...past.map((p) => `past_key_values.${p}`), 'use_cache_branch',
    ]);
    assert.deepEqual(decoder.output.map((v) => v.name), ['logits', ...past.map((p) => `present.${p}`)]);
    const pastKey = decoder.input.find((v) => v.name === 'past_key_values.1.decoder.key');
    assert.deepEqual(pastKey && shapeOf(pastKey), ['batch_size', 4, 'past_decoder_sequence_length', 8]);
    const useCache = decoder.input.find((v) => v.name === 'use_cache_branch');
    assert.deepEqual(useCache && [useCache.type.tensor_type.elem_type, shapeOf(useCache)], [9, [1]]);
  });

  test('weights are initializers holding the checkpoint\'s values (linear weights transposed), each stored once', () => {
    const { tensors } = openSafetensorsFile(path.join(fixtureDir('t5-tiny-v11'), 'model.safetensors'));
    const decoder = decodeOnnx(fs.readFileSync(path.join(out, DECODER_FILE))).graph;
    const names = decoder.initializer.map((t) => t.name);
    assert.equal(new Set(names).size, names.length);
    const init = (n: string) => {
      const t = decoder.initializer.find((x) => x.name === n);
      assert.ok(t?.raw_data, n);
      return { dims: t.dims, values: new Float32Array(Uint8Array.from(t.raw_data).buffer) };
    };
    const lmHead = init('lm_head.weight');
    assert.deepEqual(lmHead.dims, [128, 32]);
    assert.deepEqual(lmHead.values, tensors.get('lm_head.weight')!.read());
    const wo = init('decoder.block.1.layer.2.DenseReluDense.wo.weight.T');
    assert.deepEqual(wo.dims, [64, 32]);
    const stored = tensors.get('decoder.block.1.layer.2.DenseReluDense.wo.weight')!.read();
    for (let i = 0; i < 32; i++) for (let j = 0; j < 64; j++) assert.equal(wo.values[j * 32 + i], stored[i * 64 + j]);
  });
});

describe('the export folder', () => {
  test('config, generation config, tokenizer and t5cls.json as transformers.js and a page read them', async () => {
    const out = path.join(temp.make(), 'tiny');
    const files = await exportCheckpoint(fixtureDir('t5-tiny'), { out, tokenizer: TOKENIZER_DIR, classesMap: { no: 1, yes: 0 }, prefixText: 'classify: ', maxSourceLength: 48 });
    // The page's files (index.html, page/, spiece.model) are checked in export_page.test.ts.
    const pageFile = (f: string) => f === 'index.html' || f === 'spiece.model' || f.startsWith('page/');
    assert.deepEqual(files.map((f) => f.file).filter((f) => !pageFile(f)).sort(), [
      'config.json', 'generation_config.json', DECODER_FILE, ENCODER_FILE, 't5cls.json', 'tokenizer.json', 'tokenizer_config.json',
    ].sort());
    for (const f of files) assert.equal(fs.statSync(path.join(out, f.file)).size, f.bytes, f.file);
    const config = readJson(path.join(out, 'config.json'));
    assert.equal(config.model_type, 't5');
    assert.equal(config.is_encoder_decoder, true);
    assert.equal(config.prefix, 'classify: ');
    assert.deepEqual(config['transformers.js_config'], { dtype: 'fp32' });
    assert.equal(config.task_specific_params, undefined);
    assert.match(fs.readFileSync(path.join(out, 'config.json'), 'utf-8'), /"initializer_factor": 1\.0,/, 'float fields stay floats');
    const tokens = readJson(path.join(TOKENIZER_DIR, 'tokenizer.json'));
    assert.deepEqual(readJson(path.join(out, 'tokenizer.json')), tokens);
    assert.equal(readJson(path.join(out, 'tokenizer_config.json')).model_max_length, 48);
    const yesNoTokens = await T5Tokenizer.fromPretrained(TOKENIZER_DIR).then((t) => Math.max(t.encode('yes').length, t.encode('no').length));
    assert.deepEqual(readJson(path.join(out, 'generation_config.json')), { decoder_start_token_id: 0, eos_token_id: 1, pad_token_id: 0, max_new_tokens: yesNoTokens });
    const meta = readJson<ExportMeta>(path.join(out, 't5cls.json'));
    assert.deepEqual([meta.format, meta.prefix, meta.classes, meta.maxSourceLength, meta.checkpoint], ['t5cls-export', 'classify: ', ['yes', 'no'], 48, 't5-tiny']);
    // Exporting again replaces the earlier export and leaves no temp folder behind.
    await exportCheckpoint(fixtureDir('t5-tiny'), { out, tokenizer: TOKENIZER_DIR, classesMap: ['a', 'b'] });
    assert.deepEqual(readJson<ExportMeta>(path.join(out, 't5cls.json')).classes, ['a', 'b']);
    assert.deepEqual(fs.readdirSync(path.dirname(out)), ['tiny']);
  });

  test('a folder that holds something else is not overwritten; a tokenizer folder without tokenizer.json is refused', async () => {
    const dir = temp.make();
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');
    await assert.rejects(exportCheckpoint(fixtureDir('t5-tiny'), { out: dir, tokenizer: TOKENIZER_DIR, classesMap: ['a'] }), (e) => e instanceof UsageError && /holds something other than a t5cls export/.test(e.message));
    assert.deepEqual(fs.readdirSync(dir), ['notes.txt']);
    const noJson = temp.make();
    fs.copyFileSync(path.join(TOKENIZER_DIR, 'spiece.model'), path.join(noJson, 'spiece.model'));
    const out = path.join(temp.make(), 'x');
    await assert.rejects(exportCheckpoint(fixtureDir('t5-tiny'), { out, tokenizer: noJson, classesMap: ['a'] }), (e) => e instanceof UsageError && /no tokenizer\.json/.test(e.message));
    assert.equal(fs.existsSync(out), false);
    await assert.rejects(exportCheckpoint(fixtureDir('t5-tiny'), { out, tokenizer: TOKENIZER_DIR }), /has no t5cls\.json, so its classes are unknown/);
  });
});

describe('t5cls export on a trained checkpoint: pipeline(text2text-generation) = t5cls predict --decode generate', { skip: NO_TJS }, () => {
  const CLASSES = TINY_CLASSES;
  const TEXTS = [...TINY_TRAIN.map(([t]) => t), 'a completely new sentence about the weather', 'Ça va? 🙂'];
  let work: string;

  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: work, encoding: 'utf-8' });

  before(async () => {
    await initBackend('wasm');
    work = temp.make();
    await saveTinyClassifier(work);
  });

  test('export --help names its options', () => {
    const help = cli('export', '--help');
    assert.equal(help.status, 0, help.stderr);
    for (const flag of ['--weights-name', '--weights', '--out', '--tokenizer', '--classes-map', '--quantize']) assert.match(help.stdout, new RegExp(`${flag} `));
  });

  test('the export of the newest run\'s best checkpoint generates what predict generates, text by text', async (t) => {
    const exported = cli('export', '--quiet', '--quantize');
    assert.equal(exported.status, 0, exported.stderr);
    const out = path.join(work, 'exports', 'tiny-epoch1');
    assert.equal(exported.stdout.trim(), out);
    const predicted = cli('predict', '--decode', 'generate', '--format', 'json', '--quiet', ...TEXTS);
    assert.equal(predicted.status, 0, predicted.stderr);
    const want = predicted.stdout.trim().split('\n').map((line) => JSON.parse(line).generated as string);
    assert.ok(want.filter((t) => CLASSES.includes(t)).length >= 5, `the model should mostly generate class names: ${JSON.stringify(want)}`);
    const meta = readJson<ExportMeta>(path.join(out, 't5cls.json'));
    const generate = async (dtype: 'fp32' | 'q8') => {
      const generator = await tjs!.pipeline('text2text-generation', out, { local_files_only: true, dtype });
      try {
        // One text per call: transformers.js does not pad a finished row, so a batch may run on past a row's EOS.
        const texts: string[] = [];
        for (const text of TEXTS) texts.push(((await generator(text, { max_new_tokens: meta.maxNewTokens })) as { generated_text: string }[])[0]!.generated_text);
        return texts;
      } finally {
        await generator.dispose();
      }
    };
    assert.deepEqual(await generate('fp32'), want);
    // The 8-bit variant: how many outputs stay the same.
    const q8 = await generate('q8');
    const same = q8.filter((text, i) => text === want[i]).length;
    t.diagnostic(`8-bit export: ${same} of ${TEXTS.length} outputs as float32's`);
    assert.ok(same >= TEXTS.length - 2, `8-bit outputs ${JSON.stringify(q8)} vs ${JSON.stringify(want)}`);
  });
});
