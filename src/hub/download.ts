import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { COMMIT_RE, type RepoRef, blobPath, isCached, linkSnapshot, readRef, repoCacheDir, snapshotPath, writeRef } from './cache.js';
import {
  DEFAULT_RETRY,
  DEFAULT_TIMEOUT_MS,
  type HttpSettings,
  HubError,
  HubUnreachableError,
  NetworkError,
  type RequestContext,
  type RetryOptions,
  backoffDelay,
  discardBody,
  displayUrl,
  hubJson,
  hubRequest,
  readBody,
  sleep,
} from './http.js';
import { hubSettings } from './settings.js';

export interface HubClientOptions {
  /** Base URL of the Hub; default `$HF_ENDPOINT`, else https://huggingface.co. */
  endpoint?: string;
  /** Access token; default `$HF_TOKEN`. Sent only to the Hub itself, never to storage hosts, never logged. */
  token?: string;
  /** The hub cache folder; default `$HF_HUB_CACHE`, else `<hfHome>/hub`. */
  cacheDir?: string;
  /** Default `$HF_HOME`, else ~/.cache/huggingface. */
  hfHome?: string;
  /** Answer from the cache only; default `$HF_HUB_OFFLINE`. */
  offline?: boolean;
  retry?: Partial<RetryOptions>;
  /** Time allowed for response headers and for each gap in a body; default 10 s. */
  timeoutMs?: number;
  /** Bytes done and to do over the files a call downloads. */
  onProgress?: (done: number, total: number | undefined) => void;
  log?: (line: string) => void;
  /** Appended to the error when the Hub cannot be reached, naming what to use offline. */
  offlineHint?: string;
}

export interface HubClient {
  http: HttpSettings;
  cacheDir: string;
  offline: boolean;
  onProgress?: (done: number, total: number | undefined) => void;
  log?: (line: string) => void;
  offlineHint?: string;
}

export function hubClient(opts: HubClientOptions = {}): HubClient {
  const s = hubSettings(opts);
  return {
    http: {
      endpoint: s.endpoint,
      token: s.token || undefined,
      retry: { ...DEFAULT_RETRY, ...opts.retry },
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      log: opts.log,
    },
    cacheDir: s.cacheDir,
    offline: s.offline,
    onProgress: opts.onProgress,
    log: opts.log,
    offlineHint: opts.offlineHint,
  };
}

export interface RepoInfo {
  /** The id the Hub answered with (the canonical one where a legacy id was asked for). */
  id: string;
  /** The commit the revision points to. */
  sha: string;
  /** Every file of the repository at that commit (`siblings[].rfilename`). */
  files: string[];
}

function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

/** `GET {endpoint}/api/{models|datasets}/{repo}/revision/{revision}`: the commit and the file list. */
export async function getRepoInfo(client: HubClient, repo: RepoRef, revision: string): Promise<RepoInfo> {
  const url = `${client.http.endpoint}/api/${repo.type}s/${encodePath(repo.id)}/revision/${encodeURIComponent(revision)}`;
  const body = await hubJson(client.http, { repo, revision }, url, client.offlineHint);
  const b = body as { id?: unknown; sha?: unknown; siblings?: unknown };
  if (typeof b !== 'object' || b === null || typeof b.sha !== 'string' || !COMMIT_RE.test(b.sha) || !Array.isArray(b.siblings)) {
    throw new HubError(`The Hub's answer for ${displayUrl(url)} lacks the commit (sha) or the file list (siblings)`, 200, undefined);
  }
  const files = b.siblings.map((s: unknown) => (s as { rfilename?: unknown }).rfilename).filter((f): f is string => typeof f === 'string');
  return { id: typeof b.id === 'string' ? b.id : repo.id, sha: b.sha, files };
}

export function resolveUrl(endpoint: string, repo: RepoRef, revision: string, file: string): string {
  const prefix = repo.type === 'dataset' ? 'datasets/' : '';
  return `${endpoint}/${prefix}${encodePath(repo.id)}/resolve/${encodeURIComponent(revision)}/${encodePath(file)}`;
}

export interface FileMetadata {
  file: string;
  commit: string;
  /** Normalized ETag: the sha256 of an LFS file, the git object id of a regular one. */
  etag: string;
  size: number;
  /** Where the content is: a signed storage URL for LFS files, the Hub's own URL otherwise. */
  location: string;
}

function normalizeEtag(etag: string | null): string | undefined {
  if (!etag) return undefined;
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '') || undefined;
}

/**
 * HEAD on `/resolve/`, following only same-origin redirects (renamed repos, `/api/resolve-cache/`). An LFS file
 * answers with a redirect to another host; that redirect itself carries the commit, the sha256 and the size.
 */
export async function fileMetadata(client: HubClient, repo: RepoRef, revision: string, file: string): Promise<FileMetadata> {
  const ctx: RequestContext = { repo, revision, file };
  const { sent, url } = await hubRequest(client.http, ctx, 'HEAD', resolveUrl(client.http.endpoint, repo, revision, file), {
    followSameOrigin: true,
    headers: { 'accept-encoding': 'identity' },
    offlineHint: client.offlineHint,
  });
  await discardBody(sent);
  const h = sent.res.headers;
  const redirected = sent.res.status >= 300 && sent.res.status < 400;
  const commit = h.get('x-repo-commit') ?? undefined;
  const etag = normalizeEtag(h.get('x-linked-etag') ?? h.get('etag'));
  const sizeHeader = h.get('x-linked-size') ?? (redirected ? null : h.get('content-length'));
  const size = sizeHeader !== null && /^\d+$/.test(sizeHeader) ? Number(sizeHeader) : undefined;
  const location = redirected ? new URL(h.get('location') ?? '', url).toString() : url;
  if (!commit || !COMMIT_RE.test(commit) || !etag || size === undefined) {
    const missing = [!commit || !COMMIT_RE.test(commit) ? 'X-Repo-Commit' : '', !etag ? 'ETag' : '', size === undefined ? 'size' : '']
      .filter(Boolean)
      .join(', ');
    throw new HubError(
      `The answer for file '${file}' of ${repo.type} repository '${repo.id}' lacks ${missing}: ${client.http.endpoint} does ` +
        `not look like a Hugging Face Hub (check HF_ENDPOINT and any proxy)`,
      sent.res.status,
      undefined,
    );
  }
  return { file, commit, etag, size, location };
}

class Progress {
  done = 0;
  constructor(
    readonly total: number | undefined,
    private readonly cb?: (done: number, total: number | undefined) => void,
  ) {}
  add(n: number): void {
    if (n === 0) return;
    this.done += n;
    this.cb?.(this.done, this.total);
  }
  start(): void {
    this.cb?.(this.done, this.total);
  }
}

function fileSize(p: string): number {
  try {
    return fs.statSync(p).size;
  } catch {
    return 0;
  }
}

function sha256File(p: string): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(p, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * Downloads one blob into `blobs/<etag>.incomplete`, resuming with Range after dropped connections (and from an
 * earlier interrupted run), then checks its size and, for LFS files, its sha256 before renaming it into place.
 */
async function downloadBlob(client: HubClient, repo: RepoRef, meta: FileMetadata, storage: string, progress: Progress): Promise<string> {
  const http = client.http;
  const ctx: RequestContext = { repo, revision: meta.commit, file: meta.file };
  const blob = blobPath(storage, meta.etag);
  const incomplete = `${blob}.incomplete`;
  fs.mkdirSync(path.dirname(blob), { recursive: true });
  if (!fs.existsSync(incomplete)) fs.writeFileSync(incomplete, new Uint8Array(0));
  let url = meta.location;
  let failures = 0;
  let redirects = 0;
  const what = `file '${meta.file}' of ${repo.type} repository '${repo.id}'`;
  for (;;) {
    let have = fileSize(incomplete);
    if (have > meta.size) {
      fs.truncateSync(incomplete, 0);
      progress.add(-have);
      have = 0;
    }
    if (have === meta.size) break;
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    if (have > 0) headers.range = `bytes=${have}-`;
    const { sent, url: finalUrl } = await hubRequest(http, ctx, 'GET', url, {
      followSameOrigin: true,
      headers,
      offlineHint: client.offlineHint,
    });
    const res = sent.res;
    if (res.status >= 300 && res.status < 400) {
      await discardBody(sent);
      const loc = res.headers.get('location');
      if (!loc || ++redirects > 10)
        throw new HubError(`Bad redirect while downloading ${what} from ${displayUrl(finalUrl)}`, res.status, undefined);
      url = new URL(loc, finalUrl).toString();
      continue;
    }
    url = finalUrl;
    let append = false;
    if (res.status === 206) {
      const m = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
      append = m !== null && Number(m[1]) === have;
      if (!append) {
        // A range other than the one asked for: start over with the whole file.
        await discardBody(sent);
        fs.rmSync(incomplete, { force: true });
        progress.add(-have);
        if (++failures >= http.retry.attempts) throw new HubError(`The storage host answered a wrong range for ${what}`, 206, undefined);
        continue;
      }
    } else if (have > 0) {
      // The server ignored the Range header and sends the whole file.
      progress.add(-have);
      have = 0;
    }
    const fd = fs.openSync(incomplete, append ? 'a' : 'w');
    const before = have;
    try {
      await readBody(http, sent, (chunk) => {
        fs.writeSync(fd, chunk);
        have += chunk.byteLength;
        progress.add(chunk.byteLength);
      });
      fs.fsyncSync(fd);
    } catch (e) {
      if (!(e instanceof NetworkError)) throw e;
      failures = have > before ? 1 : failures + 1;
      if (failures >= http.retry.attempts) {
        throw new HubError(
          `Download of ${what} kept failing (${e.message}, ${have} of ${meta.size} bytes); run again to resume it`,
          0,
          undefined,
        );
      }
      client.log?.(`Download of ${meta.file} interrupted (${e.message}) at ${have} of ${meta.size} bytes; resuming`);
      await sleep(backoffDelay(http.retry, failures));
      continue;
    } finally {
      fs.closeSync(fd);
    }
    break;
  }
  const got = fileSize(incomplete);
  if (got !== meta.size) {
    fs.rmSync(incomplete, { force: true });
    throw new HubError(
      `Download of ${what} is corrupt: ${got} bytes where the Hub announced ${meta.size}; it was discarded, run again`,
      0,
      undefined,
    );
  }
  if (/^[0-9a-f]{64}$/.test(meta.etag)) {
    const digest = sha256File(incomplete);
    if (digest !== meta.etag) {
      fs.rmSync(incomplete, { force: true });
      throw new HubError(
        `Download of ${what} is corrupt: sha256 ${digest} where the Hub announced ${meta.etag}; it was discarded, run again`,
        0,
        undefined,
      );
    }
  }
  fs.renameSync(incomplete, blob);
  return blob;
}

export interface DownloadResult {
  commit: string;
  /** The snapshot folder `<cacheDir>/<type>s--<org>--<name>/snapshots/<commit>`. */
  snapshotDir: string;
  /** Local path (inside the snapshot) of each file asked for. */
  paths: Map<string, string>;
}

function fromCache(client: HubClient, repo: RepoRef, revision: string, files: string[]): DownloadResult | undefined {
  const storage = repoCacheDir(client.cacheDir, repo);
  const commit = readRef(storage, revision);
  if (!commit) return undefined;
  const paths = new Map<string, string>();
  for (const f of files) {
    const p = snapshotPath(storage, commit, f);
    if (!isCached(p)) return undefined;
    paths.set(f, p);
  }
  return { commit, snapshotDir: path.join(storage, 'snapshots', commit), paths };
}

/**
 * Brings files of one revision into the cache, as `hf_hub_download` does for each: files already in the snapshot
 * of a known commit cost no request; others are resolved (HEAD), then downloaded unless their blob is there.
 * When the Hub cannot be reached, files cached for the revision are used.
 */
export async function downloadFiles(client: HubClient, repo: RepoRef, revision: string, files: string[]): Promise<DownloadResult> {
  const storage = repoCacheDir(client.cacheDir, repo);
  if (COMMIT_RE.test(revision) || client.offline) {
    const cached = fromCache(client, repo, revision, files);
    if (cached) return cached;
    if (client.offline) {
      throw new HubUnreachableError(
        client.http.endpoint,
        `HF_HUB_OFFLINE is set and ${repo.type} repository '${repo.id}' at '${revision}' is not fully in the cache ${client.cacheDir}`,
        client.offlineHint,
      );
    }
  }
  const metas: FileMetadata[] = [];
  try {
    for (const f of files) {
      if (COMMIT_RE.test(revision) && isCached(snapshotPath(storage, revision, f))) continue;
      metas.push(await fileMetadata(client, repo, revision, f));
    }
  } catch (e) {
    if (e instanceof HubUnreachableError) {
      const cached = fromCache(client, repo, revision, files);
      if (cached) {
        client.log?.(`The Hub could not be reached; using the cached snapshot ${cached.commit} of ${repo.id}`);
        return cached;
      }
    }
    throw e;
  }
  const commit = metas[0]?.commit ?? revision;
  if (!COMMIT_RE.test(revision)) writeRef(storage, revision, commit);

  const todo: FileMetadata[] = [];
  for (const m of metas) {
    const pointer = snapshotPath(storage, m.commit, m.file);
    if (isCached(pointer)) continue;
    const blob = blobPath(storage, m.etag);
    if (fileSize(blob) === m.size && fs.existsSync(blob)) linkSnapshot(blob, pointer);
    else todo.push(m);
  }
  const total = todo.reduce((a, m) => a + m.size, 0);
  const progress = new Progress(todo.length > 0 ? total : 0, client.onProgress);
  for (const m of todo) progress.done += Math.min(fileSize(`${blobPath(storage, m.etag)}.incomplete`), m.size);
  if (todo.length > 0) progress.start();
  for (const m of todo) {
    const blob = await downloadBlob(client, repo, m, storage, progress);
    linkSnapshot(blob, snapshotPath(storage, m.commit, m.file));
  }
  const paths = new Map<string, string>();
  for (const f of files) {
    const m = metas.find((x) => x.file === f);
    paths.set(f, snapshotPath(storage, m?.commit ?? commit, f));
  }
  return { commit, snapshotDir: path.join(storage, 'snapshots', commit), paths };
}

/** One file, as `hf_hub_download(repo_id, filename, revision=...)`: its local path in the snapshot. */
export async function hubDownload(repo: RepoRef, file: string, opts: HubClientOptions & { revision?: string } = {}): Promise<string> {
  const res = await downloadFiles(hubClient(opts), repo, opts.revision ?? 'main', [file]);
  return res.paths.get(file)!;
}
