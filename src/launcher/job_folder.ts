/**
 * A `--launcher accelerate` job folder (`jobs/<run>/`), self-contained: the training script (python/t5cls_accelerate
 * of this package, copied), job.json (every resolved option, the paths it reads and writes), the accelerate config
 * (and DeepSpeed's), requirements.txt, the data and classes map as train read them with t5cls's token ids (Python's
 * SentencePiece breaks a few ties between equally likely segmentations otherwise), the tokenizer, the config.json
 * text t5cls writes for this model's checkpoints, the starting weights when t5cls initialised them, a LoRA job's
 * starting adapter (job_lora.ts), and run.sh.
 * Written under a temp name and renamed into place.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Example } from '../data/batches.js';
import { writeFileAtomic, writeFolderAtomic, writeJsonAtomic } from '../fsutil.js';
import type { T5Config } from '../model/config.js';
import { RunLog } from '../train/run_log.js';
import type { TrainOptions } from '../train/types.js';
import { ACCELERATE_CONFIG_FILE, accelerateConfigText, DEEPSPEED_CONFIG_FILE, deepspeedConfig } from './accelerate_config.js';
import type { Cluster } from './cluster.js';
import { JOB_ADAPTER_DIR, jobLoraBlock, writeInitialAdapter, type JobLora, type LoraJobSpec } from './job_lora.js';

export const JOB_FILE = 'job.json';
export const SCRIPT_DIR = 't5cls_accelerate';
export const SCRIPT = `${SCRIPT_DIR}/train.py`;
/** The training script's folder in this package. */
export const PYTHON_SOURCE = fileURLToPath(new URL('../../python/t5cls_accelerate/', import.meta.url));

export interface JobSpec {
  jobDir: string;
  runName: string;
  modelName: string;
  runTime: string;
  /** A local folder (absolute) and, for a Hub model, its id and revision (a machine without the folder downloads it). */
  model: { path?: string; hubId?: string; revision?: string };
  /** Writes the starting weights into the job's `model/` folder (a random start t5cls initialised). */
  writeInitialWeights?: (dir: string) => void;
  config: T5Config;
  tokenizer: { savePretrained(dir: string): void | Promise<void> };
  classNames: string[];
  train: Example[];
  validation: Example[];
  /** t5cls's token ids: each input (prefix, text, truncation as train does them) and each class name's target. */
  tokens: JobTokens;
  /** train's options, the learning rate resolved (undefined only under Adafactor's own schedule). */
  options: TrainOptions;
  /** Every option of the command, as the log's header and each checkpoint's t5cls.json list them. */
  record: Record<string, unknown>;
  cluster: Cluster;
  outputs: { weightsDir: string; logFile: string; tensorboardDir: string };
  python: string;
  /** A LoRA job: its adapter's settings and base, and where it starts from. */
  lora?: LoraJobSpec;
}

export interface JobTokens {
  train: number[][];
  validation: number[][];
  classes: number[][];
}

/** The job.json the script reads (python/t5cls_accelerate/job.py). */
export interface JobFile {
  format: 't5cls-accelerate-job';
  version: 1;
  runName: string;
  modelName: string;
  runTime: string;
  model: { path?: string; hubId?: string; revision?: string };
  tokenizer: string;
  data: { train: string; validation: string; classesMap: string; tokens: string };
  classNames: string[];
  options: TrainOptions;
  validationDecode: 'generate' | 'rank';
  launcher: Cluster & { name: 'accelerate'; configFile: string; deepspeedConfigFile?: string };
  outputs: { weightsDir: string; logFile: string; tensorboardDir: string };
  checkpoint: {
    config: string;
    generationConfig: Record<string, number | boolean>;
    tied: boolean;
    scaled: boolean;
    headWeightWritten: boolean;
  };
  record: Record<string, unknown>;
  /** The run log's options block as t5cls renders it (the job adds the launcher, processes and devices). */
  logOptions: string[];
  /** A LoRA job's adapter (LoRA through PEFT), or null: every weight trains. */
  lora: JobLora | null;
}

/** A path as the job stores it: relative to the job folder when it lies under `base`, else absolute. */
function jobPath(jobDir: string, file: string, base: string): string {
  const inside = !path.relative(base, file).startsWith('..') && !path.isAbsolute(path.relative(base, file));
  return inside ? path.relative(jobDir, file) : file;
}

/** The `[options]` lines RunLog writes for `record`. */
export function renderLogOptions(record: Record<string, unknown>): string[] {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-log-'));
  try {
    const file = path.join(tmp, 'log.txt');
    new RunLog(file).options(record);
    const lines = fs.readFileSync(file, 'utf-8').split('\n');
    return lines.slice(1, lines.indexOf('', 1));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export function jobFile(spec: JobSpec, base: string): JobFile {
  const { jobDir, config, cluster } = spec;
  const rel = (file: string) => jobPath(jobDir, file, base);
  return {
    format: 't5cls-accelerate-job',
    version: 1,
    runName: spec.runName,
    modelName: spec.modelName,
    runTime: spec.runTime,
    model: spec.writeInitialWeights ? { path: 'model' } : spec.model,
    tokenizer: 'tokenizer',
    data: { train: 'data/train.json', validation: 'data/validation.json', classesMap: 'data/classes_map.json', tokens: 'data/tokens.json' },
    classNames: spec.classNames,
    options: spec.options,
    validationDecode: 'generate',
    launcher: {
      name: 'accelerate',
      ...cluster,
      configFile: ACCELERATE_CONFIG_FILE,
      ...(cluster.deepspeedStage !== undefined ? { deepspeedConfigFile: DEEPSPEED_CONFIG_FILE } : {}),
    },
    outputs: {
      weightsDir: rel(spec.outputs.weightsDir),
      logFile: rel(spec.outputs.logFile),
      tensorboardDir: rel(spec.outputs.tensorboardDir),
    },
    checkpoint: {
      config: 'checkpoint_config.json',
      generationConfig: {
        _from_model_config: true,
        decoder_start_token_id: config.decoder_start_token_id,
        eos_token_id: config.eos_token_id,
        pad_token_id: config.pad_token_id,
      },
      tied: config.tie_word_embeddings,
      scaled: config.scale_decoder_outputs,
      headWeightWritten: config.headWeightWritten,
    },
    record: spec.record,
    logOptions: renderLogOptions(spec.record),
    lora: spec.lora ? jobLoraBlock(spec.lora, config) : null,
  };
}

export function requirementsText(cluster: Cluster, lora = false): string {
  const lines = ['torch>=2.1', 'transformers>=4.40,<6', 'accelerate>=0.34', 'safetensors>=0.4', 'sentencepiece>=0.1.99'];
  if (lora) lines.push('peft>=0.13');
  if (cluster.deepspeedStage !== undefined) lines.push('deepspeed>=0.14');
  return lines.join('\n') + '\n';
}

export function runScriptText(spec: Pick<JobSpec, 'runName' | 'cluster' | 'python'>): string {
  const ranks = spec.cluster.numMachines > 1 ? ` (MACHINE_RANK=0 … ${spec.cluster.numMachines - 1}, one per machine)` : '';
  return [
    '#!/bin/sh',
    `# t5cls train --launcher accelerate, run ${spec.runName}: starts this machine's processes${ranks}.`,
    '# PYTHON names the interpreter with torch, transformers and accelerate; extra arguments go to the script (--resume).',
    'set -e',
    'cd "$(dirname "$0")"',
    `PYTHON="\${PYTHON:-${spec.python.replace(/["$`\\]/g, '\\$&')}}"`,
    `exec "$PYTHON" -m accelerate.commands.launch --config_file ${ACCELERATE_CONFIG_FILE} --machine_rank "\${MACHINE_RANK:-${spec.cluster.machineRank}}" ${SCRIPT} ${JOB_FILE} "$@"`,
    '',
  ].join('\n');
}

/** Writes the job folder; `base` is the folder relative outputs are kept relative to (the working directory). */
export async function writeJobFolder(spec: JobSpec, base: string = process.cwd()): Promise<JobFile> {
  const job = jobFile(spec, base);
  await writeFolderAtomic(spec.jobDir, async (tmp) => {
    fs.mkdirSync(path.join(tmp, SCRIPT_DIR));
    for (const name of fs.readdirSync(PYTHON_SOURCE).filter((n) => n.endsWith('.py'))) {
      fs.copyFileSync(path.join(PYTHON_SOURCE, name), path.join(tmp, SCRIPT_DIR, name));
    }
    fs.mkdirSync(path.join(tmp, 'data'));
    writeJsonAtomic(path.join(tmp, 'data/train.json'), spec.train);
    writeJsonAtomic(path.join(tmp, 'data/validation.json'), spec.validation);
    writeJsonAtomic(path.join(tmp, 'data/classes_map.json'), Object.fromEntries(spec.classNames.map((n, i) => [n, i])));
    writeFileAtomic(path.join(tmp, 'data/tokens.json'), JSON.stringify(spec.tokens) + '\n');
    fs.mkdirSync(path.join(tmp, 'tokenizer'));
    await spec.tokenizer.savePretrained(path.join(tmp, 'tokenizer'));
    if (spec.writeInitialWeights) spec.writeInitialWeights(path.join(tmp, 'model'));
    if (spec.lora) {
      fs.mkdirSync(path.join(tmp, JOB_ADAPTER_DIR));
      writeInitialAdapter(path.join(tmp, JOB_ADAPTER_DIR), spec.lora, spec.config);
    }
    writeFileAtomic(path.join(tmp, 'checkpoint_config.json'), spec.config.toJSONText());
    const cluster = spec.cluster;
    if (cluster.accelerateConfig) fs.copyFileSync(cluster.accelerateConfig, path.join(tmp, ACCELERATE_CONFIG_FILE));
    else writeFileAtomic(path.join(tmp, ACCELERATE_CONFIG_FILE), accelerateConfigText(cluster));
    if (cluster.deepspeedStage !== undefined)
      writeJsonAtomic(path.join(tmp, DEEPSPEED_CONFIG_FILE), deepspeedConfig(cluster, spec.options));
    writeFileAtomic(path.join(tmp, 'requirements.txt'), requirementsText(cluster, spec.lora !== undefined));
    writeFileAtomic(path.join(tmp, 'run.sh'), runScriptText(spec));
    fs.chmodSync(path.join(tmp, 'run.sh'), 0o755);
    writeJsonAtomic(path.join(tmp, JOB_FILE), job);
  });
  return job;
}

/** What to install and run, machine by machine, for a job folder (`extra`: arguments to run.sh, such as --resume). */
export function jobInstructions(jobDir: string, cluster: Cluster, python: string, extra: string[] = []): string[] {
  const shown = path.relative(process.cwd(), jobDir) || '.';
  const lines = [
    `install (each machine): ${python} -m pip install -r ${path.join(shown, 'requirements.txt')}`,
    cluster.numMachines > 1
      ? `copy ${shown} to every machine (the same path, or a shared file system); the main machine writes the checkpoints, log and TensorBoard events`
      : '',
  ].filter(Boolean);
  for (let rank = 0; rank < cluster.numMachines; rank++) {
    const who = cluster.numMachines > 1 ? `machine ${rank}${rank === 0 ? ` (${cluster.mainProcessIp}, main)` : ''}` : 'run';
    lines.push(`${who}: MACHINE_RANK=${rank} PYTHON=${python} sh ${path.join(shown, 'run.sh')}${extra.map((a) => ` ${a}`).join('')}`);
  }
  return lines;
}
