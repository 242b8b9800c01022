import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Writes a file so that readers only ever see the old content or the complete new content: the data goes to a
 * temp file in the same folder, is fsynced, then renamed over the target. On failure the target is untouched and
 * the temp file is removed.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  writeFileAtomicWith(file, (fd) => writeAll(fd, typeof data === 'string' ? Buffer.from(data, 'utf-8') : data));
}

/** Writes every byte of `data` at the file's current position (one writeSync may write fewer). */
export function writeAll(fd: number, data: Uint8Array): void {
  for (let done = 0; done < data.byteLength; ) done += fs.writeSync(fd, data, done, data.byteLength - done);
}

/** `writeFileAtomic` for content written piece by piece by `write(fd)`, so that it need never be held whole. */
export function writeFileAtomicWith(file: string, write: (fd: number) => void): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'w');
    write(fd);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  try {
    const dfd = fs.openSync(dir, 'r');
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
  } catch {
    // Some file systems do not allow fsync on a folder; the rename itself is still atomic.
  }
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}
