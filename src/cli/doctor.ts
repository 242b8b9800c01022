/**
 * `t5cls doctor`: what a user needs to know before training — Node.js, the TensorFlow.js backends that load and
 * the one chosen, GPU support (@tensorflow/tfjs-node-gpu) and what to do when it is missing, threads, memory, a
 * matmul speed probe and a few training steps of a tiny T5. Exit code 0 when training can run.
 */
import { createRequire } from 'node:module';
import * as os from 'node:os';
import type { ParsedParams } from './options.js';
import { tf } from '../tf.js';
import { T5clsError } from '../errors.js';
import { initBackend, type BackendChoice, type BackendInfo, type DeviceChoice } from '../engine/init.js';
import { describeBackends, type BackendProbe } from '../engine/backend_probes.js';
import { benchmarkMatMul, type MatMulBench } from '../engine/bench.js';
import { NAMED_CONFIGS, T5Config } from '../model/config.js';
import { T5ForConditionalGeneration } from '../model/modeling_t5.js';
import { Adafactor } from '../train/optimizers/index.js';
import { ADVISED_LORA, estimateMemory, parameterCount, USABLE_SHARE, type OptimizerName } from '../model/memory_estimate.js';
import { ALL_LINEAR, type LoraConfig } from '../model/lora/config.js';
import { machineMemoryBytes } from '../engine/machine_memory.js';
import { WASM_TENSOR_BYTES } from '../engine/wasm/activate.js';
import { blasInstallHint } from '../engine/blas/runtime.js';
import { BLAS_ENV } from '../engine/flags.js';
import { gpuStatus, type GpuStatus } from './doctor_gpu.js';
import { formatPythonReport, pythonReport, type PythonReport } from './doctor_python.js';

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string; engines?: { node?: string } };

export const MIN_NODE_MAJOR = 20;

export interface TrainableSize {
  model: string;
  parameters: number;
  /** The numbers training updates: every parameter, or the LoRA adapter's (PEFT's "trainable params"). */
  trainable: number;
  batchSize: number;
  /** The LoRA adapter trained while the model stays frozen (the rows of `loraSizes`). */
  lora?: { r: number; targetModules: readonly string[] | typeof ALL_LINEAR };
  adamw: { totalBytes: number; fits: boolean; engine: 'wasm' | 'cpu' };
  adafactor: { totalBytes: number; fits: boolean; engine: 'wasm' | 'cpu' };
}

const FLAN = { feed_forward_proj: 'gated-gelu', tie_word_embeddings: false };
const FLAN_T5_BASE = new T5Config({ ...NAMED_CONFIGS.base, d_ff: 2048, ...FLAN });

/** The shapes people fine-tune, at the batch sizes of the tutorial t5cls follows. */
const SIZES: [string, T5Config, number][] = [
  ['t5-small', new T5Config({ ...NAMED_CONFIGS.small }), 16],
  ['t5-base', new T5Config({ ...NAMED_CONFIGS.base }), 16],
  ['flan-t5-base', FLAN_T5_BASE, 16],
  ['t5-large', new T5Config({ ...NAMED_CONFIGS.large }), 8],
  ['t5-3b', new T5Config({ d_model: 1024, d_kv: 128, d_ff: 16384, num_layers: 24, num_heads: 32 }), 8],
];

/** The shapes people train LoRA adapters of, with the adapter `t5cls train --lora-r 16` trains (q, v). */
const LORA_SIZES: [string, T5Config, number][] = [
  ['flan-t5-base', FLAN_T5_BASE, 16],
  ['flan-t5-large', new T5Config({ ...NAMED_CONFIGS.large, d_ff: 2816, ...FLAN }), 8],
  ['flan-t5-xl', new T5Config({ ...NAMED_CONFIGS.xl }), 8],
];

function trainableSizes(availableBytes: number, sizes = SIZES, lora?: LoraConfig): TrainableSize[] {
  return sizes.map(([model, config, batchSize]) => {
    const estimate = (optimizer: OptimizerName) =>
      estimateMemory(config, { batchSize, sourceLength: 64, targetLength: 4, optimizer, lora });
    const fit = (optimizer: OptimizerName) => {
      const e = estimate(optimizer);
      return {
        totalBytes: e.totalBytes,
        fits: e.totalBytes <= availableBytes * USABLE_SHARE,
        engine: e.tensorBytes > WASM_TENSOR_BYTES ? ('cpu' as const) : ('wasm' as const),
      };
    };
    return {
      model,
      parameters: parameterCount(config),
      trainable: estimate('adamw').trainableParameters,
      batchSize,
      ...(lora ? { lora: { r: lora.r, targetModules: lora.targetModules } } : {}),
      adamw: fit('adamw'),
      adafactor: fit('adafactor'),
    };
  });
}

export interface DoctorReport {
  ok: boolean;
  t5cls: string;
  tfjs: string;
  node: { version: string; required: string; ok: boolean };
  system: { platform: string; arch: string; cpu: string; cores: number };
  memory: { freeBytes: number; totalBytes: number; limitBytes: number | null };
  /** Memory t5-small fine-tuning keeps for weights, gradients and optimizer state (activations not included). */
  t5Small: { parameters: number; adamwBytes: number; adafactorBytes: number };
  backends: BackendProbe[];
  backend: { requested: BackendChoice; device: DeviceChoice; info: BackendInfo | null; error: string | null };
  threads: number | null;
  gpu: GpuStatus;
  speed: MatMulBench | { error: string } | null;
  training: { ok: boolean; losses: number[]; ms: number; error: string | null } | null;
  /**
   * Which T5 sizes fine-tune on this machine with each optimizer (batch × 64 input tokens × 4 label tokens): the
   * estimated peak memory, whether it fits, and the engine `auto` would take (wasm, or cpu past wasm's 4 GiB heap).
   */
  sizes: TrainableSize[];
  /** The same for LoRA adapters (r 16 on q, v) of larger shapes: the model frozen, only the adapter trained. */
  loraSizes: TrainableSize[];
  /** The Python side of `train --launcher accelerate` (TensorFlow.js training needs none). */
  python: PythonReport;
  /** Things that stop training (ok is false when there is one). */
  problems: string[];
  /** Things worth knowing that do not stop training. */
  warnings: string[];
}

export interface DoctorOptions {
  backend?: BackendChoice;
  device?: DeviceChoice;
  threads?: number;
}

export async function diagnose(opts: DoctorOptions = {}): Promise<DoctorReport> {
  const problems: string[] = [];
  const warnings: string[] = [];
  const major = Number(process.versions.node.split('.')[0]);
  const node = { version: process.version, required: `>=${MIN_NODE_MAJOR}`, ok: major >= MIN_NODE_MAJOR };
  if (!node.ok) problems.push(`Node.js ${process.version} is too old: t5cls needs Node.js ${MIN_NODE_MAJOR} or newer`);

  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const system = { platform: os.platform(), arch: os.arch(), cpu: os.cpus()[0]?.model?.trim() ?? 'unknown', cores };
  const limit = memoryLimit();
  const memory = { freeBytes: os.freemem(), totalBytes: os.totalmem(), limitBytes: limit };

  const parameters = parameterCount(new T5Config({ ...NAMED_CONFIGS.small }));
  // float32 weights and gradients, plus AdamW's two full-size moments; Adafactor's factored moments are tiny.
  const t5Small = { parameters, adamwBytes: parameters * 16, adafactorBytes: parameters * 8 };
  const available = Math.min(memory.freeBytes, limit ?? Infinity);
  if (available < t5Small.adafactorBytes) {
    warnings.push(
      `only ${gib(available)} of memory is free: fine-tuning t5-small needs more than ${gib(t5Small.adafactorBytes)} ` +
        `(Adafactor) or ${gib(t5Small.adamwBytes)} (AdamW) before activations`,
    );
  } else if (available < t5Small.adamwBytes) {
    warnings.push(
      `${gib(available)} of memory is free: fine-tuning t5-small with AdamW needs more than ${gib(t5Small.adamwBytes)}; try ` +
        `--use-adafactor`,
    );
  }

  const backends = await describeBackends({ threads: opts.threads });
  const gpu = await gpuStatus(backends.find((b) => b.name === 'tensorflow-gpu'));

  const requested = opts.backend ?? 'auto';
  const device = opts.device ?? 'auto';
  let info: BackendInfo | null = null;
  let backendError: string | null = null;
  try {
    info = await initBackend(requested, { threads: opts.threads, device });
  } catch (e) {
    backendError = (e as Error).message;
    problems.push(`the backend does not start: ${backendError}`);
  }

  let speed: DoctorReport['speed'] = null;
  let training: DoctorReport['training'] = null;
  if (info) {
    try {
      speed = info.matmul === 'js' ? benchmarkMatMul(256, 256, 512, { repeats: 3 }) : benchmarkMatMul(1024, 512, 2048, { repeats: 5 });
    } catch (e) {
      speed = { error: (e as Error).message };
    }
    training = trainingCheck();
    if (!training.ok) problems.push(`a training step fails on ${info.name}: ${training.error}`);
    if (info.matmul === 'js')
      warnings.push(
        'matrix products run in plain JavaScript: training will be very slow (install onnxruntime-node, or use the wasm backend)',
      );
    const blas = backends.find((b) => b.name === 'blas');
    if (info.matmul === 'onnxruntime' && blas && !blas.available && process.env[BLAS_ENV] === undefined) {
      warnings.push(
        `no system BLAS: matrix products run in ONNX Runtime, training runs up to 1.5x slower than with OpenBLAS (${blasInstallHint()})`,
      );
    }
  }
  return {
    ok: problems.length === 0,
    t5cls: pkg.version,
    tfjs: tf.version_core,
    node,
    system,
    memory,
    t5Small,
    sizes: trainableSizes(machineMemoryBytes()),
    loraSizes: trainableSizes(machineMemoryBytes(), LORA_SIZES, ADVISED_LORA),
    backends,
    backend: { requested, device, info, error: backendError },
    threads: info?.threads ?? null,
    gpu,
    speed,
    training,
    python: pythonReport(),
    problems,
    warnings,
  };
}

/** A cgroup memory limit below the machine's memory (containers), or null. */
function memoryLimit(): number | null {
  const constrained = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  if (typeof constrained === 'number' && constrained > 0 && constrained < os.totalmem()) return constrained;
  return null;
}

/** Three training steps of a tiny T5 on the backend in use: the loss must be finite and go down. */
export function trainingCheck(): { ok: boolean; losses: number[]; ms: number; error: string | null } {
  const t0 = performance.now();
  const losses: number[] = [];
  let model: T5ForConditionalGeneration | undefined;
  let opt: Adafactor | undefined;
  try {
    model = new T5ForConditionalGeneration(new T5Config({ ...NAMED_CONFIGS.tiny, vocab_size: 128 }), { seed: 7 });
    opt = new Adafactor({ lr: 1e-2, scaleParameter: false, relativeStep: false, warmupInit: false });
    const inputIds = [
      [5, 6, 7, 8, 1],
      [9, 10, 11, 1, 0],
    ];
    const attentionMask = [
      [1, 1, 1, 1, 1],
      [1, 1, 1, 1, 0],
    ];
    const labels = [
      [3, 1],
      [4, 1],
    ];
    const params = [...model.namedParameters().values()];
    for (let step = 0; step < 3; step++) {
      const { value, grads } = tf.variableGrads(() => model!.forward({ inputIds, attentionMask, labels, training: true }).loss!, params);
      opt.applyGradients(grads);
      losses.push(value.dataSync()[0]!);
      tf.dispose([value, ...Object.values(grads)]);
    }
    const ms = performance.now() - t0;
    if (!losses.every(Number.isFinite)) return { ok: false, losses, ms, error: `the loss is not finite (${losses.join(', ')})` };
    if (!(losses[2]! < losses[0]!))
      return { ok: false, losses, ms, error: `the loss does not go down (${losses.map((l) => l.toFixed(4)).join(' → ')})` };
    return { ok: true, losses, ms, error: null };
  } catch (e) {
    return { ok: false, losses, ms: performance.now() - t0, error: (e as Error).message.split('\n')[0] ?? '' };
  } finally {
    opt?.dispose();
    model?.dispose();
  }
}

function gib(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${Math.round(bytes / 1024 ** 2)} MiB`;
}

export function formatDoctorReport(r: DoctorReport): string {
  const lines: string[] = [];
  const row = (key: string, value: string) => lines.push(`${key.padEnd(10)}  ${value}`);
  lines.push(`t5cls ${r.t5cls} doctor (TensorFlow.js ${r.tfjs})`, '');
  row('Node.js', `${r.node.version} ${r.node.ok ? 'ok' : `TOO OLD: needs ${r.node.required}`}`);
  row('system', `${r.system.platform} ${r.system.arch}, ${r.system.cores} core${r.system.cores === 1 ? '' : 's'} (${r.system.cpu})`);
  const limit = r.memory.limitBytes !== null ? `, limit ${gib(r.memory.limitBytes)} (cgroup)` : '';
  row('memory', `${gib(r.memory.freeBytes)} free of ${gib(r.memory.totalBytes)}${limit}`);
  row(
    '',
    `t5-small (${(r.t5Small.parameters / 1e6).toFixed(1)}M parameters) keeps ${gib(r.t5Small.adamwBytes)} of weights, ` +
      `gradients and optimizer state with AdamW, ${gib(r.t5Small.adafactorBytes)} with Adafactor, plus activations`,
  );
  lines.push(
    '',
    `what fine-tunes here (estimated peak memory, batch × 64 tokens; ` +
      `${gib(USABLE_SHARE * (r.memory.limitBytes ?? r.memory.totalBytes))} usable):`,
  );
  const fitText = (f: TrainableSize['adamw']) => `${gib(f.totalBytes).padStart(9)} ${f.fits ? `yes (${f.engine})` : 'no'}`.padEnd(22);
  const sizeRow = (z: TrainableSize, after = '') =>
    lines.push(
      (
        `  ${z.model.padEnd(13)} ${`${(z.parameters / 1e6).toFixed(0)}M`.padStart(6)}  batch ${String(z.batchSize).padEnd(3)} ` +
        `AdamW ${fitText(z.adamw)} Adafactor ${fitText(z.adafactor)}${after}`
      ).trimEnd(),
    );
  for (const z of r.sizes) sizeRow(z);
  const lora = r.loraSizes[0]?.lora;
  if (lora) {
    const targets = lora.targetModules === ALL_LINEAR ? ALL_LINEAR : lora.targetModules.join(',');
    lines.push(`with a LoRA adapter (--lora-r ${lora.r}, on ${targets}; the model frozen, only the adapter trained):`);
    for (const z of r.loraSizes) sizeRow(z, `${(z.trainable / 1e6).toFixed(1)}M trained`);
  }
  lines.push('', 'backends (auto tries tensorflow-gpu, tensorflow, then wasm, then cpu; blas and onnxruntime speed up wasm and cpu):');
  const nameWidth = Math.max(...r.backends.map((b) => b.name.length));
  const pkgWidth = Math.max(...r.backends.map((b) => `${b.package}${b.version ? ` ${b.version}` : ''}`.length));
  for (const b of r.backends) {
    lines.push(
      `  ${b.available ? 'yes' : 'no '}  ${b.name.padEnd(nameWidth)}  ` +
        `${`${b.package}${b.version ? ` ${b.version}` : ''}`.padEnd(pkgWidth)}  ${b.detail}`,
    );
  }
  lines.push('');
  const info = r.backend.info;
  row('backend', info ? `${r.backend.requested} → ${info.description}` : `${r.backend.requested}: FAILED: ${r.backend.error}`);
  if (info) row('device', info.device === 'cuda' ? 'CUDA GPU' : 'CPU');
  row(
    'threads',
    r.threads !== null ? `${r.threads} of ${r.system.cores} core${r.system.cores === 1 ? '' : 's'} (change with --threads)` : 'n/a',
  );
  if (r.speed) {
    if ('error' in r.speed) row('speed', `probe failed: ${r.speed.error}`);
    else
      row(
        'speed',
        `${r.speed.gflops.toFixed(1)} GFLOP/s (${r.speed.m}×${r.speed.k} by ${r.speed.k}×${r.speed.n} matmul, median ` +
          `${r.speed.ms.toFixed(1)} ms)`,
      );
  }
  if (r.training) {
    row(
      'training',
      r.training.ok
        ? `ok: 3 steps of a tiny T5, loss ${r.training.losses.map((l) => l.toFixed(3)).join(' → ')} ` +
            `(${(r.training.ms / 1000).toFixed(1)} s)`
        : `FAILED: ${r.training.error}`,
    );
  }
  lines.push('');
  const g = r.gpu;
  const state =
    g.gpu === true
      ? 'ok, TensorFlow uses the CUDA GPU'
      : g.installed
        ? g.loads
          ? 'loads, but no GPU in use'
          : 'installed, does not load'
        : 'not installed';
  lines.push(`GPU (${g.package}${g.version ? ` ${g.version}` : ''}): ${state}${g.nvidiaDriver ? `; NVIDIA driver ${g.nvidiaDriver}` : ''}`);
  if (g.reason && g.installed) lines.push(`  why: ${g.reason}`);
  if (g.missingLibraries.length) lines.push(`  missing: ${g.missingLibraries.join(', ')}`);
  lines.push(`  ${g.gpu === true ? '' : 'what to do: '}${g.advice}`);
  lines.push('', ...formatPythonReport(r.python));
  for (const w of r.warnings) lines.push(`note: ${w}`);
  lines.push('');
  if (r.ok) lines.push(`ready: training can run on ${info?.name ?? '?'} (${info?.device === 'cuda' ? 'CUDA GPU' : 'CPU'}).`);
  else for (const p of r.problems) lines.push(`problem: ${p}`);
  return lines.join('\n');
}

export async function run({ params: p }: ParsedParams<'doctor'>): Promise<void> {
  const report = await diagnose({ backend: p.backend, device: p.device, threads: p.threads });
  console.log(p.json ? JSON.stringify(report, null, 2) : formatDoctorReport(report));
  if (!report.ok)
    throw new T5clsError(
      p.json ? `training cannot run here: ${report.problems.join('; ')}` : 'training cannot run here (the problems are listed above)',
    );
}
