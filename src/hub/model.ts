import * as path from 'node:path';
import { type RepoRef, isCached, readRef, repoCacheDir, snapshotPath, writeRef } from './cache.js';
import { type HubClientOptions, type RepoInfo, downloadFiles, getRepoInfo, hubClient } from './download.js';
import { HubError, HubUnreachableError } from './http.js';
import { readShardIndex, SHARD_INDEX_FILE } from '../shard_index.js';

export const MODEL_REQUIRED_FILES = ['config.json', 'model.safetensors'] as const;
export const MODEL_OPTIONAL_FILES = [
  'spiece.model',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'generation_config.json',
] as const;

/** What a tokenizer needs of a model repository: the SentencePiece model, or tokenizer.json (transformers 5.x). */
export const TOKENIZER_FILES = ['spiece.model', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'] as const;

export const MODEL_OFFLINE_HINT = 'to work offline, pass a local model folder or use --init random';

export interface DownloadModelOptions extends HubClientOptions {
  /** Branch, tag or commit; default `main`. */
  revision?: string;
  /** Files to fetch instead of the default set; each must exist in the repository. */
  files?: string[];
  /** With `files`: more files to fetch where the repository has them. */
  optionalFiles?: readonly string[];
}

/**
 * Brings a model into the shared cache and answers its snapshot folder. Fetches config.json and model.safetensors
 * (required; or, where the repository has none, `model.safetensors.index.json` and every shard it names, as
 * transformers saves a large model) and whichever tokenizer and generation files the repository has, per its file
 * list at the revision.
 */
export async function downloadModel(repoId: string, opts: DownloadModelOptions = {}): Promise<string> {
  const client = hubClient({ offlineHint: MODEL_OFFLINE_HINT, ...opts });
  const repo: RepoRef = { type: 'model', id: repoId };
  const revision = opts.revision ?? 'main';
  const wanted = opts.files ? [...opts.files, ...(opts.optionalFiles ?? [])] : [...MODEL_REQUIRED_FILES, ...MODEL_OPTIONAL_FILES];
  let required = new Set<string>(opts.files ?? MODEL_REQUIRED_FILES);

  let info: RepoInfo;
  try {
    if (client.offline) throw new HubUnreachableError(client.http.endpoint, 'HF_HUB_OFFLINE is set', MODEL_OFFLINE_HINT);
    info = await getRepoInfo(client, repo, revision);
  } catch (e) {
    if (!(e instanceof HubUnreachableError)) throw e;
    const storage = repoCacheDir(client.cacheDir, repo);
    const commit = readRef(storage, revision);
    if (commit && cachedWithShards(storage, commit, required)) {
      client.log?.(`The Hub could not be reached; using the cached snapshot ${commit} of ${repoId}`);
      return path.join(storage, 'snapshots', commit);
    }
    throw e;
  }

  const available = new Set(info.files);
  const sharded = !opts.files && !available.has(SINGLE_FILE) && available.has(SHARD_INDEX_FILE);
  if (sharded) required = new Set([...[...required].filter((f) => f !== SINGLE_FILE), SHARD_INDEX_FILE]);
  const missing = [...required].filter((f) => !available.has(f));
  if (missing.length > 0) {
    const weights = info.files.filter((f) => /\.(safetensors|bin|h5|msgpack|ckpt|pt)$|\.index\.json$/.test(f));
    const note = missing.includes('model.safetensors')
      ? ` (weight files there: ${weights.join(', ') || 'none'}; t5cls reads model.safetensors, or ${SHARD_INDEX_FILE} and its shards)`
      : '';
    throw new HubError(
      `Model repository '${repoId}' has no ${missing.join(', ')} at revision '${revision}'${note}`,
      404,
      'EntryNotFound',
      2,
    );
  }
  const files = wanted.filter((f) => available.has(f));
  if (sharded) files.push(SHARD_INDEX_FILE);
  const res = await downloadFiles(client, repo, info.sha, files);
  if (sharded) {
    const shards = readShardIndex(path.join(res.snapshotDir, SHARD_INDEX_FILE)).shards;
    const absent = shards.filter((f) => !available.has(f));
    if (absent.length > 0)
      throw new HubError(
        `Model repository '${repoId}' has no ${absent.join(', ')}, which its ${SHARD_INDEX_FILE} names`,
        404,
        'EntryNotFound',
        2,
      );
    await downloadFiles(client, repo, info.sha, shards);
  }
  writeRef(repoCacheDir(client.cacheDir, repo), revision, info.sha);
  return res.snapshotDir;
}

const SINGLE_FILE = 'model.safetensors';

/** Whether the cached snapshot holds `required`, a sharded checkpoint's index and shards standing for model.safetensors. */
function cachedWithShards(storage: string, commit: string, required: Set<string>): boolean {
  const cached = (f: string) => isCached(snapshotPath(storage, commit, f));
  if ([...required].every(cached)) return true;
  if (!required.has(SINGLE_FILE) || !cached(SHARD_INDEX_FILE)) return false;
  const rest = [...required].filter((f) => f !== SINGLE_FILE);
  return rest.every(cached) && readShardIndex(snapshotPath(storage, commit, SHARD_INDEX_FILE)).shards.every(cached);
}
