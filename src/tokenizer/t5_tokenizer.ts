/**
 * The T5 tokenizer, matching Hugging Face's (slow, "legacy") `T5Tokenizer`:
 *
 * - the SentencePiece model `spiece.model` does the segmentation (the `sentencepiece-js` WebAssembly build of the
 *   reference C++ library, so normalisation and segmentation are the reference ones); a folder without it (what
 *   transformers 5.x saves) has the model rebuilt from `tokenizer.json` (see tokenizer_json.ts);
 * - the special tokens `<pad>`, `</s>`, `<unk>` and the sentinels `<extra_id_0>` … `<extra_id_{N-1}>` written
 *   literally in the text are split out first and become their own ids, as HF does;
 * - `</s>` (EOS) is appended unless the ids already end with it (HF's `_add_eos_if_not_present`);
 * - the sentinels take the ids after the SentencePiece vocabulary in reverse order: `<extra_id_0>` is the last id.
 *
 * Text next to a special token is always encoded the legacy way (as its own SentencePiece input); a
 * tokenizer_config.json with `legacy: false` is kept when saving but does not change encoding here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError, T5clsError, UsageError } from '../errors.js';
import { readJsonObject, writeFileAtomic, writeJsonAtomic } from '../fsutil.js';
import { loadProcessor, loadProcessorFromBytes, parseSpVocab, type SpJsProcessor, type SpVocab } from './sentencepiece.js';
import { encodeSpModel, PieceType } from './sp_model_proto.js';
import { spModelFromTokenizerJson, TOKENIZER_JSON_FILE } from './tokenizer_json.js';
import { readSettings, TOKENIZER_CONFIG_FILE, type TokenizerSettings } from './tokenizer_settings.js';

export const SPIECE_FILE = 'spiece.model';

/** Whether `dir` holds a tokenizer `fromPretrained` can read (spiece.model or tokenizer.json). */
export function hasTokenizerFiles(dir: string): boolean {
  return [SPIECE_FILE, TOKENIZER_JSON_FILE].some((f) => fs.existsSync(path.join(dir, f)));
}
const SPECIAL_TOKENS_MAP_FILE = 'special_tokens_map.json';

const PAD_TOKEN = '<pad>';
const EOS_TOKEN = '</s>';
const UNK_TOKEN = '<unk>';
const DEFAULT_EXTRA_IDS = 100;

export interface EncodeOptions {
  /** Append EOS (HF `add_special_tokens`); default true. */
  addSpecialTokens?: boolean;
  /**
   * Keep at most this many ids, EOS included (HF `truncation=True, max_length=…`): the text's ids are cut to
   * `maxLength - 1` and then EOS is appended.
   */
  maxLength?: number;
}

export interface DecodeOptions {
  /** Drop pad, EOS, unk and sentinel ids (HF `skip_special_tokens`); default true. */
  skipSpecialTokens?: boolean;
  /** HF `clean_up_tokenization_spaces` (" ." → ".", " n't" → "n't", …); default: the tokenizer's setting. */
  cleanUpTokenizationSpaces?: boolean;
}

// ---------------------------------------------------------------------------------------------------------------

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** HF's `clean_up_tokenization`. */
function cleanUpTokenization(s: string): string {
  return s
    .replaceAll(' .', '.')
    .replaceAll(' ?', '?')
    .replaceAll(' !', '!')
    .replaceAll(' ,', ',')
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}

/** The folder a tokenizer came from, and whether its SentencePiece model was rebuilt from tokenizer.json. */
interface ModelSource {
  dir: string;
  rebuilt: boolean;
}

/** The file's bytes, or undefined when there is no such file. */
function readIfExists(file: string): Uint8Array | undefined {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new FormatError(`${file}: cannot read (${code ?? (e as Error).message})`);
  }
}

function addedTokenJson(content: string): Record<string, unknown> {
  return { content, lstrip: false, normalized: false, rstrip: false, single_word: false };
}

export class T5Tokenizer {
  /** Pieces of the SentencePiece model (32000 for T5). */
  readonly spVocabSize: number;
  /** Number of `<extra_id_N>` sentinels (100 for T5). */
  readonly extraIds: number;
  /**
   * SentencePiece pieces + sentinels: 32100 for T5, HF's `len(tokenizer)`. The model's embedding table is usually
   * larger (T5's `vocab_size` 32128); the ids in between are never produced.
   */
  readonly vocabSize: number;
  readonly padTokenId: number;
  readonly eosTokenId: number;
  readonly unkTokenId: number;
  /** `model_max_length` from tokenizer_config.json, when it names a real limit (512 for the original T5). */
  readonly modelMaxLength: number | undefined;
  readonly cleanUpTokenizationSpaces: boolean;

  private readonly sp: SpJsProcessor;
  private readonly pieces: string[];
  private readonly pieceIds: Map<string, number>;
  private readonly specialTokenIds: Map<string, number>;
  private readonly specialIds: Set<number>;
  private readonly splitPattern: RegExp | undefined;
  private readonly modelBytes: Uint8Array;
  private readonly source: ModelSource;
  private readonly legacy: boolean | undefined;

  private constructor(
    sp: SpJsProcessor,
    vocab: SpVocab,
    modelBytes: Uint8Array,
    source: ModelSource,
    settings: TokenizerSettings,
    extraIds: number,
  ) {
    this.sp = sp;
    this.pieces = vocab.pieces;
    this.modelBytes = modelBytes;
    this.source = source;
    this.spVocabSize = vocab.pieces.length;
    this.extraIds = extraIds;
    this.vocabSize = this.spVocabSize + this.extraIds;
    this.cleanUpTokenizationSpaces = settings.cleanUpTokenizationSpaces;
    this.modelMaxLength = settings.modelMaxLength;
    this.legacy = settings.legacy;

    this.pieceIds = new Map();
    vocab.pieces.forEach((p, i) => {
      if (!this.pieceIds.has(p)) this.pieceIds.set(p, i);
    });
    let unk = vocab.types.indexOf(PieceType.UNKNOWN);
    if (unk < 0) unk = this.pieceIds.get(UNK_TOKEN) ?? 0;
    this.unkTokenId = unk;
    this.padTokenId = this.pieceIds.get(PAD_TOKEN) ?? unk;
    this.eosTokenId = this.pieceIds.get(EOS_TOKEN) ?? unk;

    this.specialTokenIds = new Map([
      [PAD_TOKEN, this.padTokenId],
      [EOS_TOKEN, this.eosTokenId],
      [UNK_TOKEN, this.unkTokenId],
    ]);
    for (let n = 0; n < this.extraIds; n++) this.specialTokenIds.set(`<extra_id_${n}>`, this.sentinelId(n));
    this.specialIds = new Set(this.specialTokenIds.values());
    // Longest first, so the regex takes the longest special token at each position, like HF's trie.
    const alternatives = [...this.specialTokenIds.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
    this.splitPattern = alternatives.length > 0 ? new RegExp(`(${alternatives.join('|')})`) : undefined;
  }

  /**
   * Loads the SentencePiece model `dir/spiece.model`, or else rebuilds it from `dir/tokenizer.json`, and
   * `dir/tokenizer_config.json` (optional: `extra_ids`, `clean_up_tokenization_spaces`, `model_max_length`).
   */
  static async fromPretrained(dir: string): Promise<T5Tokenizer> {
    let st: fs.Stats;
    try {
      st = fs.statSync(dir);
    } catch {
      throw new UsageError(`${dir}: tokenizer folder not found`);
    }
    if (!st.isDirectory()) {
      throw new UsageError(`${dir}: not a folder (expected a tokenizer folder holding ${SPIECE_FILE} or ${TOKENIZER_JSON_FILE})`);
    }
    const settings = readSettings(dir);
    const sourceDir = path.resolve(dir);
    const spiece = path.join(dir, SPIECE_FILE);
    const bytes = readIfExists(spiece);
    if (bytes) {
      const vocab = parseSpVocab(bytes, spiece);
      const sp = await loadProcessor(spiece);
      return new T5Tokenizer(sp, vocab, bytes, { dir: sourceDir, rebuilt: false }, settings, settings.extraIds ?? DEFAULT_EXTRA_IDS);
    }

    const jsonFile = path.join(dir, TOKENIZER_JSON_FILE);
    const json = readJsonObject(jsonFile);
    if (!json) {
      throw new UsageError(
        `${dir}: neither ${SPIECE_FILE} nor ${TOKENIZER_JSON_FILE} found (a T5 tokenizer folder holds the SentencePiece model or HF's tokenizer.json)`,
      );
    }
    const { model, sentinels } = spModelFromTokenizerJson(json, jsonFile);
    if (settings.extraIds !== undefined && settings.extraIds !== sentinels) {
      throw new FormatError(
        `${jsonFile}: field "added_tokens" ends with ${sentinels} sentinels <extra_id_N>, but ${TOKENIZER_CONFIG_FILE} says ${settings.extraIds}`,
      );
    }
    const rebuilt = encodeSpModel(model);
    const source = `${jsonFile} (the SentencePiece model rebuilt from it)`;
    const vocab = parseSpVocab(rebuilt, source);
    const sp = await loadProcessorFromBytes(rebuilt, source);
    return new T5Tokenizer(sp, vocab, rebuilt, { dir: sourceDir, rebuilt: true }, settings, sentinels);
  }

  /** The SentencePiece model: spiece.model's bytes, or the model rebuilt from tokenizer.json. */
  spModel(): Uint8Array {
    return this.modelBytes.slice();
  }

  /** Id of the sentinel `<extra_id_n>`: `vocabSize - 1 - n`. */
  sentinelId(n: number): number {
    if (!Number.isInteger(n) || n < 0 || n >= this.extraIds) {
      throw new UsageError(`sentinel <extra_id_${n}> does not exist (this tokenizer has ${this.extraIds} sentinels)`);
    }
    return this.vocabSize - 1 - n;
  }

  /** Token ids of `text`, with EOS appended (unless `addSpecialTokens` is false or the ids already end with EOS). */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const addSpecial = options.addSpecialTokens ?? true;
    const ids: number[] = [];
    const parts = this.splitPattern ? text.split(this.splitPattern) : [text];
    // split() with one capture group alternates: text, special token, text, …
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (i % 2 === 1) ids.push(this.specialTokenIds.get(part)!);
      else if (part.length > 0) for (const id of this.sp.encodeIds(part)) ids.push(id);
    }
    if (options.maxLength !== undefined) {
      const max = options.maxLength;
      if (!Number.isInteger(max) || max < (addSpecial ? 1 : 0)) {
        throw new UsageError(`maxLength must be an integer ≥ ${addSpecial ? 1 : 0}, got ${max}`);
      }
      const keep = addSpecial ? max - 1 : max;
      if (ids.length > keep) ids.length = keep;
    }
    if (addSpecial && ids[ids.length - 1] !== this.eosTokenId) ids.push(this.eosTokenId);
    return ids;
  }

  encodeBatch(texts: readonly string[], options: EncodeOptions = {}): number[][] {
    return texts.map((t) => this.encode(t, options));
  }

  /**
   * Text of `ids`, as HF `decode` gives it (transformers 4.32's slow T5Tokenizer): special ids are dropped by
   * default; kept, they are written out and glued to the text before them.
   */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const skip = options.skipSpecialTokens ?? true;
    const cleanUp = options.cleanUpTokenizationSpaces ?? this.cleanUpTokenizationSpaces;
    let out = '';
    let run: number[] = [];
    let prevIsSpecial = false;
    for (const id of ids) {
      this.checkId(id);
      if (this.specialIds.has(id)) {
        if (skip) continue;
        if (!prevIsSpecial) out += ' ';
        out += this.decodeRun(run) + this.idToPiece(id);
        run = [];
        prevIsSpecial = true;
      } else {
        run.push(id);
        prevIsSpecial = false;
      }
    }
    out += this.decodeRun(run);
    out = out.trim();
    return cleanUp ? cleanUpTokenization(out) : out;
  }

  decodeBatch(batch: readonly (readonly number[])[], options: DecodeOptions = {}): string[] {
    return batch.map((ids) => this.decode(ids, options));
  }

  /** The piece (`▁hello`) or special token (`</s>`, `<extra_id_0>`) of an id. */
  idToPiece(id: number): string {
    this.checkId(id);
    if (id < this.spVocabSize) return this.pieces[id]!;
    return `<extra_id_${this.vocabSize - 1 - id}>`;
  }

  /** The id of a piece or special token; like HF, an unknown piece gives the unk id. */
  pieceToId(piece: string): number {
    return this.specialTokenIds.get(piece) ?? this.pieceIds.get(piece) ?? this.unkTokenId;
  }

  /**
   * Writes `spiece.model`, `tokenizer_config.json` and `special_tokens_map.json` (as HF `save_pretrained` writes
   * them, so `T5Tokenizer.from_pretrained(dir)` loads the folder), and copies `tokenizer.json` when the folder this
   * tokenizer came from has one. A tokenizer loaded from tokenizer.json alone writes the model it rebuilt.
   */
  savePretrained(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    const sameFolder = path.resolve(dir) === this.source.dir;
    if (!sameFolder || this.source.rebuilt) writeFileAtomic(path.join(dir, SPIECE_FILE), this.modelBytes);
    if (!sameFolder) {
      const tokenizerJson = path.join(this.source.dir, TOKENIZER_JSON_FILE);
      if (fs.existsSync(tokenizerJson)) {
        let data: Uint8Array;
        try {
          data = fs.readFileSync(tokenizerJson);
        } catch (e) {
          throw new T5clsError(`${tokenizerJson}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
        }
        writeFileAtomic(path.join(dir, TOKENIZER_JSON_FILE), data);
      }
    }

    const sentinels = Array.from({ length: this.extraIds }, (_, n) => `<extra_id_${n}>`);
    const addedTokensDecoder: Record<string, unknown> = {};
    const decoderEntries: [number, string][] = [
      [this.padTokenId, PAD_TOKEN],
      [this.eosTokenId, EOS_TOKEN],
      [this.unkTokenId, UNK_TOKEN],
      ...sentinels.map((s, n): [number, string] => [this.sentinelId(n), s]),
    ];
    decoderEntries.sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1));
    for (const [id, content] of decoderEntries) addedTokensDecoder[String(id)] = { ...addedTokenJson(content), special: true };

    // Keys in sorted order, as HF writes them.
    const config: Record<string, unknown> = {
      added_tokens_decoder: addedTokensDecoder,
      additional_special_tokens: sentinels,
      clean_up_tokenization_spaces: this.cleanUpTokenizationSpaces,
      eos_token: EOS_TOKEN,
      extra_ids: this.extraIds,
    };
    if (this.legacy !== undefined) config.legacy = this.legacy;
    if (this.modelMaxLength !== undefined) config.model_max_length = this.modelMaxLength;
    config.pad_token = PAD_TOKEN;
    config.tokenizer_class = 'T5Tokenizer';
    config.unk_token = UNK_TOKEN;
    writeJsonAtomic(path.join(dir, TOKENIZER_CONFIG_FILE), config);

    writeJsonAtomic(path.join(dir, SPECIAL_TOKENS_MAP_FILE), {
      additional_special_tokens: sentinels,
      eos_token: addedTokenJson(EOS_TOKEN),
      pad_token: addedTokenJson(PAD_TOKEN),
      unk_token: addedTokenJson(UNK_TOKEN),
    });
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new UsageError(`token id ${id} is out of range (the tokenizer's ids are 0..${this.vocabSize - 1})`);
    }
  }

  private decodeRun(ids: number[]): string {
    return ids.length === 0 ? '' : this.sp.decodeIds(ids);
  }
}
