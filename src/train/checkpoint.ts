/**
 * Checkpoints: an HF model folder (config.json, model.safetensors, tokenizer files) plus `t5cls.json` (base model,
 * prefix, classes map, options, metrics). A checkpoint is written into a temp folder and renamed into place when
 * complete, so an existing checkpoint is never overwritten and a crash never leaves a half-written one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFolderAtomic, writeJsonAtomic } from '../fsutil.js';
import { FormatError, T5clsError, UsageError } from '../errors.js';
import type { T5ForConditionalGeneration } from '../model/modeling_t5.js';

export const CHECKPOINT_META = 't5cls.json';

export interface CheckpointMeta {
  format: 't5cls-checkpoint';
  version: 1;
  baseModel: string;
  runName: string;
  epoch: number;
  step: number;
  prefixText: string;
  maxSourceLength: number;
  classesMap: Record<string, number>;
  options: Record<string, unknown>;
  metrics: Record<string, number>;
  createdAt: string;
}

export interface SavableTokenizer {
  savePretrained(dir: string): void | Promise<void>;
}

export async function saveCheckpoint(
  dir: string,
  model: T5ForConditionalGeneration,
  tokenizer: SavableTokenizer,
  meta: CheckpointMeta,
): Promise<void> {
  if (fs.existsSync(dir)) throw new UsageError(`${dir} already exists; a checkpoint is never overwritten`);
  try {
    await writeFolderAtomic(dir, async (tmp) => {
      model.savePretrained(tmp);
      await tokenizer.savePretrained(tmp);
      writeJsonAtomic(path.join(tmp, CHECKPOINT_META), meta);
    });
  } catch (e) {
    throw new T5clsError(`could not save the checkpoint ${dir}: ${(e as Error).message}; earlier checkpoints are intact`, 1, { cause: e });
  }
}

export function readCheckpointMeta(dir: string): CheckpointMeta | undefined {
  const file = path.join(dir, CHECKPOINT_META);
  if (!fs.existsSync(file)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf-8')) as CheckpointMeta;
  } catch (e) {
    throw new FormatError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** A checkpoint or run name used as a folder name: no separators, no `..`, no NUL. */
export function assertSafeName(name: string, what: string): void {
  if (!name || name === '.' || name === '..' || /[/\\\0]/.test(name) || path.isAbsolute(name)) {
    throw new UsageError(`${what} "${name}" must be a plain folder name (no "/", "\\", ".." or NUL)`);
  }
}

/** The best checkpoint of the newest run under `weightsDir` (newest by creation time in t5cls.json). */
export function findLatestBestCheckpoint(weightsDir: string): string | undefined {
  if (!fs.existsSync(weightsDir)) return undefined;
  const metas: { dir: string; meta: CheckpointMeta }[] = [];
  for (const entry of fs.readdirSync(weightsDir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const dir = path.join(weightsDir, entry.name);
    const meta = readCheckpointMeta(dir);
    if (meta) metas.push({ dir, meta });
  }
  if (!metas.length) return undefined;
  const runStart = new Map<string, string>();
  for (const { meta } of metas) {
    const prev = runStart.get(meta.runName);
    if (!prev || meta.createdAt < prev) runStart.set(meta.runName, meta.createdAt);
  }
  const newestRun = [...runStart.entries()].sort((a, b) => (a[1] < b[1] ? 1 : -1))[0]![0];
  const ofRun = metas.filter((m) => m.meta.runName === newestRun);
  ofRun.sort((a, b) => (b.meta.metrics.dev_macro_f1 ?? 0) - (a.meta.metrics.dev_macro_f1 ?? 0) || b.meta.epoch - a.meta.epoch);
  return ofRun[0]!.dir;
}
