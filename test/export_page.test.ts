/**
 * The classifier page `t5cls export` writes (index.html, page/), in Debian's Chromium through playwright-core:
 * served from 127.0.0.1 by node:http, it loads the export with onnxruntime-web (WebAssembly), and the labels and
 * probabilities it shows for texts typed into it are those `t5cls predict --decode rank --format json` prints for the
 * same texts (probabilities within 1e-3), with no request leaving its own folder. Its tokenizer (sentencepiece-js in
 * the browser) gives the ids t5cls's gives for every text of the tokenizer fixture (the hand-picked hard cases and every
 * tweet of TweetEval emotion's train split).
 *
 * The CLI runs from dist/ (bin/t5cls.js): run `npm run build` first. Without Chromium the browser tests skip,
 * except in CI (CI set), where they fail.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { initBackend } from '../src/engine/init.js';
import { T5Tokenizer } from '../src/tokenizer/index.js';
import { encodeInput } from '../src/data/batches.js';
import { PAGE_META, type PageMeta } from '../src/export/index.js';
import { findPageSources, sentencepieceModule } from '../src/export/page_files.js';
import { exportCheckpoint } from '../src/export/index.js';
import { FIXTURES, fixtureDir, readJson, REPO_ROOT, tempDirs, TOKENIZER_DIR, TWEETEVAL_SLICE } from './helpers/fixtures.js';
import { saveTinyClassifier, TINY_CLASSES, TINY_MAX_SOURCE_LENGTH, TINY_PREFIX, TINY_TRAIN } from './helpers/tiny_classifier.js';
import { serveFolder, type StaticServer } from './helpers/static_server.js';

const CHROMIUM = '/usr/bin/chromium';
const CLI = path.join(REPO_ROOT, 'bin/t5cls.js');
const NO_CHROMIUM = fs.existsSync(CHROMIUM) || process.env.CI ? false : `no Chromium at ${CHROMIUM} (install it with: apt-get install -y chromium)`;
const temp = tempDirs('t5cls-export-page-');

const tweets = fs.readFileSync(path.join(TWEETEVAL_SLICE, 'emotion/test_text.txt'), 'utf-8').split('\n').filter((l) => l.trim() !== '');
/** The texts of test/fixtures/tokenizer/t5-spiece-ids.jsonl: hard cases (spaces, accents, CJK, emoji, empty) and 3,257 tweets. */
const tokenizerTexts = fs.readFileSync(path.join(FIXTURES, 'tokenizer/t5-spiece-ids.jsonl'), 'utf-8').trimEnd().split('\n').map((l) => (JSON.parse(l) as { text: string }).text);
/** Ordinary tweets and training texts, special tokens written out, and one text far over maxSourceLength tokens. */
const TEXTS = [
  ...TINY_TRAIN.slice(0, 4).map(([t]) => t),
  ...tweets.slice(0, 6),
  'Ça va? 🙂 naïve café </s> <extra_id_0> done',
  Array.from({ length: 3 }, () => tweets.slice(6, 12).join(' ')).join(' '),
];

interface Shown {
  label: string;
  text: string;
  bars: { name: string; probability: number; percent: string }[];
}

after(() => temp.removeAll());

test('the page\'s sentencepiece module hands the model over through its fs stand-in and nothing else', () => {
  const source = sentencepieceModule("exports.SentencePieceProcessor = function () { return require('fs').readFileSync('m'); };");
  assert.match(source, /^\/\/ sentencepiece-js/);
  assert.match(source, /export const SentencePieceProcessor = module\.exports\.SentencePieceProcessor;/);
  assert.match(source, /throw new Error\(`cannot load \$\{name\} in a browser`\)/);
});

test('without onnxruntime-web the export is written without the page, and one line says so', async () => {
  const missing = findPageSources((specifier) => {
    if (specifier.startsWith('onnxruntime-web')) throw new Error(`Cannot find module '${specifier}'`);
    return specifier;
  });
  assert.equal(missing, 'onnxruntime-web is not installed');
  const warnings: string[] = [];
  const out = path.join(temp.make(), 'no-page');
  const files = await exportCheckpoint(fixtureDir('t5-tiny'), { out, tokenizer: TOKENIZER_DIR, classesMap: ['yes', 'no'], pageSources: missing, onWarning: (m) => warnings.push(m) });
  assert.deepEqual(warnings, ['the classifier page (index.html) was left out: onnxruntime-web is not installed']);
  assert.ok(files.some((f) => f.file === 'onnx/decoder_model_merged.onnx'));
  assert.deepEqual(files.filter((f) => f.file === 'index.html' || f.file.startsWith('page/')), []);
  assert.equal(fs.existsSync(path.join(out, 'index.html')), false);
});

describe('the exported page in Chromium = t5cls predict --decode rank', { skip: NO_CHROMIUM }, () => {
  let work: string;
  let out: string;
  let server: StaticServer;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  /** Requests that did not go to the export's own server. */
  const elsewhere: string[] = [];

  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd: work, encoding: 'utf-8' });

  before(async () => {
    await initBackend('wasm');
    work = temp.make();
    await saveTinyClassifier(work);
    const exported = cli('export', '--quiet');
    assert.equal(exported.status, 0, exported.stderr);
    out = exported.stdout.trim();
    server = await serveFolder(out);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    page = await browser.newPage();
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(server.url) || url.startsWith('data:')) return route.continue();
      elsewhere.push(url);
      return route.abort();
    });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('the folder holds the page beside the model, the class names tokenized by t5cls', async () => {
    for (const file of ['index.html', 'spiece.model', 'page/t5cls-page.js', 'page/ort.wasm.min.js', 'page/ort-wasm-simd-threaded.js', 'page/ort-wasm-simd-threaded.wasm', 'page/sentencepiece.js']) {
      assert.ok(fs.existsSync(path.join(out, file)), file);
    }
    const meta = readJson<PageMeta>(path.join(out, PAGE_META));
    const tokenizer = await T5Tokenizer.fromPretrained(TOKENIZER_DIR);
    assert.deepEqual(meta.classes, TINY_CLASSES);
    assert.deepEqual(meta.classTokens, TINY_CLASSES.map((c) => tokenizer.encode(c)));
    assert.deepEqual([meta.prefix, meta.maxSourceLength, meta.eosTokenId, meta.specialTokens['<extra_id_0>']], [TINY_PREFIX, TINY_MAX_SOURCE_LENGTH, 1, 32099]);
  });

  test('typed texts get the labels and probabilities predict gives; blank lines are skipped; no request leaves the folder', { timeout: 60_000 }, async (t) => {
    const started = Date.now();
    await page.goto(server.url);
    await page.waitForSelector('html[data-state="ready"], html[data-state="error"]', { timeout: 30_000 });
    assert.equal(await page.getAttribute('html', 'data-state'), 'ready', (await page.textContent('#status')) ?? '');
    t.diagnostic(`page ready ${Date.now() - started} ms after navigation; model load ${await page.getAttribute('html', 'data-load-ms')} ms`);
    await page.fill('#texts', [TEXTS[0], '', ...TEXTS.slice(1, 5), '   ', ...TEXTS.slice(5)].join('\n'));
    await page.getByRole('button', { name: 'Classify' }).click();
    await page.waitForSelector('html[data-state="ready"] .result, html[data-state="error"]', { timeout: 30_000 });
    assert.equal(await page.getAttribute('html', 'data-state'), 'ready', (await page.textContent('#status')) ?? '');
    t.diagnostic((await page.textContent('#status')) ?? '');
    const shown: Shown[] = await page.$$eval('.result', (items) =>
      items.map((item) => ({
        label: item.querySelector('.label')!.textContent!,
        text: item.querySelector('.text')!.textContent!,
        bars: [...item.querySelectorAll<HTMLElement>('.bar')].map((bar) => ({
          name: bar.dataset.class!,
          probability: Number(bar.dataset.probability),
          percent: bar.querySelector('.percent')!.textContent!,
        })),
      })),
    );
    assert.match((await page.textContent('#status')) ?? '', /1 cut to the model's 64 tokens/);

    const predicted = cli('predict', '--decode', 'rank', '--format', 'json', '--quiet', ...TEXTS);
    assert.equal(predicted.status, 0, predicted.stderr);
    const want = predicted.stdout.trim().split('\n').map((line) => JSON.parse(line) as { label: string; probabilities: Record<string, number> });
    assert.equal(shown.length, TEXTS.length);
    assert.ok(new Set(want.map((w) => w.label)).size >= 2, `the model should tell texts apart: ${JSON.stringify(want.map((w) => w.label))}`);
    let worst = 0;
    shown.forEach((s, i) => {
      assert.equal(s.text, TEXTS[i]);
      assert.equal(s.label, want[i]!.label, `text ${i + 1}`);
      // Bars ranked from the most likely class, every class once.
      assert.deepEqual([...s.bars.map((b) => b.name)].sort(), [...TINY_CLASSES].sort());
      assert.equal(s.bars[0]!.name, s.label);
      for (let k = 1; k < s.bars.length; k++) assert.ok(s.bars[k - 1]!.probability >= s.bars[k]!.probability);
      for (const bar of s.bars) {
        const error = Math.abs(bar.probability - want[i]!.probabilities[bar.name]!);
        worst = Math.max(worst, error);
        assert.ok(error < 1e-3, `text ${i + 1}, ${bar.name}: ${bar.probability} vs ${want[i]!.probabilities[bar.name]}`);
        assert.equal(bar.percent, `${(100 * bar.probability).toFixed(1)}%`);
      }
    });
    t.diagnostic(`largest probability difference: ${worst.toExponential(2)}`);
    assert.deepEqual(problems, []);
    assert.deepEqual(elsewhere, []);
    assert.ok(server.requested.includes('/onnx/decoder_model_merged.onnx'));
  });

  test('opened as a file, the page says it must be served over HTTP', async () => {
    const filePage = await browser.newPage();
    try {
      await filePage.goto(pathToFileURL(path.join(out, 'index.html')).href);
      await filePage.waitForSelector('html[data-state="error"]', { timeout: 10_000 });
      assert.match((await filePage.textContent('#status')) ?? '', /served over HTTP, e\.g\. python3 -m http\.server -d/);
    } finally {
      await filePage.close();
    }
  });

  test('the page\'s tokenizer gives t5cls\'s ids for every text of the tokenizer fixture, cut at maxSourceLength', { timeout: 60_000 }, async (t) => {
    const sample = [...tokenizerTexts, ...tweets, ...TEXTS];
    assert.ok(tokenizerTexts.length > 3257, `${tokenizerTexts.length} texts in the tokenizer fixture`);
    const inBrowser: number[][] = await page.evaluate(async (texts) => {
      const { loadTokenizer } = await import(new URL('page/tokenizer.js', document.baseURI).href);
      const meta = await (await fetch('page/page.json')).json();
      const model = new Uint8Array(await (await fetch('spiece.model')).arrayBuffer());
      const tokenizer = await loadTokenizer(model, meta);
      return texts.map((text: string) => tokenizer.encodeInput(text, meta.prefix, meta.maxSourceLength));
    }, sample);
    const tokenizer = await T5Tokenizer.fromPretrained(TOKENIZER_DIR);
    const different = sample.filter((text, i) => JSON.stringify(inBrowser[i]) !== JSON.stringify(encodeInput(tokenizer, text, TINY_PREFIX, TINY_MAX_SOURCE_LENGTH)));
    t.diagnostic(`${sample.length - different.length} of ${sample.length} texts tokenized alike`);
    assert.deepEqual(different, []);
  });
});
