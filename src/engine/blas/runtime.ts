/**
 * Matrix products through a system CBLAS (OpenBLAS by default), called through the optional `koffi` FFI package.
 *
 * ONNX Runtime's MLAS reaches 50-140 GFLOP/s on T5's products on a 2-core AVX2 machine; OpenBLAS 110-170 on the
 * same shapes (and PyTorch's MKL 80-140), so where a machine has OpenBLAS the cpu and wasm engines send their large
 * products to it. `cblas_sgemm` is called synchronously on the JavaScript thread and uses the library's own threads.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';

import { BLAS_ENV } from '../flags.js';
import { broadcastBatchIndex, planMatMul } from '../matmul_plan.js';
import { loadFailureReason, readPackageJson, resolvePackageDir } from '../optional_packages.js';
import { checkProducts, type MatrixProducts } from '../products.js';

export const KOFFI_PACKAGE = 'koffi';

/** The libraries tried, in order, when T5CLS_BLAS names none (OpenBLAS's threaded builds under their usual names). */
export function defaultBlasLibraries(platform: NodeJS.Platform = process.platform): string[] {
  switch (platform) {
    case 'darwin':
      return ['/opt/homebrew/opt/openblas/lib/libopenblas.dylib', '/usr/local/opt/openblas/lib/libopenblas.dylib', 'libopenblas.dylib'];
    case 'win32':
      return ['libopenblas.dll', 'openblas.dll'];
    default:
      // libopenblasp is Fedora's threaded build (its libopenblas.so.0 is single-threaded); Debian's is libopenblas.so.0.
      return ['libopenblasp.so.0', 'libopenblas.so.0', 'libopenblas.so'];
  }
}

/** The install hint for a machine without OpenBLAS. */
export function blasInstallHint(platform: NodeJS.Platform = process.platform): string {
  switch (platform) {
    case 'darwin':
      return 'brew install openblas';
    case 'win32':
      return `put OpenBLAS's libopenblas.dll on PATH`;
    default:
      return 'apt install libopenblas0-pthread (Debian/Ubuntu) or dnf install openblas-threads (Fedora)';
  }
}

export interface BlasMatMul extends MatrixProducts {
  /** What the library says it is, e.g. "OpenBLAS 0.3.21 (Zen)"; else the library's file name. */
  readonly name: string;
  /** The name or path it was loaded from. */
  readonly library: string;
  readonly koffiVersion: string;
  /** Threads the library uses (as it reports them; the requested count when it cannot say). */
  readonly threads: number;
}

/** `installed`: whether koffi is (the library itself may still be missing). */
export type BlasLoadResult = { ok: true; blas: BlasMatMul } | { ok: false; reason: string; installed: boolean };

type SgemmFn = (
  order: number,
  transA: number,
  transB: number,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  lda: number,
  b: Float32Array,
  ldb: number,
  beta: number,
  c: Float32Array,
  ldc: number,
) => void;

interface KoffiLib {
  func(prototype: string): (...args: unknown[]) => unknown;
}
interface Koffi {
  load(name: string): KoffiLib;
}

const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

/** What T5CLS_BLAS asks for: `off` for `0`, a library name or path, or undefined (the defaults) when unset or empty. */
export function blasWanted(env = process.env[BLAS_ENV]): 'off' | string | undefined {
  const value = env?.trim();
  if (value === '0') return 'off';
  return value ? value : undefined;
}

const loaded = new Map<string, BlasLoadResult>();

/**
 * Loads `library` (default: the first of `defaultBlasLibraries()` that loads) once, and sets its thread count (a
 * setting of the whole library: the last call's count holds); failures are returned, never thrown.
 */
export function loadBlasMatMul(threads: number, library?: string): BlasLoadResult {
  const key = library ?? '';
  let result = loaded.get(key);
  if (!result) {
    result = load(library);
    loaded.set(key, result);
  }
  if (result.ok) (result.blas as BlasMatMulImpl).setThreads(threads);
  return result;
}

function load(asked: string | undefined): BlasLoadResult {
  const dir = resolvePackageDir(KOFFI_PACKAGE);
  if (!dir) return { ok: false, installed: false, reason: `${KOFFI_PACKAGE} (the FFI package that calls a system BLAS) is not installed` };
  const koffiVersion = readPackageJson(dir)?.version ?? 'unknown';
  let koffi: Koffi;
  try {
    koffi = createRequire(path.join(dir, 'package.json'))(dir) as Koffi;
  } catch (e) {
    return { ok: false, installed: false, reason: `${KOFFI_PACKAGE} ${koffiVersion} failed to load: ${loadFailureReason(e)}` };
  }
  const libraries = asked ? [asked] : defaultBlasLibraries();
  const failures: string[] = [];
  for (const library of libraries) {
    let lib: KoffiLib;
    try {
      lib = koffi.load(library);
    } catch (e) {
      failures.push(loadFailureReason(e));
      continue;
    }
    try {
      const blas = new BlasMatMulImpl(lib, library, koffiVersion);
      checkProducts(blas);
      return { ok: true, blas };
    } catch (e) {
      return { ok: false, installed: true, reason: `${library} loaded but cannot be used: ${loadFailureReason(e)}` };
    }
  }
  return {
    ok: false,
    installed: true,
    reason: asked ? `${BLAS_ENV}=${asked}: ${failures[0]}` : `no OpenBLAS found (tried ${libraries.join(', ')})`,
  };
}

function optionalFunc(lib: KoffiLib, prototype: string): ((...args: unknown[]) => unknown) | undefined {
  try {
    return lib.func(prototype);
  } catch {
    return undefined;
  }
}

class BlasMatMulImpl implements BlasMatMul {
  private readonly sgemm: SgemmFn;
  private readonly setLibraryThreads: ((n: number) => unknown) | undefined;
  private readonly getLibraryThreads: (() => unknown) | undefined;
  readonly name: string;
  threads = 1;
  readonly acceptsShared = true;
  calls = 0;

  constructor(
    lib: KoffiLib,
    readonly library: string,
    readonly koffiVersion: string,
  ) {
    this.sgemm = lib.func(
      'void cblas_sgemm(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int)',
    ) as SgemmFn;
    this.setLibraryThreads = optionalFunc(lib, 'void openblas_set_num_threads(int)') ?? optionalFunc(lib, 'void MKL_Set_Num_Threads(int)');
    this.getLibraryThreads = optionalFunc(lib, 'int openblas_get_num_threads()');
    const config = optionalFunc(lib, 'const char *openblas_get_config()')?.() as string | undefined;
    const core = optionalFunc(lib, 'const char *openblas_get_corename()')?.() as string | undefined;
    const version = config ? /^(OpenBLAS\s+[\d.]+)/.exec(config)?.[1] : undefined;
    this.name = version ? `${version}${core ? ` (${core})` : ''}` : path.basename(library);
  }

  setThreads(threads: number): void {
    this.setLibraryThreads?.(threads);
    this.threads = this.getLibraryThreads ? (this.getLibraryThreads() as number) : threads;
  }

  matMul(
    a: Float32Array,
    aShape: readonly number[],
    b: Float32Array,
    bShape: readonly number[],
    transposeA: boolean,
    transposeB: boolean,
    out: Float32Array,
    outShape: readonly number[],
  ): void {
    const { m, n, k, batch } = planMatMul(aShape, bShape, transposeA, transposeB);
    this.calls++;
    const ta = transposeA ? TRANS : NO_TRANS;
    const tb = transposeB ? TRANS : NO_TRANS;
    const lda = transposeA ? m : k;
    const ldb = transposeB ? k : n;
    const bMatrices = b.length / (k * n);
    if (batch === 1 || (bMatrices === 1 && !transposeA && a.length === batch * m * k)) {
      // One product; a batch of a against one b is one taller product.
      this.sgemm(ROW_MAJOR, ta, tb, batch * m, n, k, 1, a, lda, b, ldb, 0, out, n);
      return;
    }
    const aIndex = broadcastBatchIndex(aShape, outShape);
    const bIndex = broadcastBatchIndex(bShape, outShape);
    for (let i = 0; i < batch; i++) {
      const av = a.subarray(aIndex[i]! * m * k, (aIndex[i]! + 1) * m * k);
      const bv = b.subarray(bIndex[i]! * k * n, (bIndex[i]! + 1) * k * n);
      this.sgemm(ROW_MAJOR, ta, tb, m, n, k, 1, av, lda, bv, ldb, 0, out.subarray(i * m * n, (i + 1) * m * n), n);
    }
  }
}
