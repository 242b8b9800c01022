/**
 * The Python side of `--launcher accelerate`: which interpreter, which versions of torch, transformers, accelerate
 * (and DeepSpeed, sentencepiece, safetensors) it imports, the CUDA devices torch sees; one probe with a time limit,
 * so that a missing or hanging Python costs seconds, not a run.
 */
import { spawnSync } from 'node:child_process';

export interface PythonEnv {
  /** The interpreter as given (`python3`, a path). */
  python: string;
  executable: string;
  version: string;
  /** Package versions, null where the package does not import. */
  packages: Record<(typeof PACKAGES)[number], string | null>;
  cuda: { devices: string[]; bf16: boolean };
}

export const PACKAGES = ['torch', 'transformers', 'accelerate', 'safetensors', 'sentencepiece', 'peft', 'deepspeed'] as const;
/** What every job needs; peft for a LoRA job, deepspeed with --deepspeed-stage, sentencepiece for t5cls's exact token ids. */
export const REQUIRED_PACKAGES = ['torch', 'transformers', 'accelerate', 'safetensors'] as const;

const PROBE = `
import json, sys, importlib
out = {"executable": sys.executable, "version": sys.version.split()[0], "packages": {}, "cuda": {"devices": [], "bf16": False}}
for name in ${JSON.stringify(PACKAGES)}:
    try:
        if name == "deepspeed":
            import importlib.util
            spec = importlib.util.find_spec("deepspeed")
            if spec is None:
                raise ImportError
            from importlib.metadata import version
            out["packages"][name] = version("deepspeed")
            continue
        m = importlib.import_module(name)
        out["packages"][name] = getattr(m, "__version__", "unknown")
    except Exception:
        out["packages"][name] = None
if out["packages"]["torch"]:
    import torch
    if torch.cuda.is_available():
        out["cuda"]["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        out["cuda"]["bf16"] = bool(torch.cuda.is_bf16_supported())
print(json.dumps(out))
`;

/** Runs the probe; `error` says in one line why there is no usable answer (no interpreter, a time-out, …). */
export function probePython(python: string, timeoutMs = 30_000): { env?: PythonEnv; error?: string } {
  const r = spawnSync(python, ['-c', PROBE], { encoding: 'utf-8', timeout: timeoutMs, env: { ...process.env, PYTHONWARNINGS: 'ignore' } });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { error: `${python}: no such interpreter` };
    if (code === 'ETIMEDOUT') return { error: `${python}: the probe did not answer within ${timeoutMs / 1000} s` };
    return { error: `${python}: ${r.error.message}` };
  }
  if (r.status !== 0) {
    const last = (r.stderr || '').trim().split('\n').pop() ?? '';
    return { error: `${python}: the probe failed (exit code ${r.status}${last ? `: ${last}` : ''})` };
  }
  try {
    const parsed = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as Omit<PythonEnv, 'python'>;
    return { env: { python, ...parsed } };
  } catch {
    return { error: `${python}: the probe printed no JSON` };
  }
}

/** The packages a job with these needs that `env` lacks. */
export function missingPackages(env: PythonEnv, needs: { deepspeed: boolean; peft?: boolean }): string[] {
  const wanted: string[] = [...REQUIRED_PACKAGES, ...(needs.peft ? ['peft'] : []), ...(needs.deepspeed ? ['deepspeed'] : [])];
  return wanted.filter((name) => !env.packages[name as (typeof PACKAGES)[number]]);
}

/** One line: the interpreter and what it imports. */
export function describePythonEnv(env: PythonEnv): string {
  const versions = PACKAGES.map((name) => `${name} ${env.packages[name] ?? 'missing'}`).join(', ');
  return `Python ${env.version} (${env.executable}): ${versions}`;
}

/** One line: the devices torch sees. */
export function describeDevices(env: PythonEnv): string {
  const d = env.cuda.devices;
  if (!d.length) return 'no CUDA device visible to torch: jobs run as CPU processes (gloo)';
  return `${d.length} CUDA device${d.length === 1 ? '' : 's'} (${[...new Set(d)].join(', ')}), bf16 ${env.cuda.bf16 ? 'supported' : 'not supported'}`;
}
