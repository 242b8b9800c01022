/**
 * The SentencePiece model behind a Hugging Face `tokenizer.json` (what transformers 5.x saves for T5, with no
 * spiece.model), rebuilt so that the reference SentencePiece library encodes with it exactly as with the original:
 *
 * - `model` (Unigram): `vocab` gives the pieces and scores, `unk_id` the UNKNOWN piece, `byte_fallback` the BYTE
 *   pieces `<0x00>` … `<0xFF>`; the other pieces that are `added_tokens` are CONTROL (special) or USER_DEFINED;
 * - the `<extra_id_N>` sentinels at the end of the vocabulary are HF's additions, not pieces of the model;
 * - `normalizer`: `Precompiled` gives the charsmap (none: no normalisation, as SentencePiece's "identity"); a
 *   `Replace` of " {2,}" with " " after it, or a `WhitespaceSplit` pre-tokenizer, stands for remove_extra_whitespaces;
 * - `pre_tokenizer`: `Metaspace` with "▁" is escape_whitespaces, its prepend scheme add_dummy_prefix.
 *
 * What SentencePiece would do differently from the file, or what the file cannot say, is refused with a FormatError
 * naming the field, never approximated. The post-processor and decoder are not read: t5cls appends EOS itself and
 * SentencePiece decodes.
 */
import { FormatError } from '../errors.js';
import { PieceType, type SpModel, type SpNormalizerSpec, type SpPiece } from './sp_model_proto.js';

export const TOKENIZER_JSON_FILE = 'tokenizer.json';

export interface TokenizerJsonModel {
  model: SpModel;
  /** The `<extra_id_N>` sentinels that follow the model's pieces in the vocabulary. */
  sentinels: number;
}

type Fail = (field: string, problem: string) => never;
type JsonObject = Record<string, unknown>;

const SENTINEL = /^<extra_id_\d+>$/;
const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;
const SPACE_SYMBOL = '\u2581';

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function spModelFromTokenizerJson(json: JsonObject, file: string): TokenizerJsonModel {
  const fail: Fail = (field, problem) => {
    throw new FormatError(`${file}: field "${field}" ${problem}`);
  };
  const model = isObject(json.model) ? json.model : fail('model', `is ${show(json.model)}; expected an object`);
  if (model.type !== 'Unigram') {
    fail('model.type', `is ${show(model.type)}; expected "Unigram" (only a SentencePiece unigram model can be rebuilt)`);
  }
  const vocab = readVocab(model.vocab, fail);
  const added = readAddedTokens(json.added_tokens, vocab, fail);

  let end = vocab.length;
  while (end > 0 && SENTINEL.test(added.get(end - 1)?.content ?? '')) end--;
  for (let id = end; id < vocab.length; id++) {
    if (vocab[id]!.piece !== `<extra_id_${vocab.length - 1 - id}>`) {
      fail(
        'added_tokens',
        `has ${vocab[id]!.piece} at id ${id}; expected the sentinels at the end of the vocabulary in reverse order, <extra_id_0> last`,
      );
    }
  }
  const pieces = vocab.slice(0, end);

  const unkId = model.unk_id;
  if (!Number.isInteger(unkId) || (unkId as number) < 0 || (unkId as number) >= end) {
    fail('model.unk_id', `is ${show(unkId)}; expected the id of the unknown piece, 0..${end - 1} (SentencePiece needs one)`);
  }
  const byteFallback = model.byte_fallback ?? false;
  if (typeof byteFallback !== 'boolean') fail('model.byte_fallback', `is ${show(byteFallback)}; expected true or false`);

  for (const [id, p] of pieces.entries()) {
    const token = added.get(id);
    if (id === unkId) p.type = PieceType.UNKNOWN;
    else if (byteFallback && BYTE_PIECE.test(p.piece)) p.type = PieceType.BYTE;
    else if (token) p.type = token.special ? PieceType.CONTROL : PieceType.USER_DEFINED;
  }
  const bytePieces = new Set(pieces.filter((p) => p.type === PieceType.BYTE).map((p) => p.piece)).size;
  if (byteFallback && bytePieces !== 256) {
    fail('model.byte_fallback', `is true but model.vocab has ${bytePieces} of the 256 byte pieces <0x00> … <0xFF>; expected all`);
  }
  const controlId = (piece: string) => pieces.findIndex((p) => p.piece === piece && p.type === PieceType.CONTROL);

  const { charsmap, collapsesSpaces } = readNormalizer(json.normalizer, fail);
  const { addDummyPrefix, splitsOnWhitespace } = readPreTokenizer(json.pre_tokenizer, fail);
  const normalizer: SpNormalizerSpec = {
    // SentencePiece's name for a model that does not normalise; a charsmap does not say which rule built it.
    name: charsmap.byteLength === 0 ? 'identity' : '',
    precompiledCharsmap: charsmap,
    addDummyPrefix,
    removeExtraWhitespaces: collapsesSpaces || splitsOnWhitespace,
    escapeWhitespaces: true,
  };
  return {
    model: {
      pieces,
      trainer: {
        unkId: unkId as number,
        bosId: controlId('<s>'),
        eosId: controlId('</s>'),
        padId: controlId('<pad>'),
        byteFallback,
      },
      normalizer,
    },
    sentinels: vocab.length - end,
  };
}

function readVocab(vocab: unknown, fail: Fail): SpPiece[] {
  if (!Array.isArray(vocab) || vocab.length === 0) fail('model.vocab', `is ${show(vocab)}; expected [[piece, score], …]`);
  return (vocab as unknown[]).map((entry, i) => {
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string' || typeof entry[1] !== 'number') {
      return fail(`model.vocab[${i}]`, `is ${show(entry)}; expected [piece, score]`);
    }
    return { piece: entry[0], score: entry[1], type: PieceType.NORMAL };
  });
}

interface AddedToken {
  content: string;
  special: boolean;
}

function readAddedTokens(tokens: unknown, vocab: SpPiece[], fail: Fail): Map<number, AddedToken> {
  const out = new Map<number, AddedToken>();
  if (tokens === undefined || tokens === null) return out;
  if (!Array.isArray(tokens)) return fail('added_tokens', `is ${show(tokens)}; expected a list`);
  for (const [i, t] of tokens.entries()) {
    const { id, content, special } = isObject(t) ? t : {};
    if (!Number.isInteger(id) || typeof content !== 'string') {
      fail(`added_tokens[${i}]`, `is ${show(t)}; expected {"id", "content", …}`);
    }
    if ((id as number) < 0 || (id as number) >= vocab.length) {
      fail(
        'added_tokens',
        `has ${show(content)} at id ${id}, outside model.vocab (${vocab.length} entries); expected tokens of the vocabulary`,
      );
    }
    if (vocab[id as number]!.piece !== content) {
      fail(
        'added_tokens',
        `has ${show(content)} at id ${id}, where model.vocab has ${show(vocab[id as number]!.piece)}; expected the same piece`,
      );
    }
    out.set(id as number, { content: content as string, special: special === true });
  }
  return out;
}

/** The steps of a normalizer or pre-tokenizer, each with its field path (a `Sequence` is flattened one level). */
function steps(value: JsonObject, field: string, listKey: string, fail: Fail): [JsonObject, string][] {
  if (value.type !== 'Sequence') return [[value, field]];
  const list = value[listKey];
  if (!Array.isArray(list)) return fail(`${field}.${listKey}`, `is ${show(list)}; expected a list`);
  return list.map((s, i) => [isObject(s) ? s : {}, `${field}.${listKey}[${i}]`]);
}

function readNormalizer(normalizer: unknown, fail: Fail): { charsmap: Uint8Array; collapsesSpaces: boolean } {
  let charsmap: Uint8Array | undefined;
  let collapsesSpaces = false;
  if (normalizer === undefined || normalizer === null) return { charsmap: new Uint8Array(0), collapsesSpaces };
  if (!isObject(normalizer)) fail('normalizer', `is ${show(normalizer)}; expected an object or null`);
  for (const [step, field] of steps(normalizer as JsonObject, 'normalizer', 'normalizers', fail)) {
    if (step.type === 'Precompiled') {
      if (charsmap !== undefined || collapsesSpaces) fail(`${field}.type`, 'is a second or late Precompiled; expected one, first');
      charsmap = decodeBase64(step.precompiled_charsmap, `${field}.precompiled_charsmap`, fail);
    } else if (step.type === 'Replace') {
      const pattern = isObject(step.pattern) ? step.pattern.Regex : undefined;
      if (pattern !== ' {2,}' || step.content !== ' ') {
        fail(field, `replaces ${show(step.pattern)} with ${show(step.content)}; expected " {2,}" with " " (remove_extra_whitespaces)`);
      }
      collapsesSpaces = true;
    } else {
      fail(`${field}.type`, `is ${show(step.type)}; expected Precompiled and/or Replace (what a SentencePiece model can express)`);
    }
  }
  return { charsmap: charsmap ?? new Uint8Array(0), collapsesSpaces };
}

function decodeBase64(value: unknown, field: string, fail: Fail): Uint8Array {
  if (value === undefined || value === null || value === '') return new Uint8Array(0);
  if (typeof value !== 'string' || value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
    return fail(field, `is ${show(value)}; expected base64`);
  }
  return new Uint8Array(Buffer.from(value, 'base64'));
}

function readPreTokenizer(preTokenizer: unknown, fail: Fail): { addDummyPrefix: boolean; splitsOnWhitespace: boolean } {
  const expected = `expected Metaspace with replacement "${SPACE_SYMBOL}", optionally after WhitespaceSplit`;
  if (!isObject(preTokenizer)) return fail('pre_tokenizer', `is ${show(preTokenizer)}; ${expected}`);
  const list = steps(preTokenizer, 'pre_tokenizer', 'pretokenizers', fail);
  if (list.length === 0) fail('pre_tokenizer.pretokenizers', `is empty; ${expected}`);
  let splitsOnWhitespace = false;
  for (const [i, [step, field]] of list.entries()) {
    const last = i === list.length - 1;
    if (step.type === 'WhitespaceSplit' && !last) splitsOnWhitespace = true;
    else if (step.type !== 'Metaspace' || !last) fail(`${field}.type`, `is ${show(step.type)}; ${expected}`);
  }
  const [metaspace, field] = list[list.length - 1]!;
  if (metaspace.replacement !== SPACE_SYMBOL) {
    fail(`${field}.replacement`, `is ${show(metaspace.replacement)}; expected "${SPACE_SYMBOL}" (SentencePiece's space symbol)`);
  }
  return { addDummyPrefix: prependsSpace(metaspace, field, fail), splitsOnWhitespace };
}

/**
 * Metaspace's `prepend_scheme` (tokenizers ≥ 0.14) or `add_prefix_space` (before). "first" is what HF writes for a
 * model with add_dummy_prefix and `legacy: false` (no space prepended after a special token); t5cls encodes the text
 * between special tokens the legacy way with spiece.model too, so the model's flag is what counts.
 */
function prependsSpace(metaspace: JsonObject, field: string, fail: Fail): boolean {
  const scheme = metaspace.prepend_scheme;
  if (scheme === 'always' || scheme === 'first') return true;
  if (scheme === 'never') return false;
  if (scheme !== undefined) return fail(`${field}.prepend_scheme`, `is ${show(scheme)}; expected "always", "first" or "never"`);
  const addPrefixSpace = metaspace.add_prefix_space ?? true;
  if (typeof addPrefixSpace !== 'boolean') fail(`${field}.add_prefix_space`, `is ${show(addPrefixSpace)}; expected true or false`);
  return addPrefixSpace as boolean;
}
