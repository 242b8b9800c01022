import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import protobuf from 'protobufjs';
import { T5Tokenizer } from '../src/tokenizer/index.js';
import { FormatError, UsageError } from '../src/errors.js';
import { FIXTURES, TOKENIZER_DIR } from './helpers/fixtures.js';

interface IdsLine {
  text: string;
  ids: number[];
}

const FIXTURE_FILE = path.join(FIXTURES, 'tokenizer/t5-spiece-ids.jsonl');
const lines: IdsLine[] = fs
  .readFileSync(FIXTURE_FILE, 'utf-8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l) as IdsLine);

let tok: T5Tokenizer;
let tmp: string;

before(async () => {
  tok = await T5Tokenizer.fromPretrained(TOKENIZER_DIR);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-tokenizer-'));
});

after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function byText(text: string): IdsLine {
  const line = lines.find((l) => l.text === text);
  assert.ok(line, `fixture has no line ${JSON.stringify(text)}`);
  return line;
}

test('encode matches the reference SentencePiece ids + EOS on every fixture line', () => {
  assert.ok(lines.length > 3000, `only ${lines.length} fixture lines`);
  const mismatches: string[] = [];
  for (const [i, { text, ids }] of lines.entries()) {
    const got = tok.encode(text);
    if (got.length !== ids.length || got.some((v, j) => v !== ids[j])) {
      mismatches.push(`line ${i + 1} ${JSON.stringify(text)}: got [${got}] want [${ids}]`);
    }
  }
  assert.equal(mismatches.length, 0, `${mismatches.length}/${lines.length} mismatches:\n${mismatches.slice(0, 5).join('\n')}`);
});

test('vocabulary sizes and special ids are those of HF T5Tokenizer', () => {
  assert.equal(tok.spVocabSize, 32000);
  assert.equal(tok.extraIds, 100);
  assert.equal(tok.vocabSize, 32100);
  assert.equal(tok.padTokenId, 0);
  assert.equal(tok.eosTokenId, 1);
  assert.equal(tok.unkTokenId, 2);
  assert.equal(tok.modelMaxLength, 512);
  assert.deepEqual([0, 1, 2].map((i) => tok.idToPiece(i)), ['<pad>', '</s>', '<unk>']);
  assert.equal(tok.idToPiece(32099), '<extra_id_0>');
  assert.equal(tok.idToPiece(32000), '<extra_id_99>');
  // "hello world" → [21820, 296, 1] in the fixture.
  assert.equal(tok.idToPiece(21820), '▁hello');
  assert.equal(tok.pieceToId('▁world'), 296);
  assert.equal(tok.pieceToId('<extra_id_5>'), 32094);
  assert.equal(tok.pieceToId('</s>'), 1);
  assert.equal(tok.pieceToId('no-such-piece-in-the-vocabulary'), 2);
  assert.equal(tok.sentinelId(0), 32099);
  assert.equal(tok.sentinelId(99), 32000);
  assert.throws(() => tok.sentinelId(100), UsageError);
  assert.throws(() => tok.idToPiece(32100), UsageError);
});

test('sentinels written in the text become their ids, as HF T5Tokenizer gives them', () => {
  // Outputs of HF's T5Tokenizer (t5-small) quoted in public test suites.
  assert.deepEqual(tok.encode('The <extra_id_0> walks in <extra_id_1> park'), [37, 32099, 10681, 16, 32098, 2447, 1]);
  assert.deepEqual(tok.encode('The <extra_id_0> barked'), [37, 32099, 1207, 5100, 1]);
  assert.deepEqual(tok.encode('<extra_id_0> cute dog <extra_id_1> the <extra_id_2>'), [32099, 5295, 1782, 32098, 8, 32097, 1]);
  assert.deepEqual(tok.encode('<extra_id_5>'), [32094, 1]);
  assert.deepEqual(tok.encode('<extra_id_99>'), [32000, 1]);
  // Each piece of text around a sentinel is encoded on its own: "world" gets the "▁world" piece (296).
  assert.deepEqual(tok.encode('hello <extra_id_5>world'), [21820, 32094, 296, 1]);
  // Not a sentinel of this tokenizer: plain text.
  const notSentinel = tok.encode('<extra_id_100>');
  assert.ok(notSentinel.length > 3 && notSentinel.every((id) => id < 32000), `got [${notSentinel}]`);
  // A literal EOS is the EOS id, and HF then appends no second one.
  assert.deepEqual(tok.encode('hello world</s>'), [21820, 296, 1]);
  assert.deepEqual(tok.encode('<pad>hello'), [0, 21820, 1]);
});

test('encode options: no EOS, truncation keeping EOS, batch', () => {
  const { text, ids } = byText('How are you doing?');
  assert.deepEqual(tok.encode(text, { addSpecialTokens: false }), ids.slice(0, -1));
  assert.deepEqual(tok.encode(text, { maxLength: 4 }), [...ids.slice(0, 3), 1]);
  assert.deepEqual(tok.encode(text, { maxLength: 1 }), [1]);
  assert.deepEqual(tok.encode(text, { maxLength: 100 }), ids);
  assert.deepEqual(tok.encode(text, { maxLength: 2, addSpecialTokens: false }), ids.slice(0, 2));
  assert.throws(() => tok.encode(text, { maxLength: 0 }), UsageError);
  const batch = lines.slice(0, 20);
  assert.deepEqual(tok.encodeBatch(batch.map((l) => l.text)), batch.map((l) => l.ids));
  assert.deepEqual(tok.encode(''), [1]);
});

test('decode skips special tokens and gives the normalised text', () => {
  const cases: [string, string][] = [
    ['hello world', 'hello world'],
    ['Hello World', 'Hello World'],
    ['How are you doing?', 'How are you doing?'],
    ['  leading and  double  spaces ', 'leading and double spaces'],
    ['tab\tseparated', 'tab separated'],
    ['line\nbreak', 'line break'],
    // ï is unknown to T5's vocabulary: its <unk> is dropped.
    ['café naïve résumé', 'café nave résumé'],
    ['€100 and $5.99', '€100 and $5.99'],
  ];
  for (const [text, want] of cases) assert.equal(tok.decode(byText(text).ids), want, JSON.stringify(text));
  assert.equal(tok.decode([1, 0, 0]), '');
  assert.equal(tok.decode([37, 32099, 10681, 16, 32098, 2447, 1]), 'The walks in park');
  assert.throws(() => tok.decode([21820, 32100]), UsageError);
  assert.throws(() => tok.decode([-1]), UsageError);
});

test('decode round trip on plain ASCII tweets', () => {
  // Lines whose text SentencePiece keeps as is, apart from runs of spaces, and that HF's clean-up leaves alone.
  const plain = lines.filter(
    ({ text, ids }) =>
      /^[\x20-\x7e\s]*$/.test(text) && !/ [.?!,']/.test(text) && !ids.includes(2) && text.trim() !== '',
  );
  assert.ok(plain.length > 1000, `only ${plain.length} plain lines`);
  const bad: string[] = [];
  for (const { text, ids } of plain) {
    const want = text.trim().split(/\s+/).join(' ');
    const got = tok.decode(ids);
    if (got !== want) bad.push(`${JSON.stringify(want)} → ${JSON.stringify(got)}`);
    else if (tok.decode(tok.encode(got)) !== want) bad.push(`second round trip of ${JSON.stringify(want)}`);
  }
  assert.equal(bad.length, 0, `${bad.length}/${plain.length} differ:\n${bad.slice(0, 5).join('\n')}`);
});

test('decode applies HF clean_up_tokenization_spaces unless turned off', () => {
  const ids = tok.encode("Wait , what ? No ! I do n't know .");
  assert.equal(tok.decode(ids), "Wait, what? No! I don't know.");
  assert.equal(tok.decode(ids, { cleanUpTokenizationSpaces: false }), "Wait , what ? No ! I do n't know .");
});

test('decode keeping special tokens follows HF T5Tokenizer', () => {
  // "The<extra_id_0> dog walks<extra_id_1> park<extra_id_2></s>" is what HF printed for these ids.
  const ids = [37, 32099, 1782, 10681, 32098, 2447, 32097, 1];
  assert.equal(tok.decode(ids, { skipSpecialTokens: false }), 'The<extra_id_0> dog walks<extra_id_1> park<extra_id_2></s>');
  const green = tok.encode('green', { addSpecialTokens: false });
  const labels = [32099, 5295, 32098, 16, 8, ...green, 32097, 1, 1];
  assert.equal(tok.decode(labels, { skipSpecialTokens: false }), '<extra_id_0> cute<extra_id_1> in the green<extra_id_2></s></s>');
  assert.equal(tok.decode([21820, 296, 1], { skipSpecialTokens: false }), 'hello world</s>');
});

test('several tokenizers load side by side and leave no process handlers behind', async () => {
  const before = [process.listenerCount('uncaughtException'), process.listenerCount('unhandledRejection')];
  const [a, b] = await Promise.all([T5Tokenizer.fromPretrained(TOKENIZER_DIR), T5Tokenizer.fromPretrained(TOKENIZER_DIR)]);
  const sample = lines.slice(0, 50);
  for (const t of [a, b, tok]) assert.deepEqual(t.encodeBatch(sample.map((l) => l.text)), sample.map((l) => l.ids));
  assert.equal(a.decode(sample[0].ids), b.decode(sample[0].ids));
  assert.deepEqual([process.listenerCount('uncaughtException'), process.listenerCount('unhandledRejection')], before);
});

test('savePretrained writes the folder as HF does', async () => {
  const out = path.join(tmp, 'saved');
  tok.savePretrained(out);
  for (const f of ['spiece.model', 'tokenizer.json']) {
    assert.ok(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(TOKENIZER_DIR, f))), `${f} differs`);
  }
  // The reference folder was written by HF's save_pretrained: same JSON, and even the same bytes.
  for (const f of ['tokenizer_config.json', 'special_tokens_map.json']) {
    const got = fs.readFileSync(path.join(out, f), 'utf-8');
    const want = fs.readFileSync(path.join(TOKENIZER_DIR, f), 'utf-8');
    assert.deepEqual(JSON.parse(got), JSON.parse(want), f);
    assert.equal(got, want, `${f} bytes`);
  }
  const again = await T5Tokenizer.fromPretrained(out);
  const { text, ids } = lines[20];
  assert.deepEqual(again.encode(text), ids);
  assert.equal(again.vocabSize, 32100);

  // A folder with only spiece.model: defaults, and no tokenizer.json to copy.
  const bare = path.join(tmp, 'bare');
  fs.mkdirSync(bare);
  fs.copyFileSync(path.join(TOKENIZER_DIR, 'spiece.model'), path.join(bare, 'spiece.model'));
  const fromBare = await T5Tokenizer.fromPretrained(bare);
  assert.equal(fromBare.modelMaxLength, undefined);
  assert.equal(fromBare.vocabSize, 32100);
  const bareOut = path.join(tmp, 'bare-saved');
  fromBare.savePretrained(bareOut);
  assert.deepEqual(fs.readdirSync(bareOut).sort(), ['special_tokens_map.json', 'spiece.model', 'tokenizer_config.json']);
  const cfg = JSON.parse(fs.readFileSync(path.join(bareOut, 'tokenizer_config.json'), 'utf-8'));
  assert.equal(cfg.extra_ids, 100);
  assert.equal(cfg.tokenizer_class, 'T5Tokenizer');
  assert.equal(cfg.added_tokens_decoder['32099'].content, '<extra_id_0>');
  assert.equal('model_max_length' in cfg, false);
});

function assertOneLineError(err: unknown, cls: typeof UsageError | typeof FormatError, mentions: string): boolean {
  assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
  assert.equal((err as UsageError).exitCode, 2);
  assert.ok(!err.message.includes('\n'), `not one line: ${err.message}`);
  assert.ok(err.message.includes(mentions), `"${err.message}" does not name ${mentions}`);
  return true;
}

test('clear errors for a missing or unreadable spiece.model', async () => {
  const missingDir = path.join(tmp, 'no-such-folder');
  await assert.rejects(T5Tokenizer.fromPretrained(missingDir), (e) => assertOneLineError(e, UsageError, missingDir));

  const empty = path.join(tmp, 'empty');
  fs.mkdirSync(empty);
  await assert.rejects(T5Tokenizer.fromPretrained(empty), (e) => {
    assertOneLineError(e, UsageError, empty);
    return assertOneLineError(e, UsageError, 'spiece.model') && assertOneLineError(e, UsageError, 'tokenizer.json');
  });

  const notFile = path.join(tmp, 'dir-model');
  fs.mkdirSync(path.join(notFile, 'spiece.model'), { recursive: true });
  await assert.rejects(T5Tokenizer.fromPretrained(notFile), (e) => assertOneLineError(e, FormatError, path.join(notFile, 'spiece.model')));

  for (const [name, content] of [
    ['garbage', Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02])],
    ['text', Buffer.from('this is not a sentencepiece model\n')],
    ['zero', Buffer.alloc(0)],
  ] as const) {
    const dir = path.join(tmp, `bad-${name}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'spiece.model'), content);
    await assert.rejects(T5Tokenizer.fromPretrained(dir), (e) => assertOneLineError(e, FormatError, path.join(dir, 'spiece.model')));
  }

  const badConfig = path.join(tmp, 'bad-config');
  fs.mkdirSync(badConfig);
  fs.copyFileSync(path.join(TOKENIZER_DIR, 'spiece.model'), path.join(badConfig, 'spiece.model'));
  fs.writeFileSync(path.join(badConfig, 'tokenizer_config.json'), '{"extra_ids": -3}');
  await assert.rejects(T5Tokenizer.fromPretrained(badConfig), (e) => assertOneLineError(e, FormatError, 'tokenizer_config.json'));
});

// ---------------------------------------------------------------------------------------------------------------
// A folder with tokenizer.json and no spiece.model (what HF transformers 5.x saves): the SentencePiece model is
// rebuilt from tokenizer.json and must encode exactly as the real one.

const realTokenizerJson = () => JSON.parse(fs.readFileSync(path.join(TOKENIZER_DIR, 'tokenizer.json'), 'utf-8'));

/** A folder holding `tokenizerJson` and, when given, `config` as tokenizer_config.json. */
function jsonOnlyFolder(name: string, tokenizerJson: unknown, config?: Record<string, unknown>): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
  if (config) fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2));
  return dir;
}

/** The t5-small tokenizer folder without spiece.model. */
function copyWithoutSpiece(name: string): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  for (const f of fs.readdirSync(TOKENIZER_DIR)) if (f !== 'spiece.model') fs.copyFileSync(path.join(TOKENIZER_DIR, f), path.join(dir, f));
  assert.ok(fs.existsSync(path.join(dir, 'tokenizer.json')));
  return dir;
}

/** tokenizer_config.json as transformers 5.x writes it for T5 (`extra_special_tokens`, `backend`). */
function hf5Config(withExtraIds: boolean): Record<string, unknown> {
  return {
    backend: 'tokenizers',
    clean_up_tokenization_spaces: true,
    eos_token: '</s>',
    ...(withExtraIds ? { extra_ids: 100 } : {}),
    extra_special_tokens: Array.from({ length: 100 }, (_, n) => `<extra_id_${n}>`),
    is_local: true,
    model_max_length: 512,
    pad_token: '<pad>',
    tokenizer_class: 'T5Tokenizer',
    unk_token: '<unk>',
  };
}

function encodingMismatches(t: T5Tokenizer, sample: IdsLine[] = lines): string[] {
  const out: string[] = [];
  for (const [i, { text, ids }] of sample.entries()) {
    const got = t.encode(text);
    if (got.length !== ids.length || got.some((v, j) => v !== ids[j])) out.push(`line ${i + 1} ${JSON.stringify(text)}: got [${got}] want [${ids}]`);
  }
  return out;
}

function assertSameTokenizer(t: T5Tokenizer): void {
  const bad = encodingMismatches(t);
  assert.equal(bad.length, 0, `${bad.length}/${lines.length} mismatches:\n${bad.slice(0, 5).join('\n')}`);
  for (const [i, { ids }] of lines.entries()) {
    assert.equal(t.decode(ids), tok.decode(ids), `decode of line ${i + 1}`);
    assert.equal(t.decode(ids, { skipSpecialTokens: false }), tok.decode(ids, { skipSpecialTokens: false }), `decode of line ${i + 1}`);
  }
  assert.deepEqual(
    [t.spVocabSize, t.extraIds, t.vocabSize, t.padTokenId, t.eosTokenId, t.unkTokenId, t.modelMaxLength],
    [32000, 100, 32100, 0, 1, 2, 512],
  );
  const differing = Array.from({ length: tok.vocabSize }, (_, id) => id).filter((id) => t.idToPiece(id) !== tok.idToPiece(id));
  assert.deepEqual(differing, []);
  assert.deepEqual(t.encode('The <extra_id_0> walks in <extra_id_1> park'), [37, 32099, 10681, 16, 32098, 2447, 1]);
}

let jsonOnly: Promise<T5Tokenizer> | undefined;
/** The tokenizer of the t5-small folder without spiece.model, loaded once. */
function jsonOnlyTokenizer(): Promise<T5Tokenizer> {
  jsonOnly ??= T5Tokenizer.fromPretrained(copyWithoutSpiece('json-only'));
  return jsonOnly;
}

test('a folder with tokenizer.json and no spiece.model encodes, decodes and has the vocabulary of spiece.model', async () => {
  assertSameTokenizer(await jsonOnlyTokenizer());
});

test('a folder as HF transformers 5.x saves it: tokenizer.json and a 5.x tokenizer_config.json', async () => {
  for (const withExtraIds of [true, false]) {
    const dir = jsonOnlyFolder(`hf5-${withExtraIds}`, realTokenizerJson(), hf5Config(withExtraIds));
    assert.deepEqual(fs.readdirSync(dir).sort(), ['tokenizer.json', 'tokenizer_config.json']);
    assertSameTokenizer(await T5Tokenizer.fromPretrained(dir));
  }
});

// The fields of sentencepiece_model.proto that decide encoding, with SentencePiece's defaults; enums as int32.
const spProto = protobuf.parse(
  `
  syntax = "proto2";
  message SentencePiece { optional string piece = 1; optional float score = 2; optional int32 type = 3 [default = 1]; }
  message TrainerSpec { optional int32 model_type = 3 [default = 1]; optional int32 vocab_size = 4 [default = 8000];
    optional bool treat_whitespace_as_suffix = 24 [default = false]; optional bool byte_fallback = 35 [default = false];
    optional int32 unk_id = 40 [default = 0]; optional int32 bos_id = 41 [default = 1]; optional int32 eos_id = 42 [default = 2];
    optional int32 pad_id = 43 [default = -1]; }
  message NormalizerSpec { optional string name = 1; optional bytes precompiled_charsmap = 2;
    optional bool add_dummy_prefix = 3 [default = true]; optional bool remove_extra_whitespaces = 4 [default = true];
    optional bool escape_whitespaces = 5 [default = true]; }
  message ModelProto { repeated SentencePiece pieces = 1; optional TrainerSpec trainer_spec = 2;
    optional NormalizerSpec normalizer_spec = 3; }
`,
  { keepCase: true },
).root.lookupType('ModelProto');

interface DecodedSpModel {
  pieces: { piece: string; score: number; type: number }[];
  trainer_spec: Record<string, number | boolean>;
  normalizer_spec: { name: string; precompiled_charsmap: Uint8Array; add_dummy_prefix: boolean; remove_extra_whitespaces: boolean; escape_whitespaces: boolean };
}

function decodeSpModel(bytes: Uint8Array): DecodedSpModel {
  return spProto.toObject(spProto.decode(bytes), { defaults: true }) as unknown as DecodedSpModel;
}

test('the rebuilt ModelProto has the pieces, scores, types and normalizer of the real spiece.model', async () => {
  const fromJson = await jsonOnlyTokenizer();
  const real = decodeSpModel(fs.readFileSync(path.join(TOKENIZER_DIR, 'spiece.model')));
  const rebuilt = decodeSpModel(fromJson.spModel());
  assert.equal(rebuilt.pieces.length, 32000);
  const differing = real.pieces.flatMap((p, i) => {
    const q = rebuilt.pieces[i]!;
    return p.piece === q.piece && p.score === q.score && p.type === q.type ? [] : [`${i}: ${JSON.stringify(q)} want ${JSON.stringify(p)}`];
  });
  assert.deepEqual(differing, []);
  assert.deepEqual(rebuilt.pieces.slice(0, 4).map((p) => p.type), [3, 3, 2, 1]);

  const { name, precompiled_charsmap, ...flags } = rebuilt.normalizer_spec;
  const { name: realName, precompiled_charsmap: realCharsmap, ...realFlags } = real.normalizer_spec;
  assert.ok(precompiled_charsmap.length > 100_000 && Buffer.from(precompiled_charsmap).equals(realCharsmap), 'precompiled_charsmap differs');
  assert.deepEqual(flags, realFlags);
  assert.deepEqual(flags, { add_dummy_prefix: true, remove_extra_whitespaces: true, escape_whitespaces: true });
  // tokenizer.json does not say which rule built the charsmap; a loaded model does not use the name.
  assert.deepEqual([realName, name], ['nmt_nfkc', '']);

  assert.deepEqual(rebuilt.trainer_spec, real.trainer_spec);
  assert.deepEqual(rebuilt.trainer_spec, {
    model_type: 1,
    vocab_size: 32000,
    treat_whitespace_as_suffix: false,
    byte_fallback: false,
    unk_id: 2,
    bos_id: -1,
    eos_id: 1,
    pad_id: 0,
  });
});

test('tokenizer.json variants SentencePiece can express: the same model, no charsmap, no dummy prefix', async () => {
  const sample = lines.slice(0, 300);
  // The older HF converter's shape: the collapsing of spaces as a Replace after Precompiled, no WhitespaceSplit.
  const older = realTokenizerJson();
  older.normalizer = {
    type: 'Sequence',
    normalizers: [older.normalizer, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }],
  };
  older.pre_tokenizer = { type: 'Metaspace', replacement: '▁', add_prefix_space: true };
  const fromOlder = await T5Tokenizer.fromPretrained(jsonOnlyFolder('older-shape', older));
  assert.deepEqual(encodingMismatches(fromOlder, sample), []);
  assert.deepEqual(decodeSpModel(fromOlder.spModel()).normalizer_spec.remove_extra_whitespaces, true);

  // No Precompiled normalizer: SentencePiece's identity, so full-width letters are no longer folded to ASCII.
  const identity = realTokenizerJson();
  identity.normalizer = null;
  const fromIdentity = await T5Tokenizer.fromPretrained(jsonOnlyFolder('identity', identity));
  assert.deepEqual(tok.encode('ｈｅｌｌｏ'), tok.encode('hello'));
  assert.notDeepEqual(fromIdentity.encode('ｈｅｌｌｏ'), tok.encode('hello'));
  assert.deepEqual(fromIdentity.encode('hello world'), [21820, 296, 1]);
  assert.equal(decodeSpModel(fromIdentity.spModel()).normalizer_spec.name, 'identity');

  // prepend_scheme "never": no dummy prefix, so "hello" is not the word "▁hello".
  const never = realTokenizerJson();
  never.pre_tokenizer.pretokenizers[1].prepend_scheme = 'never';
  const fromNever = await T5Tokenizer.fromPretrained(jsonOnlyFolder('never', never));
  assert.equal(decodeSpModel(fromNever.spModel()).normalizer_spec.add_dummy_prefix, false);
  const ids = fromNever.encode('hello world');
  assert.ok(ids[0] !== 21820 && !fromNever.idToPiece(ids[0]!).startsWith('▁'), `got [${ids}]`);
});

test('a tokenizer.json that SentencePiece cannot reproduce fails with a one-line error naming the field', async () => {
  type Edit = (json: any) => void;
  const cases: [string, Edit, string][] = [
    ['bpe', (j) => (j.model.type = 'BPE'), 'model.type'],
    ['nfkc', (j) => (j.normalizer = { type: 'NFKC' }), 'normalizer.type'],
    ['lowercase', (j) => (j.normalizer = { type: 'Sequence', normalizers: [j.normalizer, { type: 'Lowercase' }] }), 'normalizer.normalizers[1].type'],
    ['replace', (j) => (j.normalizer = { type: 'Replace', pattern: { String: 'a' }, content: 'b' }), '"normalizer"'],
    ['charsmap', (j) => (j.normalizer.precompiled_charsmap = 'not base64!'), 'normalizer.precompiled_charsmap'],
    ['byte-level', (j) => (j.pre_tokenizer = { type: 'ByteLevel' }), 'pre_tokenizer.type'],
    ['no-pre-tokenizer', (j) => (j.pre_tokenizer = null), '"pre_tokenizer"'],
    ['replacement', (j) => (j.pre_tokenizer.pretokenizers[1].replacement = '_'), 'pre_tokenizer.pretokenizers[1].replacement'],
    ['byte-fallback', (j) => (j.model.byte_fallback = true), 'model.byte_fallback'],
    ['no-unk', (j) => (j.model.unk_id = null), 'model.unk_id'],
    ['vocab', (j) => (j.model.vocab[7] = ['x']), 'model.vocab[7]'],
    ['added-beyond', (j) => j.added_tokens.push({ id: 32100, content: '<new>', special: true }), 'added_tokens'],
    ['sentinel-order', (j) => ([j.model.vocab[32000][0], j.model.vocab[32001][0]] = [j.model.vocab[32001][0], j.model.vocab[32000][0]]), 'added_tokens'],
  ];
  for (const [name, edit, field] of cases) {
    const json = realTokenizerJson();
    edit(json);
    if (name === 'sentinel-order') for (const t of json.added_tokens) t.content = json.model.vocab[t.id][0];
    const dir = jsonOnlyFolder(`bad-json-${name}`, json);
    await assert.rejects(T5Tokenizer.fromPretrained(dir), (e) => {
      assertOneLineError(e, FormatError, path.join(dir, 'tokenizer.json'));
      return assertOneLineError(e, FormatError, field);
    }, name);
  }

  const mismatch = jsonOnlyFolder('bad-extra-ids', realTokenizerJson(), { extra_ids: 50 });
  await assert.rejects(T5Tokenizer.fromPretrained(mismatch), (e) => assertOneLineError(e, FormatError, 'tokenizer_config.json'));
  const broken = path.join(tmp, 'bad-json-syntax');
  fs.mkdirSync(broken);
  fs.writeFileSync(path.join(broken, 'tokenizer.json'), '{"model": ');
  await assert.rejects(T5Tokenizer.fromPretrained(broken), (e) => assertOneLineError(e, FormatError, path.join(broken, 'tokenizer.json')));
});

test('savePretrained from a tokenizer.json-only tokenizer writes the rebuilt spiece.model beside tokenizer.json', async () => {
  const fromJson = await jsonOnlyTokenizer();
  const out = path.join(tmp, 'json-only-saved');
  fromJson.savePretrained(out);
  assert.deepEqual(fs.readdirSync(out).sort(), ['special_tokens_map.json', 'spiece.model', 'tokenizer.json', 'tokenizer_config.json']);
  assert.ok(fs.readFileSync(path.join(out, 'spiece.model')).equals(fromJson.spModel()));
  assert.ok(fs.readFileSync(path.join(out, 'tokenizer.json')).equals(fs.readFileSync(path.join(TOKENIZER_DIR, 'tokenizer.json'))));
  // The saved folder loads through its spiece.model, and still gives the reference ids.
  fs.rmSync(path.join(out, 'tokenizer.json'));
  const again = await T5Tokenizer.fromPretrained(out);
  assert.deepEqual(encodingMismatches(again), []);
  assert.equal(again.vocabSize, 32100);

  // Saved into the folder it came from, it adds the spiece.model that folder lacked.
  const hf5 = jsonOnlyFolder('hf5-save-in-place', realTokenizerJson(), hf5Config(true));
  (await T5Tokenizer.fromPretrained(hf5)).savePretrained(hf5);
  assert.ok(fs.readFileSync(path.join(hf5, 'spiece.model')).equals(fromJson.spModel()));
  assert.equal(JSON.parse(fs.readFileSync(path.join(hf5, 'tokenizer_config.json'), 'utf-8')).extra_ids, 100);
});
