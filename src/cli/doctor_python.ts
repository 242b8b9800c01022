/**
 * `doctor`'s Python section: the interpreter `train --launcher accelerate` would use (--python's default, python3,
 * or T5CLS_PYTHON), the versions of torch, transformers, accelerate and DeepSpeed it imports, the CUDA devices torch
 * sees, and whether the launcher can run here. One probe with a short time limit: a missing Python costs nothing.
 * `python3`, as --python's default (a test may name another with T5CLS_PYTHON).
 */
import { describeDevices, describePythonEnv, missingPackages, probePython, type PythonEnv } from '../launcher/python_env.js';

export interface PythonReport {
  python: string;
  env: PythonEnv | null;
  error: string | null;
  /** `--launcher accelerate` can run jobs here (DeepSpeed jobs also need deepspeed and a GPU). */
  launcherReady: boolean;
  missing: string[];
}

export function pythonReport(python = process.env.T5CLS_PYTHON || 'python3', timeoutMs = 15_000): PythonReport {
  const { env, error } = probePython(python, timeoutMs);
  const missing = env ? missingPackages(env, { deepspeed: false }) : [];
  return { python, env: env ?? null, error: error ?? null, launcherReady: !!env && missing.length === 0, missing };
}

export function formatPythonReport(r: PythonReport): string[] {
  const lines = [`Python (train --launcher accelerate, ${r.python}):`];
  if (!r.env) {
    lines.push(`  not usable: ${r.error}`, '  --launcher accelerate writes jobs (--dry-run) but cannot run them here');
    return lines;
  }
  lines.push(`  ${describePythonEnv(r.env)}`);
  if (r.env.packages.torch) lines.push(`  ${describeDevices(r.env)}`);
  if (r.launcherReady) {
    const deepspeed = r.env.packages.deepspeed && r.env.cuda.devices.length ? '; --deepspeed-stage too' : '';
    lines.push(
      `  --launcher accelerate can run here${deepspeed}${r.env.packages.sentencepiece ? '' : " (sentencepiece missing: decoding uses transformers' tokenizer)"}`,
    );
  } else {
    lines.push(`  --launcher accelerate cannot run here: missing ${r.missing.join(', ')} (pip install ${r.missing.join(' ')})`);
  }
  return lines;
}
