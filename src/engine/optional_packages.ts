/**
 * Finding and loading optional native packages (tfjs-node, tfjs-node-gpu, onnxruntime-node) that may or may not
 * be installed beside t5cls, and turning their load failures into one line a user can act on.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

const ownRequire = createRequire(import.meta.url);

/**
 * The folder of installed package `name`, or undefined. Looks where Node would from t5cls itself, then in each of
 * `extraPaths`: a folder that is the package itself, or one from which it resolves (holding node_modules/name).
 */
export function resolvePackageDir(name: string, extraPaths: readonly string[] = []): string | undefined {
  for (const p of extraPaths) {
    const abs = path.resolve(p);
    const own = readPackageJson(abs);
    if (own?.name === name) return abs;
    const found = resolveFrom(name, [abs]);
    if (found) return found;
  }
  return resolveFrom(name);
}

function resolveFrom(name: string, paths?: string[]): string | undefined {
  try {
    const pj = ownRequire.resolve(`${name}/package.json`, paths ? { paths } : undefined);
    return path.dirname(pj);
  } catch {
    // Packages whose "exports" hide package.json: resolve the main entry and walk up.
    try {
      let dir = path.dirname(ownRequire.resolve(name, paths ? { paths } : undefined));
      for (;;) {
        if (readPackageJson(dir)?.name === name) return dir;
        const up = path.dirname(dir);
        if (up === dir) return undefined;
        dir = up;
      }
    } catch {
      return undefined;
    }
  }
}

export function readPackageJson(dir: string): { name?: string; version?: string } | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf-8')) as { name?: string; version?: string };
  } catch {
    return undefined;
  }
}

/**
 * One line saying why a native package failed to load, from the loader's error text: the exact shared library
 * that is missing (e.g. `libcudart.so.11.0`), a missing symbol version (e.g. `GLIBC_2.29`), or else the error's
 * first line.
 */
export function loadFailureReason(err: unknown): string {
  const text = err instanceof Error ? `${err.message}` : String(err);
  const lib = /([\w.+-]+\.(?:so(?:\.[\w]+)*|dylib|dll)): cannot open shared object file/.exec(text);
  if (lib) return `missing shared library ${lib[1]}`;
  const ver = /version [`'"]?([A-Z]+_[\d.]+)[`'"]? not found/.exec(text);
  if (ver) return `system library too old: ${ver[1]} not found`;
  const win = /The specified module could not be found/.exec(text);
  if (win) return 'a DLL it needs is missing (The specified module could not be found)';
  const first = text.split('\n').find((l) => l.trim() !== '') ?? text;
  return first.length > 300 ? `${first.slice(0, 300)}…` : first;
}

/** True when `err` says that the module itself (not one of its dependencies) is not installed. */
export function isModuleNotFound(err: unknown, name: string): boolean {
  const e = err as { code?: string; message?: string };
  return (
    (e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND') &&
    typeof e.message === 'string' &&
    e.message.includes(`'${name}'`)
  );
}
