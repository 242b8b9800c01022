import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { T5clsError } from '../src/errors.js';
import { downloadModel, hubDownload, hubSettings, repoFolderName, type DownloadModelOptions } from '../src/hub/index.js';
import { closedPort, startFakeHub, type FakeHub } from './helpers/fake_hub.js';
import { tempDirs, TOKENIZER_DIR as TOK_DIR } from './helpers/fixtures.js';

const TOKEN = 'hf_test_token_0123456789';

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
/** Git's object id for a blob: what the Hub uses as the ETag of a file not stored with LFS. */
const gitOid = (b: Uint8Array): string => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

/** Deterministic bytes standing in for weights (the client never parses them). */
function pseudoWeights(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

const tokFile = (f: string): Buffer => fs.readFileSync(path.join(TOK_DIR, f));
const WEIGHTS = pseudoWeights(300_000, 7);
const MODEL_FILES: Record<string, Buffer> = {
  'config.json': tokFile('config.json'),
  'model.safetensors': WEIGHTS,
  'spiece.model': tokFile('spiece.model'),
  'tokenizer.json': tokFile('tokenizer.json'),
  'tokenizer_config.json': tokFile('tokenizer_config.json'),
  'special_tokens_map.json': tokFile('special_tokens_map.json'),
  'generation_config.json': tokFile('generation_config.json'),
  'pytorch_model.bin': pseudoWeights(1000, 3),
  'README.md': Buffer.from('# t5-small\n'),
};
const DEFAULT_SET = Object.keys(MODEL_FILES).filter((f) => f !== 'pytorch_model.bin' && f !== 'README.md');

let hub: FakeHub;
const tempRoots = tempDirs('t5cls-hub-');
const tmp = (): string => tempRoots.make();

function opts(cacheDir: string, extra: Partial<DownloadModelOptions> = {}): DownloadModelOptions {
  return { endpoint: hub.url, cacheDir, token: '', retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 }, timeoutMs: 3000, ...extra };
}


function cdnGets(file: string): FakeHub['requests'] {
  const sha = sha256(MODEL_FILES[file]!);
  return hub.requests.filter((r) => r.server === 'cdn' && r.method === 'GET' && r.url.includes(sha));
}

before(async () => {
  hub = await startFakeHub({
    models: [
      {
        id: 'google-t5/t5-small',
        aliases: ['t5-small'],
        files: Object.entries(MODEL_FILES).map(([p, content]) => ({ path: p, content })),
      },
      {
        id: 'acme/gated-t5',
        gated: true,
        files: [
          { path: 'config.json', content: MODEL_FILES['config.json']! },
          { path: 'model.safetensors', content: pseudoWeights(5000, 11) },
        ],
      },
      {
        id: 'acme/bin-only',
        files: [
          { path: 'config.json', content: '{}' },
          { path: 'pytorch_model.bin', content: pseudoWeights(100, 1) },
          { path: 'empty.safetensors', content: '' },
        ],
      },
    ],
    tokens: [TOKEN],
  });
});

after(async () => {
  await hub.close();
  tempRoots.removeAll();
});

beforeEach(() => {
  hub.requests.length = 0;
  hub.knobs.fail.length = 0;
  hub.knobs.dropMidBody.length = 0;
  hub.knobs.stallMidBody.length = 0;
  hub.knobs.truncate.length = 0;
  hub.knobs.corrupt.length = 0;
  hub.knobs.rangeSupport = true;
});

describe('downloadModel', () => {
  test('fetches config, weights and the tokenizer files into the huggingface_hub cache layout', async () => {
    const cache = tmp();
    const progress: [number, number | undefined][] = [];
    const dir = await downloadModel('google-t5/t5-small', { ...opts(cache), onProgress: (d, t) => progress.push([d, t]) });
    const commit = hub.commitOf('model', 'google-t5/t5-small');
    const storage = path.join(cache, 'models--google-t5--t5-small');
    assert.equal(dir, path.join(storage, 'snapshots', commit));
    assert.equal(fs.readFileSync(path.join(storage, 'refs', 'main'), 'utf-8'), commit);

    assert.deepEqual(fs.readdirSync(dir).sort(), [...DEFAULT_SET].sort());
    for (const f of DEFAULT_SET) {
      const p = path.join(dir, f);
      assert.ok(fs.lstatSync(p).isSymbolicLink(), `${f} is a symlink`);
      const lfs = f === 'model.safetensors' || f === 'spiece.model';
      const etag = lfs ? sha256(MODEL_FILES[f]!) : gitOid(MODEL_FILES[f]!);
      assert.equal(fs.readlinkSync(p), path.join('..', '..', 'blobs', etag), `${f} links to its blob`);
      assert.ok(fs.readFileSync(p).equals(MODEL_FILES[f]!), `${f} content`);
    }
    const blobs = fs.readdirSync(path.join(storage, 'blobs'));
    assert.equal(blobs.length, DEFAULT_SET.length);
    assert.ok(!blobs.some((b) => b.endsWith('.incomplete')));

    const total = DEFAULT_SET.reduce((a, f) => a + MODEL_FILES[f]!.length, 0);
    assert.deepEqual(progress[progress.length - 1], [total, total]);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i]![0] >= progress[i - 1]![0]);

    // The LFS files came from the storage host; nothing asked for pytorch_model.bin.
    assert.equal(cdnGets('model.safetensors').length, 1);
    assert.equal(cdnGets('spiece.model').length, 1);
    assert.ok(!hub.requests.some((r) => r.url.includes('pytorch_model.bin')));

    hub.requests.length = 0;
    const again = await downloadModel('google-t5/t5-small', opts(cache));
    assert.equal(again, dir);
    assert.deepEqual(
      hub.requests.map((r) => `${r.server} ${r.method} ${r.url}`),
      ['hub GET /api/models/google-t5/t5-small/revision/main'],
      'a cached snapshot costs one API call and no download',
    );
  });

  test('sends the token to the Hub only, never to the storage host', async () => {
    const cache = tmp();
    const dir = await downloadModel('google-t5/t5-small', opts(cache, { token: TOKEN }));
    assert.ok(fs.readFileSync(path.join(dir, 'model.safetensors')).equals(WEIGHTS));
    const cdn = hub.requests.filter((r) => r.server === 'cdn');
    const hubReqs = hub.requests.filter((r) => r.server === 'hub');
    assert.ok(cdn.length >= 2);
    for (const r of cdn) {
      assert.equal(r.headers.authorization, undefined, `no Authorization to ${r.url}`);
      assert.ok(r.status === 200, `storage answered ${r.status}`);
    }
    assert.ok(hubReqs.length > 0 && hubReqs.every((r) => r.headers.authorization === `Bearer ${TOKEN}`));
  });

  test('a legacy id follows the 307 to the canonical repo, cached under the id asked for', async () => {
    const cache = tmp();
    const dir = await downloadModel('t5-small', opts(cache));
    assert.ok(dir.startsWith(path.join(cache, 'models--t5-small', 'snapshots')));
    assert.equal(path.basename(dir), hub.commitOf('model', 'google-t5/t5-small'));
    assert.ok(fs.readFileSync(path.join(dir, 'config.json')).equals(MODEL_FILES['config.json']!));
    assert.ok(fs.readFileSync(path.join(dir, 'model.safetensors')).equals(WEIGHTS));
    const redirect = hub.requests.find((r) => r.url.startsWith('/t5-small/resolve/') && r.status === 307);
    assert.ok(redirect, 'the legacy resolve URL answered 307');
    assert.ok(hub.requests.some((r) => r.url.startsWith('/google-t5/t5-small/resolve/')));
  });

  test('only the files asked for, and a repo without model.safetensors is refused', async () => {
    const cache = tmp();
    const dir = await downloadModel('google-t5/t5-small', { ...opts(cache), files: ['config.json', 'tokenizer.json'] });
    assert.deepEqual(fs.readdirSync(dir).sort(), ['config.json', 'tokenizer.json']);
    await assert.rejects(downloadModel('acme/bin-only', opts(cache)), (e: Error) => {
      assert.ok(e instanceof T5clsError);
      assert.match(e.message, /'acme\/bin-only' has no model\.safetensors at revision 'main'/);
      assert.match(e.message, /pytorch_model\.bin/);
      return true;
    });
  });
});

describe('retries and interrupted downloads', () => {
  test('a 500 from the API, the Hub and the storage host is retried', async () => {
    hub.knobs.fail.push(
      { match: '/api/models/', status: 500, server: 'hub' },
      { match: '/resolve/', status: 503, server: 'hub' },
      { match: '/repos/', status: 500, server: 'cdn' },
    );
    const dir = await downloadModel('google-t5/t5-small', opts(tmp(), { files: ['config.json', 'model.safetensors'] }));
    assert.ok(fs.readFileSync(path.join(dir, 'model.safetensors')).equals(WEIGHTS));
    assert.deepEqual(
      hub.requests.filter((r) => r.status >= 500).map((r) => r.status),
      [500, 503, 500],
    );
    assert.equal(hub.knobs.fail.length, 0, 'every injected failure was hit');
  });

  test('a connection dropped mid-body resumes with Range', async () => {
    hub.knobs.dropMidBody.push({ match: 'model.safetensors' });
    const cache = tmp();
    const dir = await downloadModel('google-t5/t5-small', opts(cache, { files: ['config.json', 'model.safetensors'] }));
    assert.ok(fs.readFileSync(path.join(dir, 'model.safetensors')).equals(WEIGHTS));
    const gets = cdnGets('model.safetensors');
    assert.equal(gets.length, 2);
    assert.equal(gets[0]!.headers.range, undefined);
    const m = /^bytes=(\d+)-$/.exec(String(gets[1]!.headers.range));
    assert.ok(m, `second request has a Range header (${gets[1]!.headers.range})`);
    assert.ok(Number(m[1]) > 0 && Number(m[1]) <= WEIGHTS.length / 2);
    assert.equal(gets[1]!.status, 206);
  });

  test('a server that ignores Range makes the download start over, still correct', async () => {
    hub.knobs.rangeSupport = false;
    hub.knobs.dropMidBody.push({ match: 'model.safetensors' });
    const dir = await downloadModel('google-t5/t5-small', opts(tmp(), { files: ['config.json', 'model.safetensors'] }));
    assert.ok(fs.readFileSync(path.join(dir, 'model.safetensors')).equals(WEIGHTS));
    assert.deepEqual(cdnGets('model.safetensors').map((r) => r.status), [200, 200]);
  });

  test('a stalled body times out and resumes', async () => {
    hub.knobs.stallMidBody.push({ match: 'model.safetensors' });
    // The stall never ends, so the time-out fires however slow the machine; a generous one keeps the healthy
    // requests clear of it on a busy machine.
    const dir = await downloadModel('google-t5/t5-small', opts(tmp(), { files: ['config.json', 'model.safetensors'], timeoutMs: 2000 }));
    assert.ok(fs.readFileSync(path.join(dir, 'model.safetensors')).equals(WEIGHTS));
    const gets = cdnGets('model.safetensors');
    assert.ok(gets.length >= 2, `${gets.length} requests`);
    // The first request stalled; every later one resumed from the bytes already written.
    for (const g of gets.slice(1)) assert.match(String(g.headers.range), /^bytes=[1-9]\d*-$/);
  });

  test('an .incomplete blob left by an interrupted run is resumed from where it stopped', async () => {
    const cache = tmp();
    const blobs = path.join(cache, repoFolderName({ type: 'model', id: 'google-t5/t5-small' }), 'blobs');
    fs.mkdirSync(blobs, { recursive: true });
    const half = 123_457;
    fs.writeFileSync(path.join(blobs, `${sha256(WEIGHTS)}.incomplete`), WEIGHTS.subarray(0, half));
    const dir = await downloadModel('google-t5/t5-small', opts(cache, { files: ['config.json', 'model.safetensors'] }));
    assert.ok(fs.readFileSync(path.join(dir, 'model.safetensors')).equals(WEIGHTS));
    const gets = cdnGets('model.safetensors');
    assert.equal(gets.length, 1);
    assert.equal(gets[0]!.headers.range, `bytes=${half}-`);
    assert.ok(!fs.existsSync(path.join(blobs, `${sha256(WEIGHTS)}.incomplete`)));
  });

  test('a body of the wrong length is rejected and never used', async () => {
    hub.knobs.truncate.push({ match: 'model.safetensors', times: Infinity });
    const cache = tmp();
    await assert.rejects(downloadModel('google-t5/t5-small', opts(cache, { files: ['config.json', 'model.safetensors'] })), (e: Error) => {
      assert.ok(e instanceof T5clsError);
      assert.match(e.message, new RegExp(`model\\.safetensors.*corrupt: ${WEIGHTS.length - 1} bytes where the Hub announced ${WEIGHTS.length}`));
      return true;
    });
    const storage = path.join(cache, 'models--google-t5--t5-small');
    assert.deepEqual(
      fs.readdirSync(path.join(storage, 'blobs')).filter((b) => b.startsWith(sha256(WEIGHTS))),
      [],
      'neither a blob nor a partial download is kept',
    );
    const commit = hub.commitOf('model', 'google-t5/t5-small');
    assert.ok(!fs.existsSync(path.join(storage, 'snapshots', commit, 'model.safetensors')));
  });

  test('content whose sha256 differs from X-Linked-Etag is rejected', async () => {
    hub.knobs.corrupt.push({ match: 'model.safetensors', times: Infinity });
    await assert.rejects(
      downloadModel('google-t5/t5-small', opts(tmp(), { files: ['config.json', 'model.safetensors'] })),
      new RegExp(`model\\.safetensors.*corrupt: sha256 [0-9a-f]{64} where the Hub announced ${sha256(WEIGHTS)}`),
    );
  });
});

describe('errors', () => {
  const isOneLine = (e: Error): void => assert.ok(!e.message.includes('\n'), 'one line');

  test('a gated repo without a token: 401 and a message that says to set HF_TOKEN', async () => {
    await assert.rejects(downloadModel('acme/gated-t5', opts(tmp())), (e: Error) => {
      assert.ok(e instanceof T5clsError);
      assert.match(e.message, /model repository 'acme\/gated-t5' is gated \(401/i);
      assert.match(e.message, /set HF_TOKEN/);
      isOneLine(e);
      return true;
    });
    const dir = await downloadModel('acme/gated-t5', opts(tmp(), { token: TOKEN }));
    assert.equal(fs.readdirSync(dir).sort().join(','), 'config.json,model.safetensors');
  });

  test('a 401 for a bad token names HF_TOKEN and never shows the token', async () => {
    const bad = 'hf_not_a_valid_token_987';
    const lines: string[] = [];
    await assert.rejects(downloadModel('google-t5/t5-small', opts(tmp(), { token: bad, log: (l) => lines.push(l) })), (e: Error) => {
      assert.match(e.message, /401/);
      assert.match(e.message, /HF_TOKEN/);
      assert.ok(!e.message.includes(bad));
      isOneLine(e);
      return true;
    });
    assert.ok(!lines.some((l) => l.includes(bad)));
  });

  test('a 401 or 403 on one file (no error code) says to set HF_TOKEN and names the file', async () => {
    hub.knobs.fail.push({ match: 'tokenizer.json', status: 401, server: 'hub' });
    await assert.rejects(downloadModel('google-t5/t5-small', opts(tmp())), (e: Error) => {
      assert.match(e.message, /file 'tokenizer\.json' of model repository 'google-t5\/t5-small'.*401.*set HF_TOKEN/);
      return true;
    });
    hub.knobs.fail.push({ match: 'config.json', status: 403, server: 'hub' });
    await assert.rejects(downloadModel('google-t5/t5-small', opts(tmp(), { token: TOKEN })), (e: Error) => {
      assert.match(e.message, /file 'config\.json' of model repository 'google-t5\/t5-small' \(403 Forbidden.*HF_TOKEN is valid and has access/);
      assert.ok(!e.message.includes(TOKEN));
      return true;
    });
  });

  test('an empty file is downloaded and cached like any other', async () => {
    const cache = tmp();
    const local = await hubDownload({ type: 'model', id: 'acme/bin-only' }, 'empty.safetensors', opts(cache));
    assert.equal(fs.readFileSync(local).length, 0);
    assert.equal(path.basename(fs.readlinkSync(local)), sha256(new Uint8Array(0)));
  });

  test('404s name the repository, the revision or the file', async () => {
    await assert.rejects(downloadModel('nobody/nothing', opts(tmp())), (e: Error) => {
      assert.ok(e instanceof T5clsError);
      assert.equal(e.exitCode, 2);
      assert.match(e.message, /Model repository 'nobody\/nothing' was not found on http:\/\/127\.0\.0\.1:\d+ \(401/);
      assert.match(e.message, /HF_TOKEN/);
      isOneLine(e);
      return true;
    });
    await assert.rejects(downloadModel('nobody/nothing', opts(tmp(), { token: TOKEN })), /'nobody\/nothing' was not found .*\(404/);
    await assert.rejects(downloadModel('google-t5/t5-small', { ...opts(tmp()), revision: 'v9' }), /Revision 'v9' was not found in model repository 'google-t5\/t5-small'/);
    await assert.rejects(
      hubDownload({ type: 'model', id: 'google-t5/t5-small' }, 'nope/missing.json', opts(tmp())),
      (e: Error) => {
        assert.match(e.message, /File 'nope\/missing\.json' was not found in model repository 'google-t5\/t5-small' at revision 'main' \(404/);
        assert.equal((e as T5clsError).exitCode, 2);
        return true;
      },
    );
  });

  test('an unreachable Hub: one line naming the offline alternatives; a cached snapshot is used instead', async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const cache = tmp();
    await assert.rejects(downloadModel('google-t5/t5-small', { ...opts(cache), endpoint: dead }), (e: Error) => {
      assert.ok(e instanceof T5clsError);
      assert.match(e.message, new RegExp(`^Could not reach the Hugging Face Hub at ${dead} \\(connection refused after 3 tries\\)`));
      assert.match(e.message, /local model folder/);
      assert.match(e.message, /--init random/);
      isOneLine(e);
      return true;
    });
    // A host name that does not resolve is answered at once: no retry (a resolver that times out is retried).
    const tries: string[] = [];
    await assert.rejects(
      downloadModel('google-t5/t5-small', { ...opts(cache), endpoint: 'http://hub.invalid', retry: { attempts: 2, baseDelayMs: 1 }, log: (l) => tries.push(l) }),
      (e: Error) => {
        assert.match(e.message, /^Could not reach the Hugging Face Hub at http:\/\/hub\.invalid \((host name not found|timed out after 2 tries)\); .*--init random/);
        if (e.message.includes('host name not found')) assert.deepEqual(tries, []);
        return true;
      },
    );
    const dir = await downloadModel('google-t5/t5-small', opts(cache));
    const lines: string[] = [];
    const offline = await downloadModel('google-t5/t5-small', { ...opts(cache), endpoint: dead, log: (l) => lines.push(l) });
    assert.equal(offline, dir);
    assert.ok(lines.some((l) => /could not be reached; using the cached snapshot/.test(l)));
  });
});

describe('settings', () => {
  test('HF_ENDPOINT, HF_TOKEN and HF_HOME are read as huggingface_hub reads them', () => {
    const home = tmp();
    const s = hubSettings({}, { HF_ENDPOINT: 'http://mirror.local:8080/', HF_TOKEN: 'abc', HF_HOME: home });
    assert.deepEqual(s, { endpoint: 'http://mirror.local:8080', token: 'abc', cacheDir: path.join(home, 'hub'), offline: false });
    fs.writeFileSync(path.join(home, 'token'), 'from-file\n');
    const d = hubSettings({}, { HF_HOME: home, HF_HUB_OFFLINE: '1' });
    assert.deepEqual(d, { endpoint: 'https://huggingface.co', token: 'from-file', cacheDir: path.join(home, 'hub'), offline: true });
    const x = hubSettings({}, { XDG_CACHE_HOME: '/x/cache' });
    assert.equal(x.cacheDir, path.join('/x/cache', 'huggingface', 'hub'));
    assert.equal(hubSettings({ hfHome: '/h', endpoint: 'http://e/' }, { HF_HUB_CACHE: '/elsewhere' }).cacheDir, '/h/hub');
  });
});
