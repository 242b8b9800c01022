/**
 * `t5cls merge`: a LoRA adapter folded into its base model (PEFT's merge_and_unload), written as a plain HF model
 * folder that t5cls, transformers and `export` load like any checkpoint; prints the folder on stdout.
 */
import * as path from 'node:path';
import type { ParsedParams } from './options.js';
import { UsageError } from '../errors.js';
import { sayer } from './shared.js';
import { resolveModelFolders, writeMergedFolder } from './adapter_model.js';

export async function run({ params: p }: ParsedParams<'merge'>): Promise<void> {
  const say = sayer(p.quiet);
  if (p.adapter === undefined) throw new UsageError('merge needs --adapter DIR (the PEFT LoRA adapter folder to fold into its base)');
  const folders = await resolveModelFolders(p, say);
  const out = path.resolve(p.out ?? `${folders.dir}-merged`);
  await writeMergedFolder(out, folders, say);
  say(`wrote ${out}: ${folders.adapterDir} merged into ${folders.modelDir}`);
  console.log(out);
}
