/**
 * `t5cls export`: a checkpoint (default: the newest run's best) as a folder that transformers.js loads, with ONNX
 * encoder and decoder, config, tokenizer and t5cls.json (prefix, classes), and a page (index.html) that classifies
 * texts in the browser with them; prints the folder on stdout.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ParsedParams } from './options.js';
import * as os from 'node:os';
import { sayer } from './shared.js';
import { resolveModelFolders, writeMergedFolder, type ModelFolders } from './adapter_model.js';
import { exportCheckpoint } from '../export/index.js';

function formatBytes(n: number): string {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

export async function run({ params: p, given }: ParsedParams<'export'>): Promise<void> {
  const say = sayer(p.quiet);
  const folders = await resolveModelFolders(p, say);
  const { dir, meta } = folders;
  say(`${folders.adapterDir ? 'adapter' : 'checkpoint'}: ${dir}`);
  let classesMap: string | undefined;
  if (given.has('classesMap') || (!meta && fs.existsSync(path.resolve(p.classesMap)))) {
    classesMap = path.resolve(p.classesMap);
    if (!given.has('classesMap')) say(`classes: ${classesMap} (the checkpoint has no t5cls.json)`);
  }
  const out = path.resolve(p.out ?? path.join('exports', path.basename(dir)));
  // An adapter is merged into its base first (a temporary model folder named as the adapter folder is).
  const merged = folders.adapterDir ? await mergedTemporarily(folders, say) : undefined;
  const files = await exportCheckpoint(merged?.dir ?? dir, {
    out,
    tokenizer: merged ? undefined : p.tokenizer,
    classesMap,
    prefixText: given.has('prefixText') || !meta ? p.prefixText : undefined,
    maxSourceLength: given.has('maxSourceLength') || !meta ? p.maxSourceLength : undefined,
    quantize: p.quantize,
    onWarning: say,
  }).finally(() => merged?.remove());
  const width = Math.max(...files.map((f) => f.file.length));
  for (const f of files) say(`  ${f.file.padEnd(width)}  ${formatBytes(f.bytes).padStart(10)}`);
  say(`wrote ${out} (load it with transformers.js: AutoModelForSeq2SeqLM.from_pretrained or pipeline('text2text-generation'))`);
  if (files.some((f) => f.file === 'index.html'))
    say(`the classifier page: python3 -m http.server -d ${out}, then open http://localhost:8000/`);
  console.log(out);
}

async function mergedTemporarily(f: ModelFolders, say: (line: string) => void): Promise<{ dir: string; remove(): void }> {
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-merge-'));
  const remove = () => fs.rmSync(parent, { recursive: true, force: true });
  try {
    const dir = path.join(parent, path.basename(f.dir));
    await writeMergedFolder(dir, f, say);
    return { dir, remove };
  } catch (e) {
    remove();
    throw e;
  }
}
