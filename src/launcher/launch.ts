/**
 * `accelerate launch` of a job folder on this machine, its output streamed line by line as it comes; the line the
 * script ends with (`checkpoint: <folder>`) names the best checkpoint.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { ACCELERATE_CONFIG_FILE } from './accelerate_config.js';
import { JOB_FILE, SCRIPT } from './job_folder.js';

export interface LaunchResult {
  code: number;
  /** The best checkpoint the job saved, when it saved one. */
  checkpoint?: string;
  /** The job's last error line (`t5cls job: …`), when it failed with one. */
  error?: string;
}

export function launchArgs(machineRank: number, extra: string[] = []): string[] {
  return [
    '-m',
    'accelerate.commands.launch',
    '--config_file',
    ACCELERATE_CONFIG_FILE,
    '--machine_rank',
    String(machineRank),
    SCRIPT,
    JOB_FILE,
    ...extra,
  ];
}

export function launchJob(
  jobDir: string,
  python: string,
  opts: { machineRank: number; extra?: string[]; say: (line: string) => void },
): Promise<LaunchResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, launchArgs(opts.machineRank, opts.extra), {
      cwd: jobDir,
      env: { ...process.env, PYTHONUNBUFFERED: '1', ACCELERATE_DISABLE_RICH: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let checkpoint: string | undefined;
    let error: string | undefined;
    const lines = (stream: NodeJS.ReadableStream) => {
      let rest = '';
      stream.setEncoding('utf-8');
      stream.on('data', (chunk: string) => {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop()!;
        for (const line of parts) take(line);
      });
      stream.on('end', () => rest && take(rest));
    };
    const take = (line: string) => {
      const text = line.replace(/\r$/, '');
      const ckpt = /^checkpoint: (.+)$/.exec(text);
      if (ckpt) checkpoint = path.resolve(jobDir, ckpt[1]!);
      else if (text.startsWith('t5cls job: ')) error = text.slice('t5cls job: '.length);
      else opts.say(text);
    };
    lines(child.stdout!);
    lines(child.stderr!);
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('error', (e) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      reject(e);
    });
    child.on('close', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve({ code: code ?? (signal ? 128 : 1), checkpoint, error });
    });
  });
}
