/**
 * `t5cls predict`: classify texts given as arguments, read from --file (one per line, or JSONL), or piped on stdin,
 * with a saved checkpoint; results go to stdout as text, JSONL or TSV, progress and messages to stderr.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ParsedParams } from './options.js';
import { Classifier, missingClassesError, type DecodeMode, type Prediction } from '../eval/classifier.js';
import { Progress } from '../progress.js';
import { initBackend } from '../engine/init.js';
import { FormatError, UsageError } from '../errors.js';
import { inferenceTensorBytes, sayer } from './shared.js';
import { resolveModelFolders } from './adapter_model.js';
import { T5Tokenizer } from '../tokenizer/index.js';
import { encodeInput } from '../data/batches.js';
import type { OptionName, PredictParams } from '../params/commands.js';

export type OutputFormat = 'text' | 'json' | 'tsv';

/** Texts per classifier call (at least), so that results of a long file are printed while the rest still runs. */
const MIN_CHUNK = 256;

export async function run({ params: p, given }: ParsedParams<'predict'>): Promise<void> {
  const say = sayer(p.quiet);
  const folders = await resolveModelFolders(p, say);
  const { dir, meta } = folders;
  const input = await readInput(p, given);

  let classesMap: string | undefined;
  if (given.has('classesMap')) {
    classesMap = path.resolve(p.classesMap);
  } else if (!meta && fs.existsSync(path.resolve(p.classesMap))) {
    classesMap = path.resolve(p.classesMap);
    say(`classes: ${classesMap} (the checkpoint has no t5cls.json)`);
  } else if (!meta) {
    throw missingClassesError(dir);
  }
  say(`${folders.adapterDir ? 'adapter' : 'checkpoint'}: ${dir}`);
  const prefixText = given.has('prefixText') || !meta ? p.prefixText : meta.prefixText;
  const maxSourceLength = given.has('maxSourceLength') || !meta ? p.maxSourceLength : meta.maxSourceLength;
  const tokenizer = await T5Tokenizer.fromPretrained(folders.tokenizerDir);
  // The longest of the first texts stands for the rest (class names are a few tokens; 8 is room enough).
  const inputs = input.texts.slice(0, 4 * MIN_CHUNK).map((t) => encodeInput(tokenizer, t, prefixText, maxSourceLength));
  const tensorBytes = inferenceTensorBytes(folders.modelDir, p.evalBatchSize, inputs, [new Array<number>(8).fill(0)]);
  await initBackend(p.backend, { threads: p.threads, device: p.device, log: say, tensorBytes });
  const classifier = await Classifier.fromPretrained(dir, {
    classesMap,
    prefixText,
    maxSourceLength,
    tokenizer,
    onWarning: say,
    ...(folders.adapterDir ? { baseModel: folders.modelDir } : {}),
  });

  const decode: DecodeMode = p.decode;
  const format: OutputFormat = p.format;
  const out = stdoutWriter();
  const bar =
    input.source === 'args' ? undefined : new Progress({ label: `predict (${decode})`, total: input.texts.length, quiet: p.quiet });
  try {
    if (format === 'tsv') out.write(tsvHeader(classifier.classNames, decode) + '\n');
    const chunk = Math.max(MIN_CHUNK, 4 * p.evalBatchSize);
    for (let start = 0; start < input.texts.length && !out.closed(); start += chunk) {
      const texts = input.texts.slice(start, start + chunk);
      let done = 0;
      const preds = classifier.predict(texts, {
        decode,
        batchSize: p.evalBatchSize,
        onProgress: (d) => {
          bar?.tick(d - done);
          done = d;
        },
      });
      out.write(preds.map((pred) => formatPrediction(pred, format, classifier.classNames) + '\n').join(''));
      // Lets a closed pipe (EPIPE) be noticed before the next chunk.
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    bar?.done();
    classifier.dispose();
  }
  if (input.skippedBlank) say(`skipped ${input.skippedBlank} blank line${input.skippedBlank === 1 ? '' : 's'} of ${input.name}`);
}

export interface PredictInput {
  texts: string[];
  source: 'args' | 'file' | 'stdin';
  /** The file name, `stdin` or `arguments`, for messages. */
  name: string;
  skippedBlank: number;
}

/** Texts from the positional arguments, --file, or stdin (only when it is not a terminal). */
export async function readInput(
  p: Pick<PredictParams, 'texts' | 'file' | 'textColumn'>,
  given: Set<OptionName<'predict'>>,
): Promise<PredictInput> {
  const args = p.texts ?? [];
  if (args.length && p.file !== undefined)
    throw new UsageError(
      `give the texts as arguments or with --file, not both (got ${args.length} argument${args.length === 1 ? '' : 's'} and ` +
        `--file ${p.file})`,
    );
  if (args.length) return { texts: args, source: 'args', name: 'arguments', skippedBlank: 0 };
  let content: string;
  let name: string;
  let source: 'file' | 'stdin';
  if (p.file !== undefined && p.file !== '-') {
    name = p.file;
    source = 'file';
    try {
      content = fs.readFileSync(path.resolve(p.file), 'utf-8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT'
          ? 'no such file'
          : code === 'EISDIR'
            ? 'is a folder, expected a file'
            : `cannot read the file (${code ?? (e as Error).message})`;
      throw new UsageError(`--file ${p.file}: ${why}`);
    }
  } else {
    if (p.file === undefined && process.stdin.isTTY) throw new UsageError(noInputMessage());
    name = 'stdin';
    source = 'stdin';
    content = await readStdin();
  }
  const jsonl = given.has('textColumn') || (source === 'file' && /\.(jsonl|ndjson)$/i.test(name));
  const { texts, skippedBlank } = jsonl ? parseJsonl(content, name, p.textColumn) : parseLines(content);
  if (!texts.length) {
    if (p.file === undefined) throw new UsageError(noInputMessage());
    throw new UsageError(`${name}: no texts to classify (${content.trim() ? 'only blank lines' : 'the input is empty'})`);
  }
  return { texts, source, name, skippedBlank };
}

function noInputMessage(): string {
  return 'no texts to classify: give them as arguments, with --file FILE, or as lines on stdin';
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf-8');
}

function splitLines(content: string): string[] {
  return content.replace(/^\uFEFF/, '').split(/\r?\n/);
}

/** One text per line; blank lines are skipped. */
export function parseLines(content: string): { texts: string[]; skippedBlank: number } {
  const lines = splitLines(content);
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const texts = lines.filter((l) => l.trim() !== '');
  return { texts, skippedBlank: lines.length - texts.length };
}

/** One JSON object per line, the text in `column`; blank lines are skipped. */
export function parseJsonl(content: string, name: string, column: string): { texts: string[]; skippedBlank: number } {
  const texts: string[] = [];
  let skippedBlank = 0;
  const lines = splitLines(content);
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  lines.forEach((line, i) => {
    if (line.trim() === '') {
      skippedBlank++;
      return;
    }
    const where = `${name}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new FormatError(`${where}: not valid JSON (${(e as Error).message}); expected one JSON object per line`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new FormatError(
        `${where}: expected a JSON object with a "${column}" field, got ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`,
      );
    }
    const record = value as Record<string, unknown>;
    if (!(column in record)) {
      const fields = Object.keys(record);
      const has = fields.length ? fields.map((f) => `"${f}"`).join(', ') : 'no fields';
      throw new FormatError(`${where}: no "${column}" field (the object has ${has}); choose the field with --text-column`);
    }
    const text = record[column];
    if (typeof text !== 'string')
      throw new FormatError(`${where}: field "${column}" is ${text === null ? 'null' : typeof text}, expected a string`);
    texts.push(text);
  });
  return { texts, skippedBlank };
}

export function tsvHeader(classNames: string[], decode: DecodeMode): string {
  const cols = ['text', 'label', 'label_id', ...(decode === 'rank' ? classNames.map((n) => `p_${n}`) : ['generated'])];
  return cols.map(tsvField).join('\t');
}

/** A TSV field: backslash, tab, newline and carriage return written as \\, \t, \n and \r. */
export function tsvField(s: string): string {
  return s.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

export function formatPrediction(pred: Prediction, format: OutputFormat, classNames: string[]): string {
  if (format === 'json') {
    return JSON.stringify({
      text: pred.text,
      label: pred.label,
      label_id: pred.labelId,
      ...(pred.probabilities ? { probabilities: pred.probabilities } : {}),
      ...(pred.generated !== undefined ? { generated: pred.generated } : {}),
    });
  }
  if (format === 'tsv') {
    const extra = pred.probabilities ? classNames.map((n) => String(pred.probabilities![n])) : [pred.generated ?? ''];
    return [pred.text, pred.label ?? '', String(pred.labelId), ...extra].map(tsvField).join('\t');
  }
  const width = Math.max(...classNames.map((n) => n.length));
  const label = pred.label ?? `<no class: ${JSON.stringify(pred.generated ?? '')}>`;
  const probs = pred.probabilities ? classNames.map((n) => `${n}=${pred.probabilities![n]!.toFixed(4)}`).join(' ') + '  ' : '';
  return `${label.padEnd(width)}  ${probs}${pred.text.replace(/\s+/g, ' ').trim()}`;
}

/** Writes to stdout; a reader that goes away (e.g. `| head`) ends the output quietly. */
function stdoutWriter(): { write: (s: string) => void; closed: () => boolean } {
  let closed = false;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') closed = true;
    else throw e;
  });
  return {
    write: (s) => {
      if (!closed && s) process.stdout.write(s);
    },
    closed: () => closed,
  };
}
