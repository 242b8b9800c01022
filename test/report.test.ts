import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { RunLog } from '../src/train/run_log.js';
import { SummaryWriter } from '../src/train/tensorboard.js';
import { tfRecord } from '../src/protobuf/tfrecord.js';
import { CHECKPOINT_META, type CheckpointMeta } from '../src/checkpoint_meta.js';
import { UsageError, FormatError } from '../src/errors.js';
import { parseEventFile, readEventFile, resolveRun, writeRunReport, tfjsVisBundlePath, type RunReportData } from '../src/report/index.js';
import { run as reportCommand } from '../src/cli/report.js';
import { collectRunData } from '../src/report/run_data.js';
import { REPO_ROOT } from './helpers/fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-report-'));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

const EVIL = 'sad</script><script>alert(1)</script>';
const CLASSES = ['anger', 'joy', EVIL];

// ---- a fake run folder, as `t5cls train` + `t5cls test` leave it ----

const MODEL = 't5-tiny-scratch';
const TIME = 'Nov25_10-00-00';
const RUN = `${MODEL}_${TIME}`;
const START = Date.parse('2024-11-25T10:00:00.000Z');

const EPOCHS = [
  { epoch: 1, learning_rate: 0.001, train_loss: 2.5, train_accuracy: 0.1, dev_accuracy: 0.5, dev_macro_f1: 0.1 + 0.2, dev_micro_f1: 0.55, dev_weighted_f1: 0.4, dev_invalid: 3 },
  { epoch: 2, learning_rate: 0.0005, train_loss: 1.25, train_accuracy: 0.6, dev_accuracy: 0.75, dev_macro_f1: 0.7, dev_micro_f1: 0.75, dev_weighted_f1: 0.72, dev_invalid: 0 },
  { epoch: 3, learning_rate: 0.00025, train_loss: 1.0, train_accuracy: 0.7, dev_accuracy: 0.7, dev_macro_f1: 0.65, dev_micro_f1: 0.72, dev_weighted_f1: 0.69, dev_invalid: 1 },
];
const STEPS = Array.from({ length: 30 }, (_, i) => i + 1);
const LOSSES = STEPS.map((s) => 3 * Math.exp(-s / 10) + 0.3 + (s % 3) * 0.05);

// Rows: true class, columns: predicted, last column: invalid outputs (as `t5cls test` writes when any were invalid).
const CONFUSION = [
  [5, 1, 0, 1],
  [2, 6, 0, 0],
  [0, 1, 3, 0],
];
// By hand from CONFUSION: precision = diagonal / column sum, recall = diagonal / row sum (invalid included).
const PER_CLASS = {
  anger: { precision: 5 / 7, recall: 5 / 7, f1: 5 / 7, support: 7 },
  joy: { precision: 6 / 8, recall: 6 / 8, f1: 6 / 8, support: 8 },
  [EVIL]: { precision: 3 / 3, recall: 3 / 4, f1: 6 / 7, support: 4 },
};

function meta(runName: string, epoch: number, metrics: Record<string, number>, createdAt: string, options: Record<string, unknown>): CheckpointMeta {
  return {
    format: 't5cls-checkpoint',
    version: 1,
    baseModel: MODEL,
    runName,
    epoch,
    step: epoch * 10,
    prefixText: 'p: ',
    maxSourceLength: 64,
    classesMap: Object.fromEntries(CLASSES.map((c, i) => [c, i])),
    options,
    metrics,
    createdAt,
  };
}

function writeCheckpoint(weightsDir: string, name: string, m: CheckpointMeta): string {
  const dir = path.join(weightsDir, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, CHECKPOINT_META), JSON.stringify(m));
  return dir;
}

interface FakeRun {
  root: string;
  logsDir: string;
  runsDir: string;
  weightsDir: string;
  bestDir: string;
}

/** Three epochs, loss per step for 30 steps, checkpoints for epochs 1 and 2 (best), test metrics in the best one. */
function makeFakeRun(root: string): FakeRun {
  const logsDir = path.join(root, 'logs');
  const runsDir = path.join(root, 'runs');
  const weightsDir = path.join(root, 'weights');
  const options = { model: MODEL, prefixText: `say </script> ${EVIL}`, epochs: 3, logsDir: 'logs', runsDir: 'runs', saveWeightsPath: 'weights' };
  let clock = START;
  const log = new RunLog(path.join(logsDir, `${RUN}.txt`), () => new Date(clock));
  log.options(options);
  const tb = new SummaryWriter(path.join(runsDir, RUN), { now: () => clock });
  let bestDir = '';
  for (const e of EPOCHS) {
    for (const s of STEPS.slice((e.epoch - 1) * 10, e.epoch * 10)) tb.addScalar('train/loss_step', LOSSES[s - 1]!, s);
    clock += 60_000;
    log.epoch(e.epoch, e);
    for (const key of ['learning_rate', 'train_loss', 'train_accuracy', 'dev_accuracy', 'dev_macro_f1', 'dev_micro_f1', 'dev_weighted_f1'] as const) {
      tb.addScalar(key, e[key], e.epoch);
    }
    if (e.epoch <= 2) {
      const dir = writeCheckpoint(weightsDir, `${MODEL}-${TIME}-epoch${e.epoch}`, meta(RUN, e.epoch, e, new Date(clock).toISOString(), options));
      log.line(`saved checkpoint ${dir}`);
      bestDir = dir;
    }
  }
  tb.close();
  // a test of the first checkpoint and another run's checkpoint must both be ignored
  fs.writeFileSync(path.join(weightsDir, `${MODEL}-${TIME}-epoch1`, 'metrics.json'), JSON.stringify({ classes: ['x'], confusion_matrix: [[1]], per_class: { x: {} } }));
  writeCheckpoint(weightsDir, 'other-run-epoch1', meta('other_Nov24_09-00-00', 1, { dev_macro_f1: 0.99 }, '2024-11-24T09:00:00.000Z', {}));
  fs.writeFileSync(
    path.join(bestDir, 'metrics.json'),
    JSON.stringify({
      checkpoint: bestDir,
      split: 'test',
      decode: 'generate',
      examples: 19,
      classes: CLASSES,
      accuracy: 14 / 19,
      macro_f1: 0.7747,
      micro_f1: 28 / 37,
      weighted_f1: 0.75,
      invalid_outputs: 1,
      per_class: PER_CLASS,
      confusion_matrix: CONFUSION,
      created_at: '2024-11-25T11:00:00.000Z',
    }),
  );
  return { root, logsDir, runsDir, weightsDir, bestDir };
}

const run1 = makeFakeRun(path.join(tmpRoot, 'project'));

/** Second run in the same folders: log only, one epoch, no checkpoint, started later than RUN. */
const LATE_RUN = `${MODEL}_Nov26_08-00-00`;
{
  const log = new RunLog(path.join(run1.logsDir, `${LATE_RUN}.txt`), () => new Date(START + 86_400_000));
  log.options({ model: MODEL, logsDir: 'logs' });
  log.epoch(1, { learning_rate: 0.003, train_loss: 4, dev_accuracy: 0.25, dev_macro_f1: 0.125 });
}
/** Third run: TensorBoard events only (no log), two epochs, the oldest. */
const EVENTS_RUN = `${MODEL}_Nov20_08-00-00`;
{
  const tb = new SummaryWriter(path.join(run1.runsDir, EVENTS_RUN), { now: () => START - 5 * 86_400_000 });
  tb.addScalar('train/loss_step', 1.1, 1);
  tb.addScalar('dev_accuracy', 0.3, 1);
  tb.addScalar('dev_macro_f1', 0.2, 1);
  tb.addScalar('learning_rate', 0.01, 1);
  tb.addScalar('dev_accuracy', 0.4, 2);
  tb.addScalar('dev_macro_f1', 0.35, 2);
  tb.addScalar('learning_rate', 0.01, 2);
  tb.close();
}

const locations = { logsDir: run1.logsDir, runsDir: run1.runsDir, weightsDir: run1.weightsDir };

function embeddedData(html: string): RunReportData {
  const m = /<script type="application\/json" id="t5cls-data">([\s\S]*?)<\/script>/.exec(html);
  assert.ok(m, 'the page embeds its data');
  return JSON.parse(m[1]!) as RunReportData;
}

// ---- event file reader ----

test('readEventFile reads back what SummaryWriter wrote (float32 values, int64 steps, wall times)', () => {
  const dir = path.join(tmpRoot, 'events');
  const tb = new SummaryWriter(dir, { now: () => 1_700_000_000_123 });
  tb.addScalar('a', 0.1, 0, 1_700_000_000.5);
  tb.addScalar('a', -2.75, 2 ** 40, 1_700_000_001.25);
  tb.addScalar('b/c', 1e-7, -3, 1_700_000_002);
  tb.close();
  const got = readEventFile(tb.file);
  assert.equal(got.fileVersion, 'brain.Event:2');
  assert.equal(got.truncated, false);
  assert.deepEqual(got.scalars, [
    { tag: 'a', step: 0, value: Math.fround(0.1), wallTime: 1_700_000_000.5 },
    { tag: 'a', step: 2 ** 40, value: -2.75, wallTime: 1_700_000_001.25 },
    { tag: 'b/c', step: -3, value: Math.fround(1e-7), wallTime: 1_700_000_002 },
  ]);

  // a writer killed mid-record: the complete records are kept
  const bytes = fs.readFileSync(tb.file);
  for (const cut of [1, 5, 17]) {
    const part = parseEventFile(bytes.subarray(0, bytes.length - cut), 'x');
    assert.equal(part.truncated, true);
    assert.deepEqual(part.scalars.map((s) => s.step), [0, 2 ** 40]);
  }
  // a flipped bit inside a record is an error naming the file and the record's offset
  const damaged = Uint8Array.from(bytes);
  damaged[damaged.length - 6] ^= 0x01;
  assert.throws(() => parseEventFile(damaged, 'ev.bin'), (e: unknown) => e instanceof FormatError && /^ev\.bin: byte \d+: .*checksum/.test((e as Error).message));
  assert.throws(() => parseEventFile(Buffer.from('not a tfrecord file at all'), 'f.txt'), FormatError);
});

function varint(n: bigint): number[] {
  const out: number[] = [];
  let x = BigInt.asUintN(64, n);
  while (x >= 0x80n) {
    out.push(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  }
  out.push(Number(x));
  return out;
}
const ld = (field: number, bytes: number[]) => [(field << 3) | 2, ...varint(BigInt(bytes.length)), ...bytes];
const f32 = (v: number) => [...new Uint8Array(new Float32Array([v]).buffer)];
const f64 = (v: number) => [...new Uint8Array(new Float64Array([v]).buffer)];
const str = (s: string) => [...Buffer.from(s, 'utf-8')];

test('readEventFile reads TF2-style tensor scalars and skips fields it does not use (hand-encoded protos)', () => {
  // Value{tag, metadata (skipped), tensor{dtype DT_FLOAT, tensor_shape {}, float_val packed [2.5]}}
  const v1 = [...ld(1, str('tf2/float')), ...ld(9, [0x0a, 0x02, 0x08, 0x01]), ...ld(8, [0x08, 0x01, ...ld(2, []), ...ld(5, f32(2.5))])];
  // Value{tag, tensor{dtype DT_DOUBLE, tensor_content = 8 bytes}}
  const v2 = [...ld(1, str('tf2/double')), ...ld(8, [0x08, 0x02, ...ld(4, f64(0.1))])];
  // Value{tag, image (field 4, skipped: not a scalar)}
  const v3 = [...ld(1, str('img')), ...ld(4, [0x08, 0x01])];
  const event = [0x09, ...f64(123.5), 0x10, ...varint(-7n), ...ld(5, [...ld(1, v1), ...ld(1, v2), ...ld(1, v3)])];
  const other = [0x09, ...f64(124), 0x10, ...varint(8n), ...ld(6, [0x08, 0x01])]; // a log_message event: no scalars
  const file = Buffer.concat([tfRecord(Uint8Array.from(event)), tfRecord(Uint8Array.from(other))]);
  const got = parseEventFile(file);
  assert.deepEqual(got.scalars, [
    { tag: 'tf2/float', step: -7, value: 2.5, wallTime: 123.5 },
    { tag: 'tf2/double', step: -7, value: 0.1, wallTime: 123.5 },
  ]);
  assert.equal(got.truncated, false);
});

// ---- which run ----

test('resolveRun: newest run by default; a run name, log file, runs/ folder or checkpoint folder', () => {
  assert.equal(resolveRun(locations).name, LATE_RUN);
  const r = resolveRun({ ...locations, run: RUN });
  assert.equal(r.name, RUN);
  assert.equal(r.logFile, path.join(run1.logsDir, `${RUN}.txt`));
  assert.equal(r.eventsDir, path.join(run1.runsDir, RUN));
  assert.equal(r.eventFiles.length, 1);
  assert.equal(resolveRun({ ...locations, run: path.join(run1.runsDir, RUN) }).logFile, r.logFile);
  assert.equal(resolveRun({ ...locations, run: run1.bestDir }).name, RUN);
  assert.equal(resolveRun({ ...locations, run: r.eventFiles[0] }).logFile, r.logFile);
  assert.equal(resolveRun({ ...locations, run: path.join(run1.bestDir, CHECKPOINT_META) }).logFile, r.logFile);
  assert.equal(resolveRun({ ...locations, run: EVENTS_RUN }).logFile, undefined);

  // from another working folder, with default folder names: the log's recorded logsDir leads to runs/ and weights/
  const elsewhere = resolveRun({ run: path.join(run1.logsDir, `${RUN}.txt`), logsDir: '/nonexistent/logs', runsDir: '/nonexistent/runs', weightsDir: '/nonexistent/w' });
  assert.equal(elsewhere.name, RUN);
  assert.equal(elsewhere.eventsDir, path.join(run1.runsDir, RUN));
  assert.deepEqual(elsewhere.weightsDirs, [run1.weightsDir]);
  const fromCheckpoint = resolveRun({ run: run1.bestDir, logsDir: '/nonexistent/logs', runsDir: '/nonexistent/runs', weightsDir: '/nonexistent/w' });
  assert.equal(fromCheckpoint.logFile, r.logFile);
  assert.equal(fromCheckpoint.eventsDir, r.eventsDir);

  assert.throws(
    () => resolveRun({ ...locations, run: 'nope_Jan01_00-00-00' }),
    (e: unknown) => e instanceof UsageError && /run "nope_Jan01_00-00-00".*runs there: /.test((e as Error).message) && !(e as Error).message.includes('\n'),
  );
  assert.throws(() => resolveRun({ ...locations, run: '../x/y' }), UsageError);
  const empty = path.join(tmpRoot, 'empty');
  assert.throws(() => resolveRun({ logsDir: path.join(empty, 'logs'), runsDir: path.join(empty, 'runs') }), (e: unknown) => e instanceof UsageError && /no training run/.test((e as Error).message));
});

// ---- the report's data ----

let fullReport = '';

test('writeRunReport embeds the run\'s exact values and writes reports/<run>.html by default', () => {
  const cwd = process.cwd();
  process.chdir(run1.root);
  try {
    fullReport = writeRunReport({ ...locations, run: RUN });
  } finally {
    process.chdir(cwd);
  }
  assert.equal(fullReport, path.join(run1.root, 'reports', `${RUN}.html`));
  assert.deepEqual(fs.readdirSync(path.dirname(fullReport)), [`${RUN}.html`], 'no temp files left');
  const html = fs.readFileSync(fullReport, 'utf-8');
  const data = embeddedData(html);

  assert.equal(data.run, RUN);
  // the log's values, full precision (0.1 + 0.2 stays 0.30000000000000004)
  assert.deepEqual(
    data.epochs.map((e) => e.metrics),
    EPOCHS.map((e) => ({ ...e })),
  );
  assert.equal(data.epochs[0]!.metrics.dev_macro_f1, 0.30000000000000004);
  assert.equal(data.epochs[0]!.time, '2024-11-25T10:01:00.000Z');
  // the events' values: stored as float32
  assert.deepEqual(data.lossPerStep.steps, STEPS);
  assert.deepEqual(data.lossPerStep.values, LOSSES.map(Math.fround));
  // checkpoints of this run only; the best is epoch 2 (highest dev macro-F1); its metrics.json is the test section
  assert.deepEqual(data.checkpoints.map((c) => c.epoch), [1, 2]);
  assert.equal(data.bestCheckpoint, run1.bestDir);
  assert.ok(data.test);
  assert.deepEqual(data.test.classes, CLASSES);
  assert.deepEqual(data.test.confusion_matrix, CONFUSION);
  assert.equal(data.test.invalid_outputs, 1);
  assert.equal(data.test.accuracy, 14 / 19);
  assert.deepEqual(data.test.per_class, CLASSES.map((name) => ({ name, ...PER_CLASS[name as keyof typeof PER_CLASS] })));
  assert.equal(data.options.prefixText, `say </script> ${EVIL}`);
  assert.deepEqual(data.notes, []);

  // "</script>" from the data never reaches the HTML as such: the only ones close the page's three scripts
  assert.equal(html.match(/<\/script/gi)!.length, 3);
  assert.equal(html.match(/<script/gi)!.length, 3);
  // self-contained: the tfjs-vis bundle is inlined, nothing is loaded from elsewhere
  const bundle = fs.readFileSync(tfjsVisBundlePath(), 'utf-8');
  assert.ok(html.includes(bundle.slice(0, 2000)) && html.includes(bundle.slice(-2000)));
  const markup = html.replace(/<script\b[^>]*>[\s\S]*?<\/script>/gi, '');
  assert.doesNotMatch(markup, /<(script|img|iframe)[^>]+src=|<link\b|url\(/i);
  // tables are written server-side with the class name escaped
  assert.ok(html.includes('<td class="name">sad&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;</td><td>1.0000</td><td>0.7500</td><td>0.8571</td><td>4</td>'));
});

const REPORT_JS = path.join(REPO_ROOT, 'web', 'report', 'report.js');

test('the page\'s script is web/report/report.js exactly as the file is, after the tfjs-vis bundle', () => {
  assert.ok(fullReport, 'the report was written by an earlier test');
  const scripts = [...fs.readFileSync(fullReport, 'utf-8').matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/gi)].map((m) => m[1]);
  assert.equal(scripts.length, 3);
  assert.equal(scripts[2], fs.readFileSync(REPORT_JS, 'utf-8'));
});

test('web/report/report.js passes its type check (its // @ts-check, with tfjs-vis\'s types and the report data\'s)', () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  assert.match(fs.readFileSync(REPORT_JS, 'utf-8'), /^\/\/ @ts-check\n/);
  try {
    execFileSync(process.execPath, [tsc, '-p', path.join(REPO_ROOT, 'web', 'report')], { encoding: 'utf-8' });
  } catch (e) {
    assert.fail(`tsc -p web/report:\n${(e as { stdout?: string }).stdout ?? (e as Error).message}`);
  }
});

test('writeRunReport: a log-only run and an events-only run', () => {
  const out = path.join(tmpRoot, 'out', 'late.html');
  assert.equal(writeRunReport({ ...locations, output: out }), out); // newest run
  const late = embeddedData(fs.readFileSync(out, 'utf-8'));
  assert.equal(late.run, LATE_RUN);
  assert.deepEqual(late.epochs, [{ epoch: 1, time: '2024-11-26T10:00:00.000Z', metrics: { learning_rate: 0.003, train_loss: 4, dev_accuracy: 0.25, dev_macro_f1: 0.125 } }]);
  assert.deepEqual(late.lossPerStep, { steps: [], values: [] });
  assert.equal(late.test, undefined);
  assert.equal(late.notes.length, 2);
  assert.match(late.notes.join('\n'), /no TensorBoard event file/);
  assert.match(late.notes.join('\n'), /no checkpoint of this run/);

  const ev = embeddedData(fs.readFileSync(writeRunReport({ ...locations, run: EVENTS_RUN, output: path.join(tmpRoot, 'out', 'ev.html') }), 'utf-8'));
  assert.deepEqual(ev.epochs, [
    { epoch: 1, metrics: { dev_accuracy: Math.fround(0.3), dev_macro_f1: Math.fround(0.2), learning_rate: Math.fround(0.01) } },
    { epoch: 2, metrics: { dev_accuracy: Math.fround(0.4), dev_macro_f1: Math.fround(0.35), learning_rate: Math.fround(0.01) } },
  ]);
  assert.deepEqual(ev.lossPerStep, { steps: [1], values: [Math.fround(1.1)] });
  assert.match(ev.notes.join('\n'), /no text log/);
});

test('t5cls report (command): prints the report path on stdout', async () => {
  const out = path.join(tmpRoot, 'out', 'cli.html');
  const printed: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void printed.push(a.join(' '));
  try {
    const params = { run: RUN, logsDir: run1.logsDir, runsDir: run1.runsDir, saveWeightsPath: run1.weightsDir, output: out, quiet: true, verbose: false };
    await reportCommand({ params: params as never, given: new Set() });
  } finally {
    console.log = log;
  }
  assert.deepEqual(printed, [out]);
  assert.equal(embeddedData(fs.readFileSync(out, 'utf-8')).run, RUN);
});

// ---- the page in a real browser ----

/** Opens the page offline and returns what the browser saw. */
async function openInChromium(file: string, screenshot: string) {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('dialog', (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith('file:')) return route.continue();
      requests.push(url);
      return route.abort();
    });
    await page.goto(pathToFileURL(file).href);
    await page.waitForSelector('html[data-report]', { timeout: 30_000 });
    const state = await page.getAttribute('html', 'data-report');
    const charts = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('.chart')].map((el) => {
        const canvas = el.querySelector('canvas');
        const svg = el.querySelector('svg');
        const colors: string[] = [];
        let painted = 0;
        if (canvas) {
          const px = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
          const seen = new Set<string>();
          for (let i = 0; i < px.length; i += 4) {
            if (px[i + 3]! < 250 || (px[i]! > 245 && px[i + 1]! > 245 && px[i + 2]! > 245)) continue;
            painted++;
            seen.add('#' + [px[i]!, px[i + 1]!, px[i + 2]!].map((c) => c.toString(16).padStart(2, '0')).join(''));
          }
          colors.push(...seen);
        }
        return { id: el.id, canvas: !!canvas, width: canvas?.width ?? 0, painted, svgNodes: svg ? svg.querySelectorAll('*').length : 0, colors, text: el.textContent ?? '' };
      }),
    );
    const scripts = await page.evaluate(() => document.scripts.length);
    const tableText = await page.evaluate(() => document.querySelector('#test table')?.textContent ?? '');
    await page.screenshot({ path: screenshot, fullPage: true });
    return { state, problems, requests, charts, scripts, tableText };
  } finally {
    await browser.close();
  }
}

const noChromium = fs.existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (install it with: apt-get install -y chromium)`;

test('the report opens offline in headless Chromium and draws every chart', { skip: noChromium, timeout: 90_000 }, async (t) => {
  assert.ok(fullReport, 'the report was written by an earlier test');
  // T5CLS_REPORT_SCREENSHOT=file.png keeps the screenshot for a look
  const shot = process.env.T5CLS_REPORT_SCREENSHOT ?? path.join(tmpRoot, 'report.png');
  const seen = await openInChromium(fullReport, shot);
  t.diagnostic(`screenshot: ${shot}`);
  assert.deepEqual(seen.problems, []);
  assert.deepEqual(seen.requests, []);
  assert.equal(seen.state, 'ready');
  assert.equal(seen.scripts, 3, 'no script injected by the data');
  assert.deepEqual(
    seen.charts.map((c) => c.id),
    ['chart-loss', 'chart-lr', 'chart-dev', 'chart-confusion', 'chart-precision', 'chart-recall', 'chart-f1'],
  );
  for (const c of seen.charts) {
    assert.ok(c.canvas || c.svgNodes > 0, `${c.id}: nothing drawn`);
    assert.ok(c.painted > 2000, `${c.id}: only ${c.painted} painted pixels`);
  }
  // each chart's own series colours are on its canvas: the data was drawn, not just the axes
  const has = (id: string, ...colors: string[]) => {
    const chart = seen.charts.find((c) => c.id === id)!;
    for (const color of colors) assert.ok(chart.colors.includes(color), `${id}: no ${color} pixel`);
  };
  has('chart-loss', '#6baed6', '#08306b');
  has('chart-lr', '#6a51a3');
  has('chart-dev', '#1b9e77', '#d95f02', '#7570b3', '#e7298a');
  has('chart-precision', '#31a354');
  has('chart-recall', '#3182bd');
  has('chart-f1', '#e6550d');
  has('chart-confusion', '#08519c'); // the largest count (6) gets the top of the colour range
  assert.match(seen.tableText, /sad<\/script><script>alert\(1\)<\/script>1\.00000\.75000\.85714/);
});

test('partial reports (log only, one epoch; events only) also load cleanly', { skip: noChromium, timeout: 90_000 }, async () => {
  // one epoch (or one step) is drawn as bars in the first series' colour; two epochs as lines
  for (const [name, charts] of [
    ['late.html', { 'chart-lr': ['#6a51a3'], 'chart-dev': ['#1b9e77'] }],
    ['ev.html', { 'chart-loss': ['#6baed6'], 'chart-lr': ['#6a51a3'], 'chart-dev': ['#1b9e77', '#d95f02'] }],
  ] as const) {
    const file = path.join(tmpRoot, 'out', name);
    const shotDir = process.env.T5CLS_REPORT_SCREENSHOT ? path.dirname(process.env.T5CLS_REPORT_SCREENSHOT) : tmpRoot;
    const seen = await openInChromium(file, path.join(shotDir, `${name}.png`));
    assert.deepEqual(seen.problems, [], name);
    assert.equal(seen.state, 'ready', name);
    assert.deepEqual(seen.charts.map((c) => c.id), Object.keys(charts), name);
    for (const c of seen.charts) {
      for (const color of charts[c.id as keyof typeof charts] as readonly string[]) assert.ok(c.colors.includes(color), `${name} ${c.id}: no ${color} pixel`);
    }
  }
});

test('a resumed run\'s events supersede what the stopped run logged from the resumed step on (as TensorBoard purges)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 't5cls-resumed-'));
  try {
    const stopped = new SummaryWriter(dir, { now: () => 1_700_000_000_000 });
    for (let step = 1; step <= 10; step++) stopped.addScalar('train/loss_step', step, step, step);
    stopped.addScalar('dev_macro_f1', 0.5, 1, 11);
    stopped.close();
    // The state was saved after step 5; the resumed run logs again from step 6.
    const resumed = new SummaryWriter(dir, { now: () => 1_700_000_100_000, purgeStep: 6 });
    for (let step = 6; step <= 12; step++) resumed.addScalar('train/loss_step', 100 + step, step, 100 + step);
    resumed.close();
    const data = collectRunData({ name: 'resumed', eventsDir: dir, eventFiles: [stopped.file, resumed.file], weightsDirs: [] });
    assert.deepEqual(data.lossPerStep.steps, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.deepEqual(data.lossPerStep.values, [1, 2, 3, 4, 5, 106, 107, 108, 109, 110, 111, 112]);
    // Epoch-level values at steps (epochs) below the restart stay.
    assert.deepEqual(data.epochs.map((e) => [e.epoch, e.metrics.dev_macro_f1]), [[1, 0.5]]);

    // Without the restart record the stopped run's values would stand where the resumed run logged nothing.
    const plain = new SummaryWriter(path.join(dir, 'plain'), { now: () => 1_700_000_200_000 });
    plain.addScalar('train/loss_step', 7, 7, 7);
    plain.close();
    const mixed = collectRunData({ name: 'mixed', eventsDir: dir, eventFiles: [stopped.file, plain.file], weightsDirs: [] });
    assert.deepEqual(mixed.lossPerStep.steps, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
