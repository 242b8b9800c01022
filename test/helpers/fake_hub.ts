/**
 * A local stand-in for the Hugging Face Hub, for tests: the Hub's URLs, JSON shapes, headers, redirects and error
 * codes, with LFS content served from a second "storage" server on another port, as the Hub's CDN does.
 *
 * Hub server:
 *   GET  /api/{models|datasets}/{repo}/revision/{rev}[?blobs=true]   repo info: id, sha, siblings[].rfilename, …
 *   HEAD|GET /{repo}/resolve/{rev}/{path}, /datasets/{repo}/resolve/{rev}/{path}
 *        small files: 307 to a relative /api/resolve-cache/… URL; LFS files: 302 to the storage server, the 302
 *        carrying X-Repo-Commit, X-Linked-Etag (sha256) and X-Linked-Size
 *   HEAD|GET /api/resolve-cache/{models|datasets}/{repo}/{commit}/{path}   the small file: ETag (git oid),
 *        X-Repo-Commit, Content-Length, Accept-Ranges, Range requests
 *   legacy ids (aliases) answer 307 to the canonical repo; errors carry X-Error-Code / X-Error-Message.
 * Storage server: GET|HEAD /repos/{hash}/{sha256}?X-Amz-…&X-Amz-Signature=…, signature checked, Range requests,
 *   and, like S3 with a signed URL, a request that also carries an Authorization header is refused (400).
 */
import { createHash, createHmac } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';

export interface FakeFileSpec {
  path: string;
  content: string | Uint8Array;
  /** Stored with Git LFS; default: by extension (parquet, safetensors, model, bin…), or over 10 MB. */
  lfs?: boolean;
}

export interface FakeRepoSpec {
  id: string;
  files: FakeFileSpec[];
  /** Legacy ids that redirect (307) to this repo, e.g. `t5-small` for `google-t5/t5-small`. */
  aliases?: string[];
  /** Files need a valid token; the repo info does not. */
  gated?: boolean;
  /** Everything needs a valid token; without one the repo does not exist. */
  private?: boolean;
}

export interface FakeHubOptions {
  datasets?: FakeRepoSpec[];
  models?: FakeRepoSpec[];
  /** Tokens the Hub accepts. */
  tokens?: string[];
}

export interface LoggedRequest {
  server: 'hub' | 'cdn';
  method: string;
  /** Path and query as sent. */
  url: string;
  headers: http.IncomingHttpHeaders;
  status: number;
}

export interface FailRule {
  /** Substring of the decoded request path (query excluded). */
  match: string;
  status: number;
  /** How many matching requests fail; default 1. */
  times?: number;
  server?: 'hub' | 'cdn';
}

export interface BodyRule {
  match: string;
  /** How many matching GETs are affected; default 1 (Infinity for all). */
  times?: number;
}

/** Failure injection, read on every request; tests change it between calls. */
export interface Knobs {
  /** Answer these statuses instead of the real answer. */
  fail: FailRule[];
  /** Send the headers and half the body, then destroy the connection. */
  dropMidBody: BodyRule[];
  /** Send the headers and half the body, then send nothing more (the client must time out). */
  stallMidBody: BodyRule[];
  /** Serve the content one byte short, with a Content-Length that matches what is sent. */
  truncate: BodyRule[];
  /** Serve the content with its first byte changed (same length). */
  corrupt: BodyRule[];
  /** Honour Range requests (and say so with Accept-Ranges); default true. */
  rangeSupport: boolean;
}

export interface FakeHub {
  url: string;
  cdnUrl: string;
  requests: LoggedRequest[];
  knobs: Knobs;
  /** The commit `main` points to. */
  commitOf(type: 'model' | 'dataset', id: string): string;
  close(): Promise<void>;
}

interface StoredFile {
  path: string;
  content: Buffer;
  lfs: boolean;
  sha256: string;
  oid: string;
}

interface StoredRepo {
  type: 'model' | 'dataset';
  spec: FakeRepoSpec;
  commit: string;
  files: Map<string, StoredFile>;
}

const LFS_EXT = /\.(parquet|safetensors|model|bin|h5|msgpack|onnx|arrow|zip|gz|pt|pth|ckpt)$/;

function gitOid(content: Buffer): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}

function storeRepo(type: 'model' | 'dataset', spec: FakeRepoSpec): StoredRepo {
  const files = new Map<string, StoredFile>();
  for (const f of spec.files) {
    const content = Buffer.from(typeof f.content === 'string' ? Buffer.from(f.content, 'utf-8') : f.content);
    files.set(f.path, {
      path: f.path,
      content,
      lfs: f.lfs ?? (LFS_EXT.test(f.path) || content.length > 10 * 1024 * 1024),
      sha256: createHash('sha256').update(content).digest('hex'),
      oid: gitOid(content),
    });
  }
  const commit = createHash('sha1')
    .update(`${type}/${spec.id}\n`)
    .update([...files.values()].map((f) => `${f.path} ${f.oid}`).sort().join('\n'))
    .digest('hex');
  return { type, spec, commit, files };
}

const SECRET = 'fake-hub-signing-key';

function takeRule<T extends { match: string; times?: number }>(rules: T[], p: string, server?: 'hub' | 'cdn', ruleServer?: (r: T) => string | undefined): T | undefined {
  const i = rules.findIndex((r) => p.includes(r.match) && (!ruleServer || !ruleServer(r) || ruleServer(r) === server) && (r.times ?? 1) > 0);
  if (i < 0) return undefined;
  const r = rules[i]!;
  r.times = (r.times ?? 1) - 1;
  if (r.times <= 0) rules.splice(i, 1);
  return r;
}

export async function startFakeHub(opts: FakeHubOptions): Promise<FakeHub> {
  const repos: StoredRepo[] = [
    ...(opts.datasets ?? []).map((s) => storeRepo('dataset', s)),
    ...(opts.models ?? []).map((s) => storeRepo('model', s)),
  ];
  const tokens = new Set(opts.tokens ?? []);
  const requests: LoggedRequest[] = [];
  const knobs: Knobs = { fail: [], dropMidBody: [], stallMidBody: [], truncate: [], corrupt: [], rangeSupport: true };
  let hubUrl = '';
  let cdnUrl = '';

  const find = (type: 'model' | 'dataset', id: string): { repo?: StoredRepo; alias?: StoredRepo } => {
    const repo = repos.find((r) => r.type === type && r.spec.id === id);
    if (repo) return { repo };
    return { alias: repos.find((r) => r.type === type && r.spec.aliases?.includes(id)) };
  };

  const log = (server: 'hub' | 'cdn', req: http.IncomingMessage, res: http.ServerResponse): void => {
    const entry: LoggedRequest = { server, method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers }, status: 0 };
    requests.push(entry);
    const writeHead = res.writeHead.bind(res);
    res.writeHead = ((status: number, ...rest: unknown[]) => {
      entry.status = status;
      return (writeHead as (...a: unknown[]) => http.ServerResponse)(status, ...rest);
    }) as typeof res.writeHead;
  };

  const errorResponse = (res: http.ServerResponse, status: number, code: string | undefined, message: string, extra: Record<string, string> = {}): void => {
    const body = JSON.stringify({ error: message });
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      ...(code ? { 'x-error-code': code } : {}),
      'x-error-message': message,
      ...extra,
    });
    res.end(body);
  };

  /** Who is asking: no token, a valid one, or an invalid one (answered 401 at once). */
  const auth = (req: http.IncomingMessage, res: http.ServerResponse): 'none' | 'valid' | undefined => {
    const h = req.headers.authorization;
    if (!h) return 'none';
    const m = /^Bearer (.+)$/.exec(h);
    if (m && tokens.has(m[1]!)) return 'valid';
    errorResponse(res, 401, undefined, 'Invalid credentials in Authorization header');
    return undefined;
  };

  const repoNotFound = (res: http.ServerResponse, who: 'none' | 'valid'): void =>
    errorResponse(res, who === 'none' ? 401 : 404, 'RepoNotFound', 'Repository not found');

  /** Sends a file body, honouring Range and the body knobs. */
  const sendContent = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    content: Buffer,
    headers: Record<string, string | number>,
    matchPath: string,
  ): void => {
    let body = content;
    if (req.method === 'GET' && takeRule(knobs.truncate, matchPath)) body = content.subarray(0, Math.max(0, content.length - 1));
    if (req.method === 'GET' && content.length > 0 && takeRule(knobs.corrupt, matchPath)) {
      body = Buffer.from(content);
      body[0] = body[0]! ^ 0xff;
    }
    let status = 200;
    const h: Record<string, string | number> = { ...headers };
    if (knobs.rangeSupport) h['accept-ranges'] = 'bytes';
    const range = req.headers.range;
    if (knobs.rangeSupport && range) {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      const start = m ? Number(m[1]) : NaN;
      const end = m && m[2] ? Math.min(Number(m[2]), body.length - 1) : body.length - 1;
      if (!m || start >= body.length || start > end) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}`, 'content-length': 0 });
        res.end();
        return;
      }
      status = 206;
      h['content-range'] = `bytes ${start}-${end}/${body.length}`;
      body = body.subarray(start, end + 1);
    }
    h['content-length'] = body.length;
    res.writeHead(status, h);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const drop = takeRule(knobs.dropMidBody, matchPath);
    const stall = drop ? undefined : takeRule(knobs.stallMidBody, matchPath);
    if ((drop || stall) && body.length > 1) {
      res.write(body.subarray(0, Math.floor(body.length / 2)));
      if (drop) setTimeout(() => req.socket.destroy(), 20);
      return;
    }
    res.end(body);
  };

  const signPath = (p: string, expires: number): string => createHmac('sha256', SECRET).update(`${p}\n${expires}`).digest('hex');

  const handleResolve = (req: http.IncomingMessage, res: http.ServerResponse, type: 'model' | 'dataset', rest: string, who: 'none' | 'valid'): void => {
    const m = /^(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(rest);
    if (!m) return errorResponse(res, 404, undefined, 'Not found');
    const [, id, revEnc, fileEnc] = m;
    const rev = decodeURIComponent(revEnc!);
    const file = fileEnc!.split('/').map(decodeURIComponent).join('/');
    const { repo, alias } = find(type, id!);
    const prefix = type === 'dataset' ? '/datasets/' : '/';
    if (alias) {
      const loc = `${prefix}${alias.spec.id}/resolve/${revEnc}/${fileEnc}`;
      const body = `Temporary Redirect. Redirecting to ${loc}`;
      res.writeHead(307, { location: loc, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (!repo || (repo.spec.private && who !== 'valid')) return repoNotFound(res, who);
    if (rev !== 'main' && rev !== repo.commit) return errorResponse(res, 404, 'RevisionNotFound', 'Invalid rev id: ' + rev);
    if (repo.spec.gated && who !== 'valid') {
      return errorResponse(
        res,
        401,
        'GatedRepo',
        `Access to ${type} ${repo.spec.id} is restricted. You must have access to it and be authenticated to access it. Please log in.`,
      );
    }
    const f = repo.files.get(file);
    if (!f) return errorResponse(res, 404, 'EntryNotFound', 'Entry not found', { 'x-repo-commit': repo.commit });
    if (f.lfs) {
      const cdnPath = `/repos/${createHash('sha1').update(repo.spec.id).digest('hex').slice(0, 8)}/${f.sha256}`;
      const expires = Math.floor(Date.now() / 1000) + 3600;
      const loc =
        `${cdnUrl}${cdnPath}?response-content-disposition=${encodeURIComponent(`inline; filename="${path.basename(file)}"`)}` +
        `&X-Amz-Expires=${expires}&X-Amz-Signature=${signPath(cdnPath, expires)}`;
      const body = `Found. Redirecting to ${loc}`;
      res.writeHead(302, {
        location: loc,
        'content-type': 'text/plain; charset=utf-8',
        'content-length': Buffer.byteLength(body),
        // The redirect's own ETag describes the redirect, not the file: clients must read X-Linked-Etag.
        etag: `W/"${createHash('sha1').update(body).digest('hex').slice(0, 20)}"`,
        'x-repo-commit': repo.commit,
        'x-linked-etag': `"${f.sha256}"`,
        'x-linked-size': String(f.content.length),
        'accept-ranges': 'bytes',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const loc =
      `/api/resolve-cache/${type}s/${repo.spec.id}/${repo.commit}/${fileEnc}` +
      `?${encodeURIComponent(`/${repo.spec.id}/resolve/${rev}/${file}`)}=&etag=${encodeURIComponent(`"${f.oid}"`)}`;
    const body = `Temporary Redirect. Redirecting to ${loc}`;
    res.writeHead(307, {
      location: loc,
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'x-repo-commit': repo.commit,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  const handleResolveCache = (req: http.IncomingMessage, res: http.ServerResponse, rest: string, who: 'none' | 'valid', matchPath: string): void => {
    const m = /^(models|datasets)\/(.+)\/([0-9a-f]{40})\/(.+)$/.exec(rest);
    if (!m) return errorResponse(res, 404, undefined, 'Not found');
    const type = m[1] === 'models' ? 'model' : 'dataset';
    const { repo } = find(type, m[2]!);
    if (!repo || (repo.spec.private && who !== 'valid')) return repoNotFound(res, who);
    if (m[3] !== repo.commit) return errorResponse(res, 404, 'RevisionNotFound', 'Invalid rev id: ' + m[3]);
    if (repo.spec.gated && who !== 'valid') return errorResponse(res, 401, 'GatedRepo', `Access to ${type} ${repo.spec.id} is restricted.`);
    const file = m[4]!.split('/').map(decodeURIComponent).join('/');
    const f = repo.files.get(file);
    if (!f || f.lfs) return errorResponse(res, 404, 'EntryNotFound', 'Entry not found', { 'x-repo-commit': repo.commit });
    sendContent(req, res, f.content, { etag: `"${f.oid}"`, 'x-repo-commit': repo.commit, 'content-type': 'text/plain; charset=utf-8' }, matchPath);
  };

  const handleApi = (req: http.IncomingMessage, res: http.ServerResponse, type: 'model' | 'dataset', rest: string, query: URLSearchParams, who: 'none' | 'valid'): void => {
    const m = /^(.+?)\/revision\/([^/]+)$/.exec(rest);
    if (!m) return errorResponse(res, 404, undefined, 'Not found');
    const [, id, revEnc] = m;
    const rev = decodeURIComponent(revEnc!);
    const { repo, alias } = find(type, id!);
    if (alias) {
      res.writeHead(307, { location: `/api/${type}s/${alias.spec.id}/revision/${revEnc}`, 'content-length': 0 });
      res.end();
      return;
    }
    if (!repo || (repo.spec.private && who !== 'valid')) return repoNotFound(res, who);
    if (rev !== 'main' && rev !== repo.commit) return errorResponse(res, 404, 'RevisionNotFound', 'Invalid rev id: ' + rev);
    const blobs = query.get('blobs') === 'true';
    const siblings = [...repo.files.values()].map((f) =>
      blobs
        ? { rfilename: f.path, size: f.content.length, blobId: f.oid, ...(f.lfs ? { lfs: { sha256: f.sha256, size: f.content.length, pointerSize: 134 } } : {}) }
        : { rfilename: f.path },
    );
    const [author] = repo.spec.id.split('/');
    const common = {
      _id: createHash('sha1').update(repo.spec.id).digest('hex').slice(0, 24),
      id: repo.spec.id,
      author: repo.spec.id.includes('/') ? author : undefined,
      sha: repo.commit,
      lastModified: '2024-01-04T16:05:01.000Z',
      createdAt: '2022-03-02T23:29:22.000Z',
      private: Boolean(repo.spec.private),
      gated: repo.spec.gated ? 'manual' : false,
      disabled: false,
      downloads: 0,
      likes: 0,
      tags: [],
      siblings,
      usedStorage: [...repo.files.values()].reduce((a, f) => a + f.content.length, 0),
    };
    const body = JSON.stringify(
      type === 'model'
        ? { ...common, modelId: repo.spec.id, library_name: 'transformers', pipeline_tag: 'translation', spaces: [] }
        : { ...common, citation: '', description: '', cardData: {} },
    );
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const hub = http.createServer((req, res) => {
    log('hub', req, res);
    const u = new URL(req.url ?? '/', 'http://x');
    const p = decodeURIComponent(u.pathname);
    const failure = takeRule(knobs.fail, p, 'hub', (r) => r.server);
    if (failure) return errorResponse(res, failure.status, undefined, `Injected failure ${failure.status}`);
    const who = auth(req, res);
    if (!who) return;
    const raw = u.pathname.slice(1);
    if (req.method !== 'GET' && req.method !== 'HEAD') return errorResponse(res, 405, undefined, 'Method not allowed');
    let m: RegExpExecArray | null;
    if ((m = /^api\/(models|datasets)\/(.+)$/.exec(raw)) && /\/revision\/[^/]+$/.test(raw)) {
      return handleApi(req, res, m[1] === 'models' ? 'model' : 'dataset', m[2]!, u.searchParams, who);
    }
    if ((m = /^api\/resolve-cache\/(.+)$/.exec(raw))) return handleResolveCache(req, res, m[1]!, who, p);
    if ((m = /^datasets\/(.+)$/.exec(raw)) && raw.includes('/resolve/')) return handleResolve(req, res, 'dataset', m[1]!, who);
    if (raw.includes('/resolve/')) return handleResolve(req, res, 'model', raw, who);
    errorResponse(res, 404, undefined, 'Not found');
  });

  const cdn = http.createServer((req, res) => {
    log('cdn', req, res);
    const u = new URL(req.url ?? '/', 'http://x');
    const failure = takeRule(knobs.fail, u.pathname, 'cdn', (r) => r.server);
    if (failure) {
      res.writeHead(failure.status, { 'content-length': 0 });
      return res.end();
    }
    const xml = (status: number, code: string, message: string): void => {
      const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
      res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (req.headers.authorization) return xml(400, 'InvalidArgument', 'Only one auth mechanism allowed');
    const m = /^\/repos\/[0-9a-f]{8}\/([0-9a-f]{64})$/.exec(u.pathname);
    const expires = Number(u.searchParams.get('X-Amz-Expires'));
    if (!m || u.searchParams.get('X-Amz-Signature') !== signPath(u.pathname, expires)) return xml(403, 'AccessDenied', 'Request has invalid signature');
    if (expires < Date.now() / 1000) return xml(403, 'AccessDenied', 'Request has expired');
    let f: StoredFile | undefined;
    for (const r of repos) for (const x of r.files.values()) if (x.sha256 === m[1]) f = x;
    if (!f) return xml(404, 'NoSuchKey', 'The specified key does not exist.');
    sendContent(
      req,
      res,
      f.content,
      {
        // Storage ETags are not the sha256: the Hub's X-Linked-Etag is what names the blob.
        etag: `"${createHash('md5').update(f.content).digest('hex')}"`,
        'content-type': 'application/octet-stream',
        'content-disposition': u.searchParams.get('response-content-disposition') ?? 'inline',
      },
      `${f.path} ${u.pathname}`,
    );
  });

  await Promise.all([hub, cdn].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
  hubUrl = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`;
  cdnUrl = `http://127.0.0.1:${(cdn.address() as AddressInfo).port}`;

  return {
    url: hubUrl,
    cdnUrl,
    requests,
    knobs,
    commitOf: (type, id) => {
      const r = repos.find((x) => x.type === type && x.spec.id === id);
      if (!r) throw new Error(`no fake ${type} ${id}`);
      return r.commit;
    },
    close: async () => {
      for (const s of [hub, cdn]) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
    },
  };
}

// ---- TweetEval as the Hub serves it (cardiffnlp/tweet_eval, parquet) --------------------------------------------

const SPLIT_FILES: [string, string][] = [
  ['train', 'train'],
  ['val', 'validation'],
  ['test', 'test'],
];

function lines(file: string): string[] {
  const l = fs.readFileSync(file, 'utf-8').split('\n');
  if (l[l.length - 1] === '') l.pop();
  return l;
}

/** TweetEval's mapping.txt (`id<TAB>name`, no newline after the last line). */
export function tweetEvalNames(taskDir: string): string[] {
  const names: string[] = [];
  for (const l of lines(path.join(taskDir, 'mapping.txt'))) {
    const [id, name] = l.split('\t');
    names[Number(id)] = name!.trim();
  }
  return names;
}

/** A parquet file with `text` (string) and `label` (int64) columns and the `huggingface` metadata `datasets` writes. */
export function tweetEvalParquet(texts: string[], labels: number[], names: string[]): Uint8Array {
  const hf = { info: { features: { text: { dtype: 'string', _type: 'Value' }, label: { names, _type: 'ClassLabel' } } } };
  return new Uint8Array(
    parquetWriteBuffer({
      columnData: [
        { name: 'text', data: texts, type: 'STRING' },
        { name: 'label', data: labels.map((l) => BigInt(l)), type: 'INT64' },
      ],
      kvMetadata: [{ key: 'huggingface', value: JSON.stringify(hf) }],
    }),
  );
}

/** The dataset card's YAML header as the real repo has it, for the given tasks. */
export function tweetEvalReadme(tasks: { name: string; names: string[]; sizes: Record<string, number> }[]): string {
  const y: string[] = [
    '---',
    'annotations_creators:',
    '- found',
    'language_creators:',
    '- found',
    'language:',
    '- en',
    'license:',
    '- unknown',
    'multilinguality:',
    '- monolingual',
    'size_categories:',
    '- 100K<n<1M',
    '- 10K<n<100K',
    '- 1K<n<10K',
    '- n<1K',
    'source_datasets:',
    '- extended|other-tweet-datasets',
    'task_categories:',
    '- text-classification',
    'task_ids:',
    '- intent-classification',
    '- multi-class-classification',
    '- sentiment-classification',
    'paperswithcode_id: tweeteval',
    'pretty_name: TweetEval',
    'config_names:',
    ...tasks.map((t) => `- ${t.name}`),
    'dataset_info:',
  ];
  for (const t of tasks) {
    y.push(`- config_name: ${t.name}`, '  features:', '  - name: text', '    dtype: string', '  - name: label', '    dtype:', '      class_label:', '        names:');
    t.names.forEach((n, i) => y.push(`          '${i}': ${n}`));
    y.push('  splits:');
    for (const s of ['train', 'test', 'validation']) y.push(`  - name: ${s}`, `    num_bytes: ${t.sizes[s]! * 97}`, `    num_examples: ${t.sizes[s]}`);
    y.push('  download_size: 1000000', '  dataset_size: 1000000');
  }
  y.push('configs:');
  for (const t of tasks) {
    y.push(`- config_name: ${t.name}`, '  data_files:');
    for (const s of ['train', 'test', 'validation']) y.push(`  - split: ${s}`, `    path: ${t.name}/${s}-*`);
  }
  y.push('train-eval-index:');
  for (const t of tasks) {
    y.push(`- config: ${t.name}`, '  task: text-classification', '  task_id: multi_class_classification', '  splits:', '    train_split: train', '    eval_split: test');
    y.push('  col_mapping:', '    text: text', '    label: target', '  metrics:', '  - type: accuracy', '    name: Accuracy');
  }
  y.push('---', '', '# Dataset Card for tweet_eval', '', '## Dataset Description', '', 'TweetEval consists of seven heterogenous tasks in Twitter, all framed as multi-class tweet classification.', '');
  return y.join('\n');
}

/**
 * `cardiffnlp/tweet_eval` with the given tasks, built from the TweetEval files in `tweetEvalRoot`: for each task
 * `<task>/{train,validation,test}-00000-of-00001.parquet`, plus README.md and .gitattributes.
 */
export function tweetEvalRepo(tweetEvalRoot: string, tasks: string[], id = 'cardiffnlp/tweet_eval'): FakeRepoSpec {
  const files: FakeFileSpec[] = [
    { path: '.gitattributes', content: '*.parquet filter=lfs diff=lfs merge=lfs -text\n*.arrow filter=lfs diff=lfs merge=lfs -text\n' },
  ];
  const cards: { name: string; names: string[]; sizes: Record<string, number> }[] = [];
  for (const task of tasks) {
    const dir = path.join(tweetEvalRoot, task);
    const names = tweetEvalNames(dir);
    const sizes: Record<string, number> = {};
    for (const [prefix, split] of SPLIT_FILES) {
      const texts = lines(path.join(dir, `${prefix}_text.txt`));
      const labels = lines(path.join(dir, `${prefix}_labels.txt`)).map(Number);
      sizes[split] = texts.length;
      files.push({ path: `${task}/${split}-00000-of-00001.parquet`, content: tweetEvalParquet(texts, labels, names) });
    }
    cards.push({ name: task, names, sizes });
  }
  files.push({ path: 'README.md', content: tweetEvalReadme(cards) });
  return { id, files, aliases: id === 'cardiffnlp/tweet_eval' ? ['tweet_eval'] : [] };
}

/** A 127.0.0.1 port that nothing listens on (opened, then closed again): requests to it are refused. */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
