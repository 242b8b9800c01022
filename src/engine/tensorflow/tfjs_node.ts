/**
 * The TensorFlow C library backends, `@tensorflow/tfjs-node-gpu` and `@tensorflow/tfjs-node`. They are not
 * dependencies of t5cls (their install step downloads libtensorflow from outside npm); when a user installed one
 * beside it, it is imported here and its `tensorflow` backend used.
 */
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

import { tf } from '../../tf.js';
import { isModuleNotFound, loadFailureReason, readPackageJson, resolvePackageDir } from '../optional_packages.js';

export const TFJS_NODE_GPU = '@tensorflow/tfjs-node-gpu';
export const TFJS_NODE = '@tensorflow/tfjs-node';
export type TfjsNodePackage = typeof TFJS_NODE_GPU | typeof TFJS_NODE;

/** What tfjs-node-gpu 4.x needs on Linux x64 (TensorFlow 2.9 binaries). */
export const CUDA_REQUIREMENT = 'CUDA 11.2 and cuDNN 8.1 on Linux x64 with an NVIDIA driver';

export type TfjsNodeLoad =
  | { ok: true; pkg: TfjsNodePackage; version: string }
  | { ok: false; pkg: TfjsNodePackage; installed: boolean; version?: string; reason: string };

const loads = new Map<string, Promise<TfjsNodeLoad>>();

/** Imports `pkg` once (per search paths) and checks that it registered `tensorflow` in our tfjs. Never throws. */
export function loadTfjsNode(pkg: TfjsNodePackage, extraPaths: readonly string[] = []): Promise<TfjsNodeLoad> {
  const key = `${pkg}|${extraPaths.join(path.delimiter)}`;
  let p = loads.get(key);
  if (!p) {
    p = load(pkg, extraPaths);
    loads.set(key, p);
  }
  return p;
}

async function load(pkg: TfjsNodePackage, extraPaths: readonly string[]): Promise<TfjsNodeLoad> {
  const dir = resolvePackageDir(pkg, extraPaths);
  if (!dir) return { ok: false, pkg, installed: false, reason: `${pkg} is not installed` };
  const version = readPackageJson(dir)?.version ?? 'unknown';
  const before = tf.findBackendFactory('tensorflow');
  try {
    const entry = createRequire(path.join(dir, 'package.json')).resolve(dir);
    await import(pathToFileURL(entry).href);
  } catch (e) {
    const reason = isModuleNotFound(e, pkg) ? `${pkg} is not installed` : loadFailureReason(e);
    return { ok: false, pkg, installed: true, version, reason: `${pkg} ${version} failed to load: ${reason}` };
  }
  if (!tf.findBackendFactory('tensorflow') && !before) {
    return {
      ok: false,
      pkg,
      installed: true,
      version,
      reason:
        `${pkg} ${version} loaded but registered its backend with another copy of @tensorflow/tfjs-core; ` +
        `install ${pkg}@${tf.version_core} to match t5cls's TensorFlow.js`,
    };
  }
  return { ok: true, pkg, version };
}

/** Whether the running `tensorflow` backend computes on a GPU (undefined when it does not say). */
export function tensorflowUsesGpu(): boolean | undefined {
  const b = tf.engine().registry['tensorflow'] as { isUsingGpuDevice?: boolean } | undefined;
  return typeof b?.isUsingGpuDevice === 'boolean' ? b.isUsingGpuDevice : undefined;
}
