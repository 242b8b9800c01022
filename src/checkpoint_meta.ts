/**
 * A checkpoint's `t5cls.json`: what t5cls adds to the HF model folder (base model, prefix, classes map, options,
 * metrics), and reading it back; train/checkpoint.ts writes it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError } from './errors.js';

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

export function readCheckpointMeta(dir: string): CheckpointMeta | undefined {
  const file = path.join(dir, CHECKPOINT_META);
  if (!fs.existsSync(file)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf-8')) as CheckpointMeta;
  } catch (e) {
    throw new FormatError(`${file}: not valid JSON (${(e as Error).message})`);
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
