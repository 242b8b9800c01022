/**
 * Reuses the float32 arrays of freed cpu tensors for the cpu engine's new outputs of the same size. A fresh
 * JavaScript array of megabytes is zero-filled memory the system hands out page by page (a page fault each 4 KiB);
 * a training step of a large T5 allocates gigabytes of them, and the faults cost as much as the arithmetic that
 * fills them.
 *
 * An array is reused only when nothing can see it any more: no live tensor holds a view of its memory (a slice
 * can share its input's buffer), and it was never handed out by `dataSync`/`data` or taken from the caller by
 * `tf.tensor` (the cpu backend shares those arrays instead of copying). The pool holds at most POOL_BYTES.
 */
import { cpuArrayPools, type CpuBackendLike } from '../tfjs_internals.js';

export const POOL_BYTES = 256 * 2 ** 20;
/** Arrays below this size are left to the allocator (their pages are few and usually reused already). */
const MIN_POOLED_ELEMENTS = 1 << 14;

interface CpuBackendInternals extends Omit<CpuBackendLike, 'data' | 'makeTensorInfo'> {
  data: {
    get(dataId: object): { values?: unknown } | undefined;
    has(dataId: object): boolean;
  };
  write(values: unknown, shape: number[], dtype: string): object;
  move(dataId: object, values: unknown, shape: number[], dtype: string, refCount: number): void;
  readSync(dataId: object): unknown;
  disposeData(dataId: object, force?: boolean): boolean;
  makeTensorInfo(shape: number[], dtype: string, values?: unknown): { dataId: object };
}

type Patched = Pick<CpuBackendInternals, 'write' | 'move' | 'readSync' | 'disposeData' | 'makeTensorInfo'>;

export class ArrayPool {
  private readonly free = new Map<number, Float32Array[]>();
  private bytes = 0;
  /** Live tensor entries holding a view of each buffer. */
  private readonly holders = new WeakMap<ArrayBufferLike, number>();
  /** Buffers that code outside the backend has seen: never reused. */
  private readonly exposed = new WeakSet<ArrayBufferLike>();
  hits = 0;

  /** A float32 array of `n` elements with stale contents (the caller writes every element), or undefined. */
  take(n: number): Float32Array | undefined {
    const list = this.free.get(n);
    const a = list?.pop();
    if (!a) return undefined;
    this.bytes -= a.byteLength;
    this.hits++;
    return a;
  }

  hold(values: unknown): void {
    const buffer = bufferOf(values);
    if (buffer) this.holders.set(buffer, (this.holders.get(buffer) ?? 0) + 1);
  }

  expose(values: unknown): void {
    const buffer = bufferOf(values);
    if (buffer) this.exposed.add(buffer);
  }

  release(values: unknown): void {
    const buffer = bufferOf(values);
    if (!buffer) return;
    const held = this.holders.get(buffer);
    // An array from before the pool was installed: who else has seen it is unknown.
    if (held === undefined) return;
    const left = held - 1;
    this.holders.set(buffer, left);
    if (left > 0 || this.exposed.has(buffer) || !(values instanceof Float32Array)) return;
    if (values.byteOffset !== 0 || values.byteLength !== buffer.byteLength || values.length < MIN_POOLED_ELEMENTS) return;
    if (this.bytes + values.byteLength > POOL_BYTES) return;
    const list = this.free.get(values.length) ?? [];
    list.push(values);
    this.free.set(values.length, list);
    this.bytes += values.byteLength;
  }

  clear(): void {
    this.free.clear();
    this.bytes = 0;
  }
}

function bufferOf(values: unknown): ArrayBufferLike | undefined {
  return ArrayBuffer.isView(values) ? values.buffer : undefined;
}

const installed = new WeakMap<object, { pool: ArrayPool; originals: Patched }>();

/** Hooks `pool` into a cpu backend instance: its frees fill the pool, its reads and writes mark arrays seen. */
export function installArrayPool(backend: object): ArrayPool {
  const existing = installed.get(backend);
  if (existing) return existing.pool;
  const b = backend as CpuBackendInternals;
  const pool = new ArrayPool();
  const originals: Patched = {
    write: b.write,
    move: b.move,
    readSync: b.readSync,
    disposeData: b.disposeData,
    makeTensorInfo: b.makeTensorInfo,
  };
  // The backend's makeTensorInfo (kernel outputs) stores its array through write (which otherwise takes a
  // caller's array): inside it, write is not the caller's.
  let making = 0;
  b.write = function (values, shape, dtype) {
    const dataId = originals.write.call(this, values, shape, dtype);
    if (making === 0) {
      pool.hold(values);
      pool.expose(values);
    }
    return dataId;
  };
  b.move = function (dataId, values, shape, dtype, refCount) {
    originals.move.call(this, dataId, values, shape, dtype, refCount);
    pool.hold(values);
    pool.expose(values);
  };
  b.makeTensorInfo = function (shape, dtype, values) {
    making++;
    let info: { dataId: object };
    try {
      info = originals.makeTensorInfo.call(this, shape, dtype, values);
    } finally {
      making--;
    }
    pool.hold(this.data.get(info.dataId)?.values);
    return info;
  };
  b.readSync = function (dataId) {
    pool.expose(this.data.get(dataId)?.values);
    return originals.readSync.call(this, dataId);
  };
  b.disposeData = function (dataId, force) {
    const values = this.data.get(dataId)?.values;
    const freed = originals.disposeData.call(this, dataId, force);
    if (values !== undefined && !this.data.has(dataId)) pool.release(values);
    return freed;
  };
  installed.set(backend, { pool, originals });
  cpuArrayPools.set(backend, pool);
  return pool;
}

/** Removes the hooks (the backend's own methods again) and drops the pooled arrays. */
export function uninstallArrayPool(backend: object): void {
  const entry = installed.get(backend);
  if (!entry) return;
  // The instance had no own properties for these before: removing ours lets the prototype's methods show through.
  for (const key of Object.keys(entry.originals)) delete (backend as Record<string, unknown>)[key];
  entry.pool.clear();
  installed.delete(backend);
  cpuArrayPools.delete(backend);
}

/** The pool hooked into `backend`, if any. */
export function arrayPoolOf(backend: object): ArrayPool | undefined {
  return installed.get(backend)?.pool;
}
