export { T5Tokenizer, SPIECE_FILE, hasTokenizerFiles } from './t5_tokenizer.js';
export type { EncodeOptions, DecodeOptions } from './t5_tokenizer.js';
