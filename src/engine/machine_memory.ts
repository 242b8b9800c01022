/**
 * How much memory this process may use: the machine's, or the limit of the control group it runs in (a container,
 * a CI job, a systemd slice) when that is lower.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

function cgroupLimit(): number | undefined {
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const text = fs.readFileSync(file, 'utf-8').trim();
      const n = Number(text);
      // cgroup v2 says "max" for no limit; v1 gives a huge number.
      if (Number.isFinite(n) && n > 0 && n < 2 ** 60) return n;
    } catch {
      // Not on Linux, or no such controller.
    }
  }
  return undefined;
}

export function machineMemoryBytes(): number {
  const limit = cgroupLimit();
  return limit !== undefined ? Math.min(limit, os.totalmem()) : os.totalmem();
}
