import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError } from './errors.js';

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
  for (let done = 0; done < data.byteLength;) done += fs.writeSync(fd, data, done, data.byteLength - done);
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
  fsyncFolder(dir);
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

/** The temp name a folder is written under before it is renamed into place (`.NAME.partial-PID`, beside it). */
function partialFolderName(dir: string): string {
  return path.join(path.dirname(path.resolve(dir)), `.${path.basename(dir)}.partial-${process.pid}`);
}

/**
 * Writes a folder so that readers only ever see it complete: `fill` writes into a temp folder beside `dir`, which
 * is then renamed to `dir`. With `replace`, an existing `dir` is swapped out only after the new one is complete (and
 * put back if the swap fails); without it, `dir` must not exist yet. On failure the temp folder is removed and the
 * error is rethrown; whatever was at `dir` is untouched.
 */
export async function writeFolderAtomic(
  dir: string,
  fill: (tmp: string) => void | Promise<void>,
  options: { replace?: boolean } = {},
): Promise<void> {
  const parent = path.dirname(path.resolve(dir));
  const tmp = partialFolderName(dir);
  try {
    fs.mkdirSync(parent, { recursive: true });
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp);
    await fill(tmp);
    if (options.replace && fs.existsSync(dir)) swapIn(tmp, dir);
    else fs.renameSync(tmp, dir);
  } catch (e) {
    removeQuietly(tmp);
    throw e;
  }
  fsyncFolder(parent);
}

function swapIn(tmp: string, dir: string): void {
  const old = path.join(path.dirname(tmp), `.${path.basename(dir)}.replaced-${process.pid}`);
  fs.rmSync(old, { recursive: true, force: true });
  fs.renameSync(dir, old);
  try {
    fs.renameSync(tmp, dir);
  } catch (e) {
    fs.renameSync(old, dir);
    throw e;
  }
  removeQuietly(old);
}

/** Flushes a folder's entries (a rename into it) to disk where the file system allows it. */
export function fsyncFolder(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Not every file system allows fsync on a folder; the rename is atomic all the same.
  }
}

/** Removes a folder after a failure; a failure to remove it must not hide the first error. */
export function removeQuietly(dir: string): void {
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch {
    // Nothing was created there, or it cannot be removed either; the first error is the one to report.
  }
}

/** `text` (the content of `file`) parsed as JSON that must be an object; a FormatError naming the file otherwise. */
export function parseJsonObject(text: string, file: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new FormatError(`${file}: expected a JSON object`);
  return value as Record<string, unknown>;
}

/** The JSON object in `file`, or undefined when there is no such file (see parseJsonObject). */
export function readJsonObject(file: string): Record<string, unknown> | undefined {
  if (!fs.existsSync(file)) return undefined;
  return parseJsonObject(fs.readFileSync(file, 'utf-8'), file);
}
