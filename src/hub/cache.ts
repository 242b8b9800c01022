import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../errors.js';

/**
 * The huggingface_hub cache layout, shared with Python:
 *
 *   <cacheDir>/<type>s--<org>--<name>/
 *     blobs/<etag>                     file contents, named by ETag (sha256 for LFS files, git oid otherwise)
 *     blobs/<etag>.incomplete          a download in progress, resumed on the next try
 *     refs/<revision>                  the commit a branch or tag pointed to when last resolved
 *     snapshots/<commit>/<path>        relative symlink to ../../blobs/<etag> (a copy where symlinks fail)
 */

export type RepoType = 'model' | 'dataset';

export interface RepoRef {
  type: RepoType;
  id: string;
}

export const COMMIT_RE = /^[0-9a-f]{40}$/;

/** HF's repo id rule (`validate_repo_id`): `name` or `namespace/name`, word characters, `-` and `.`, no `--` or `..`. */
const REPO_ID_RE = /^(?:[\w.-]+\/)?[\w.-]{1,96}$/;

export function assertRepoId(id: string, what = 'repository id'): void {
  if (!REPO_ID_RE.test(id) || id.includes('--') || id.includes('..') || id.split('/').some((part) => /^[-.]|[-.]$/.test(part))) {
    throw new UsageError(
      `${what} ${JSON.stringify(id)} is not a valid Hugging Face id (expected "name" or "namespace/name" of letters, digits, ` +
        `"-", "_", ".")`,
    );
  }
}

/** Branch, tag or commit: it becomes a path under refs/, so no `..` segments, no absolute path, no NUL. */
export function assertRevision(revision: string): void {
  const parts = revision.split('/');
  if (!revision || revision.includes('\0') || revision.includes('\\') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new UsageError(`revision ${JSON.stringify(revision)} is not a valid branch, tag or commit name`);
  }
}

export function repoFolderName(repo: RepoRef): string {
  assertRepoId(repo.id);
  return [`${repo.type}s`, ...repo.id.split('/')].join('--');
}

export function repoCacheDir(cacheDir: string, repo: RepoRef): string {
  return path.join(cacheDir, repoFolderName(repo));
}

/** A path inside the snapshot, refusing repo paths that would leave it. */
export function snapshotPath(storage: string, commit: string, file: string): string {
  const root = path.join(storage, 'snapshots', commit);
  const p = path.join(root, ...file.split('/'));
  if (!p.startsWith(root + path.sep)) throw new Error(`invalid file path in repository: ${JSON.stringify(file)}`);
  return p;
}

export function blobPath(storage: string, etag: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(etag) || etag.startsWith('.')) {
    throw new Error(`unexpected ETag from the Hub: ${JSON.stringify(etag)}`);
  }
  return path.join(storage, 'blobs', etag);
}

/** The commit a revision names: itself if it is a commit hash, else what refs/<revision> recorded. */
export function readRef(storage: string, revision: string): string | undefined {
  if (COMMIT_RE.test(revision)) return revision;
  try {
    assertRevision(revision);
    const c = fs.readFileSync(path.join(storage, 'refs', ...revision.split('/')), 'utf-8').trim();
    return COMMIT_RE.test(c) ? c : undefined;
  } catch {
    return undefined;
  }
}

export function writeRef(storage: string, revision: string, commit: string): void {
  if (revision === commit) return;
  assertRevision(revision);
  const ref = path.join(storage, 'refs', ...revision.split('/'));
  try {
    if (fs.readFileSync(ref, 'utf-8') === commit) return;
  } catch {
    // not there yet
  }
  fs.mkdirSync(path.dirname(ref), { recursive: true });
  const tmp = `${ref}.${process.pid}.${Date.now()}.tmp`;
  fs.writeFileSync(tmp, commit);
  fs.renameSync(tmp, ref);
}

/** Points the snapshot entry at the blob: a relative symlink as huggingface_hub makes, a copy where that fails. */
export function linkSnapshot(blob: string, pointer: string): void {
  fs.mkdirSync(path.dirname(pointer), { recursive: true });
  fs.rmSync(pointer, { force: true });
  try {
    fs.symlinkSync(path.relative(path.dirname(pointer), blob), pointer);
  } catch {
    const tmp = `${pointer}.${process.pid}.tmp`;
    fs.copyFileSync(blob, tmp);
    fs.renameSync(tmp, pointer);
  }
}

/** Whether a snapshot entry exists and resolves to a file (a dangling symlink does not count). */
export function isCached(pointer: string): boolean {
  try {
    return fs.statSync(pointer).isFile();
  } catch {
    return false;
  }
}

/** Every file of a cached snapshot, as repo paths with `/`. */
export function listSnapshot(storage: string, commit: string): string[] {
  const root = path.join(storage, 'snapshots', commit);
  const out: string[] = [];
  const walk = (dir: string, prefix: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full, rel);
      else if (isCached(full)) out.push(rel);
    }
  };
  walk(root, '');
  return out.sort();
}
