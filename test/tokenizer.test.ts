import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
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
  await assert.rejects(T5Tokenizer.fromPretrained(empty), (e) => assertOneLineError(e, UsageError, path.join(empty, 'spiece.model')));

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
