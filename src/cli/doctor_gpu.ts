/**
 * `t5cls doctor`'s GPU check: whether @tensorflow/tfjs-node-gpu is installed, loads and sees a CUDA GPU (probed in
 * a child process, whose TensorFlow log names the CUDA libraries it cannot open), and what to do when it does not.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { tf } from '../tf.js';
import type { BackendProbe } from '../engine/backend_probes.js';
import { CUDA_REQUIREMENT, TFJS_NODE, TFJS_NODE_GPU } from '../engine/tensorflow/tfjs_node.js';
import { readPackageJson, resolvePackageDir } from '../engine/optional_packages.js';

export interface GpuStatus {
  package: typeof TFJS_NODE_GPU;
  installed: boolean;
  version: string | null;
  /** The package imports and registers the tensorflow backend. */
  loads: boolean;
  /** TensorFlow computes on a CUDA GPU (null when unknown, e.g. the package does not load). */
  gpu: boolean | null;
  /** Shared libraries that failed to load, exactly as named in the error or in TensorFlow's log. */
  missingLibraries: string[];
  /** Why it cannot be used, one line (null when it works). */
  reason: string | null;
  /** What to do. */
  advice: string;
  /** The NVIDIA kernel driver version (Linux), null when none is found. */
  nvidiaDriver: string | null;
}

const PROBE_TIMEOUT_MS = 120_000;

/**
 * Child process that imports tfjs-node-gpu and starts its backend. TensorFlow loads the CUDA libraries itself and
 * only logs the ones it cannot open (on stderr, then falls back to the CPU), so the log is read from a child.
 */
const GPU_PROBE = `
const dir = process.argv[1];
let tf;
const report = (stage, fields) => console.log(JSON.stringify({ stage, ...fields }));
const message = (e) => String((e && e.message) || e);
try { tf = require(dir); } catch (e) { report('load', { error: message(e) }); process.exit(0); }
Promise.resolve().then(() => tf.setBackend('tensorflow')).then((ok) => {
  const b = tf.engine().registry.tensorflow;
  const gpu = b && typeof b.isUsingGpuDevice === 'boolean' ? b.isUsingGpuDevice : null;
  report('ok', { backend: ok ? tf.getBackend() : null, gpu });
}, (e) => report('init', { error: message(e) }));
`;

interface ProbeResult {
  stage: 'load' | 'init' | 'ok' | 'crash';
  error?: string;
  gpu?: boolean | null;
  stderr: string;
}

function probeGpuPackage(dir: string): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', GPU_PROBE, dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '0' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), PROBE_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve({ ...(JSON.parse(line) as Omit<ProbeResult, 'stderr'>), stderr });
      } catch {
        const why =
          signal === 'SIGKILL'
            ? `did not finish in ${PROBE_TIMEOUT_MS / 1000} s`
            : signal
              ? `crashed (${signal})`
              : `exited with code ${code}`;
        resolve({ stage: 'crash', error: `loading it ${why}`, stderr });
      }
    });
  });
}

/** Library names in a loader error or in TensorFlow's "Could not load dynamic library" log lines. */
export function missingLibraries(text: string): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(/Could not load dynamic library '([^']+)'/g)) found.add(m[1]!);
  for (const m of text.matchAll(/([\w.+-]+\.(?:so(?:\.[\w]+)*|dylib|dll)): cannot open shared object file/g)) found.add(m[1]!);
  for (const m of text.matchAll(/missing shared library ([\w.+-]+)/g)) found.add(m[1]!);
  return [...found];
}

/** What to do about one missing library. */
export function libraryAdvice(lib: string): string {
  if (/^libcudnn/.test(lib)) return `${lib} is part of cuDNN: install cuDNN 8.1 for CUDA 11.2 and add its lib folder to LD_LIBRARY_PATH`;
  if (/^libcuda\.so/.test(lib)) return `${lib} comes with the NVIDIA driver: install the driver (nvidia-smi must work)`;
  if (/^lib(cudart|cublas|cublasLt|cufft|curand|cusolver|cusparse|nvrtc|nvinfer)/.test(lib)) {
    return (
      `${lib} is part of CUDA 11.2 (CUDA 12 does not provide the .so.11 libraries): install the CUDA 11.2 toolkit and ` +
      `add its lib64 folder to LD_LIBRARY_PATH, e.g. export LD_LIBRARY_PATH=/usr/local/cuda-11.2/lib64:$LD_LIBRARY_PATH`
    );
  }
  if (/^libtensorflow/.test(lib))
    return (
      `${lib} should have been downloaded when ${TFJS_NODE_GPU} was installed: run "npm rebuild ${TFJS_NODE_GPU}" where ` +
      `the network can reach storage.googleapis.com`
    );
  return `install the system library ${lib} (ldd on the package's tfjs_binding.node lists what is missing)`;
}

/** The driver version in /proc/driver/nvidia/version's first line (proprietary or open kernel module). */
export function parseNvidiaDriverVersion(text: string): string {
  const m = /Kernel Module\s+(?:for \S+\s+)?(\d+(?:\.\d+)+)/.exec(text);
  return m ? m[1]! : (text.split('\n')[0] ?? '').trim();
}

function nvidiaDriver(): string | null {
  try {
    return parseNvidiaDriverVersion(fs.readFileSync('/proc/driver/nvidia/version', 'utf-8'));
  } catch {
    return null;
  }
}

export async function gpuStatus(probe: BackendProbe | undefined): Promise<GpuStatus> {
  const driver = nvidiaDriver();
  const install = `npm install ${TFJS_NODE_GPU}@${tf.version_core}`;
  const installSteps =
    `to train on an NVIDIA GPU, install ${CUDA_REQUIREMENT.replace(' with an NVIDIA driver', '')}` +
    `${driver ? '' : ' and an NVIDIA driver'}, then "${install}" beside t5cls (its install step downloads libtensorflow, so ` +
    `it needs network access)`;
  const base = { package: TFJS_NODE_GPU, nvidiaDriver: driver } as const;
  const dir = resolvePackageDir(TFJS_NODE_GPU);
  const version = probe?.version ?? (dir ? (readPackageJson(dir)?.version ?? null) : null);
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return {
      ...base,
      installed: !!dir,
      version,
      loads: probe?.available ?? false,
      gpu: null,
      missingLibraries: [],
      reason: dir ? (probe?.available ? null : (probe?.detail ?? 'does not load')) : `${TFJS_NODE_GPU} is not installed`,
      advice:
        `${TFJS_NODE_GPU} runs on Linux x64 only; on ${process.platform} ${process.arch} training runs on the CPU ` +
        `(${TFJS_NODE} is the fastest CPU backend)`,
    };
  }
  if (!dir || (probe && !probe.installed)) {
    return {
      ...base,
      installed: false,
      version: null,
      loads: false,
      gpu: null,
      missingLibraries: [],
      reason: `${TFJS_NODE_GPU} is not installed`,
      advice: capitalize(installSteps),
    };
  }
  const child = await probeGpuPackage(dir);
  const libs = missingLibraries(`${probe?.detail ?? ''}\n${child.error ?? ''}\n${child.stderr}`);
  const libAdvice = libs.map(libraryAdvice);
  if (child.stage === 'ok' && child.gpu === true) {
    return {
      ...base,
      installed: true,
      version,
      loads: true,
      gpu: true,
      missingLibraries: libs,
      reason: null,
      advice: 'TensorFlow uses the CUDA GPU: train with --backend auto (or --device cuda to insist on it)',
    };
  }
  if (child.stage === 'ok') {
    const reason = libs.length
      ? `${TFJS_NODE_GPU} ${version} loads, but TensorFlow could not load ${libs.join(', ')} and runs on the CPU`
      : `${TFJS_NODE_GPU} ${version} loads, but TensorFlow sees no usable GPU and runs on the CPU`;
    const advice = libs.length
      ? libAdvice.join('; ')
      : driver
        ? `check that nvidia-smi lists the GPU, that CUDA_VISIBLE_DEVICES does not hide it${visibleDevices()}, ` +
          `and that ${CUDA_REQUIREMENT} are installed`
        : `no NVIDIA driver found (/proc/driver/nvidia/version): install the driver, then CUDA 11.2 and cuDNN 8.1`;
    return { ...base, installed: true, version, loads: true, gpu: false, missingLibraries: libs, reason, advice };
  }
  const detail = probe && !probe.available ? probe.detail : `${TFJS_NODE_GPU} ${version} failed to load: ${child.error}`;
  const glibc = /GLIBC_[\d.]+/.exec(detail);
  const advice = libs.length
    ? libAdvice.join('; ')
    : glibc
      ? `this system's C library is too old for ${TFJS_NODE_GPU} (${glibc[0]} not found): use a newer Linux (glibc 2.29 or later)`
      : /another copy of @tensorflow\/tfjs-core/.test(detail)
        ? `${install} so that it uses t5cls's TensorFlow.js`
        : `reinstall it ("${install}") and check ${CUDA_REQUIREMENT}`;
  return { ...base, installed: true, version, loads: false, gpu: null, missingLibraries: libs, reason: detail, advice };
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** ` (it is "…")` when CUDA_VISIBLE_DEVICES is set, else nothing. */
function visibleDevices(): string {
  const value = process.env['CUDA_VISIBLE_DEVICES'];
  return value !== undefined ? ` (it is "${value}")` : '';
}
