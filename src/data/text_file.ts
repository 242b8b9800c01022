import * as fs from 'node:fs';
import { UsageError } from '../errors.js';

/**
 * Reads a UTF-8 text file. A file that cannot be read, or is not UTF-8 (e.g. Latin-1 or UTF-16 exported by a
 * spreadsheet), is one clear error naming the file and, for bad bytes, the line.
 */
export function readUtf8(file: string, what?: string): string {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`${file}: cannot read${what ? ` the ${what}` : ''} (${code === 'ENOENT' ? 'no such file' : (code ?? String(e))})`);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const bad = firstInvalidUtf8(bytes);
    const line = bytes.subarray(0, bad).filter((b) => b === 0x0a).length + 1;
    throw new UsageError(
      `${file} line ${line}: not UTF-8 text (invalid byte 0x${bytes[bad]?.toString(16).padStart(2, '0')} at offset ${bad}); ` +
        `save the file as UTF-8`,
    );
  }
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
function firstInvalidUtf8(b: Uint8Array): number {
  const dec = new TextDecoder('utf-8', { fatal: true });
  let lo = 0;
  let hi = b.length;
  // The longest valid prefix, by bisection (a prefix cut inside a sequence is checked with stream: true).
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    try {
      dec.decode(b.subarray(0, mid), { stream: true });
      dec.decode();
      lo = mid;
    } catch {
      hi = mid - 1;
    }
  }
  return lo;
}
