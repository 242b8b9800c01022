/**
 * The report page: one self-contained HTML file (tfjs-vis inlined, data embedded as JSON) that opens without a
 * network connection. Tables are written here; the charts are drawn in the page by web/report/report.js.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import type { RunReportData } from './run_data.js';
import { reportScript } from './client.js';

// The UMD bundle of tfjs-vis carries its own copy of tfjs-core, so the page needs no separate tf.min.js.
const TFJS_VIS_BUNDLE = '@tensorflow/tfjs-vis/dist/tfjs-vis.umd.min.js';

let visScript: string | undefined;

/** Path of the tfjs-vis browser bundle, resolved from this package's dependencies. */
export function tfjsVisBundlePath(): string {
  return createRequire(import.meta.url).resolve(TFJS_VIS_BUNDLE);
}

function tfjsVisScript(): string {
  visScript ??= fs.readFileSync(tfjsVisBundlePath(), 'utf-8');
  return visScript;
}

/**
 * Makes script text safe inside `<script>…</script>`: `</script` would end the element and `<!--` can change how
 * the HTML parser reads it. `\x3C` means `<` in strings, template literals and regular expressions alike.
 */
export function escapeScript(js: string): string {
  return js.replace(/<\/(script)/gi, '\\x3C/$1').replace(/<!--/g, '\\x3C!--');
}

/** JSON that can sit inside `<script type="application/json">` and parses back to the same value. */
export function embedJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A score or loss: fixed 4 decimals (tiny or huge values in exponent form). */
function fmt(v: number | null | undefined, digits = 4): string {
  if (v === null || v === undefined) return '–';
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-4 || a >= 1e6) ? v.toExponential(3) : v.toFixed(digits);
}

/** A learning rate or a count: as written, to 4 significant digits. */
function fmtPlain(v: number | null | undefined): string {
  if (v === null || v === undefined) return '–';
  return String(Number(v.toPrecision(4)));
}

const EPOCH_COLUMNS: [string, string][] = [
  ['learning_rate', 'learning rate'],
  ['train_loss', 'train loss'],
  ['train_accuracy', 'train acc.'],
  ['dev_accuracy', 'dev acc.'],
  ['dev_macro_f1', 'dev macro F1'],
  ['dev_micro_f1', 'dev micro F1'],
  ['dev_weighted_f1', 'dev weighted F1'],
];

function epochTable(data: RunReportData, bestEpoch: number | undefined): string {
  if (!data.epochs.length) return '<p class="note">No epoch has finished yet.</p>';
  const known = new Set(EPOCH_COLUMNS.map((c) => c[0]).concat('epoch'));
  const extra = [...new Set(data.epochs.flatMap((e) => Object.keys(e.metrics)))].filter((k) => !known.has(k));
  const cols: [string, string][] = [
    ...EPOCH_COLUMNS.filter(([k]) => data.epochs.some((e) => k in e.metrics)),
    ...extra.map((k): [string, string] => [k, k.replace(/_/g, ' ')]),
  ];
  const head = `<tr><th>epoch</th>${cols.map(([, label]) => `<th>${escapeHtml(label)}</th>`).join('')}</tr>`;
  const rows = data.epochs.map((e) => {
    const best = e.epoch === bestEpoch;
    const cells = cols
      .map(([k]) => `<td>${k === 'learning_rate' || k.endsWith('invalid') ? fmtPlain(e.metrics[k]) : fmt(e.metrics[k])}</td>`)
      .join('');
    return `<tr${best ? ' class="best" title="best checkpoint"' : ''}><td>${e.epoch}${best ? ' ★' : ''}</td>${cells}</tr>`;
  });
  return `<table class="num"><thead>${head}</thead><tbody>${rows.join('')}</tbody></table>`;
}

function testSection(data: RunReportData): string {
  const t = data.test;
  if (!t) return '';
  const what = [
    t.examples !== undefined ? `${t.examples} ${escapeHtml(t.split ?? '')} examples` : escapeHtml(t.split ?? ''),
    t.decode ? `${escapeHtml(t.decode)} decoding` : '',
  ]
    .filter(Boolean)
    .join(', ');
  const perClass = t.per_class
    .map(
      (c) =>
        `<tr><td class="name">${escapeHtml(c.name)}</td>` +
        `<td>${fmt(c.precision)}</td><td>${fmt(c.recall)}</td><td>${fmt(c.f1)}</td><td>${c.support}</td></tr>`,
    )
    .join('');
  return `
<section id="test">
  <h2>Test results</h2>
  <p class="sub">${what}${t.created_at ? ` · tested ${escapeHtml(t.created_at)}` : ''} · <code>${escapeHtml(t.file)}</code></p>
  <div class="cards">
    ${card('accuracy', fmt(t.accuracy))}${card('macro F1', fmt(t.macro_f1))}${card(
      'micro ' + 'F1',
      fmt(t.micro_f1),
    )}${card('weighted F1', fmt(t.weighted_f1))}${card('invalid outputs', String(t.invalid_outputs))}
  </div>
  <div class="grid">
    <figure><figcaption>Confusion matrix (rows: true class, columns: predicted${
      t.invalid_outputs ? '; “(invalid)” counts ' + 'outputs that were no class name' : ''
    })</figcaption><div class="chart" id="chart-confusion"></div></figure>
    <figure><figcaption>Per-class scores</figcaption>
      <table class="num">
        <thead><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr></thead>
        <tbody>${perClass}</tbody>
      </table>
    </figure>
  </div>
  <div class="grid three">
    <figure><figcaption>Precision per class</figcaption><div class="chart" id="chart-precision"></div></figure>
    <figure><figcaption>Recall per class</figcaption><div class="chart" id="chart-recall"></div></figure>
    <figure><figcaption>F1 per class</figcaption><div class="chart" id="chart-f1"></div></figure>
  </div>
</section>`;
}

const SMOOTHED_NOTE = ' <span class="light">(smoothed: exponential moving average, weight 0.6)</span>';

function card(label: string, value: string): string {
  return `<div class="card"><div class="value">${escapeHtml(value)}</div><div class="label">${escapeHtml(label)}</div></div>`;
}

const STYLE = `
:root { color-scheme: light; --fg: #1d2330; --muted: #5b6475; --line: #dde2ea; --bg: #f5f7fa; --accent: #08519c; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", sans-serif;
  color: var(--fg); background: var(--bg); }
header { background: #fff; border-bottom: 1px solid var(--line); padding: 18px 28px; }
header h1 { margin: 0; font-size: 20px; }
header h1 span { color: var(--muted); font-weight: 400; }
main { padding: 8px 28px 40px; max-width: 1400px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin-top: 18px; }
h2 { margin: 0 0 10px; font-size: 16px; }
.sub { color: var(--muted); margin: -4px 0 12px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin-bottom: 12px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.card .value { font-size: 18px; font-weight: 600; color: var(--accent); }
.card .label { color: var(--muted); font-size: 12px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 18px; }
.grid.three { grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); margin-top: 8px; }
figure { margin: 0; min-width: 0; }
figcaption { font-weight: 600; margin-bottom: 6px; }
figcaption .light { font-weight: 400; color: var(--muted); font-size: 12px; }
.chart { width: 100%; min-height: 120px; }
.chart.failed { color: #b00020; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left; }
table.num td, table.num th { text-align: right; }
table.num td.name, table.num th:first-child { text-align: left; }
tr.best td { background: #eef5fc; font-weight: 600; }
.note { color: var(--muted); }
ul.notes li { color: #8a5a00; }
code { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; word-break: break-all; }
details summary { cursor: pointer; font-weight: 600; }
`;

/** The whole page. */
export function renderReportHtml(data: RunReportData): string {
  const best = data.checkpoints.find((c) => c.dir === data.bestCheckpoint);
  const steps = data.lossPerStep.steps.length ? data.lossPerStep.steps[data.lossPerStep.steps.length - 1]! : undefined;
  const lastEpoch = data.epochs.at(-1);
  const cards = [
    card('epochs', String(data.epochs.length)),
    steps !== undefined ? card('optimizer steps', String(steps)) : '',
    best ? card(`best dev macro F1 (epoch ${best.epoch})`, fmt(best.metrics.dev_macro_f1)) : '',
    !best && lastEpoch ? card(`dev macro F1 (epoch ${lastEpoch.epoch})`, fmt(lastEpoch.metrics.dev_macro_f1)) : '',
    data.test ? card(`test macro F1`, fmt(data.test.macro_f1)) : '',
  ].join('');
  const hasLr = data.epochs.some((e) => typeof e.metrics.learning_rate === 'number');
  const hasDev = data.epochs.some((e) =>
    ['dev_accuracy', 'dev_macro_f1', 'dev_micro_f1', 'dev_weighted_f1'].some((k) => typeof e.metrics[k] === 'number'),
  );
  const trainingCharts = [
    data.lossPerStep.steps.length
      ? `<figure><figcaption>Training loss per optimizer step${data.lossPerStep.steps.length > 2 ? SMOOTHED_NOTE : ''}</figcaption>` +
        `<div class="chart" id="chart-loss"></div></figure>`
      : `<figure><figcaption>Training loss per optimizer step</figcaption><p class="note">No <code>train/loss_step</code> ` +
        `values were found.</p></figure>`,
    hasLr
      ? `<figure><figcaption>Learning rate per epoch</figcaption><div class="chart" id="chart-lr"></div></figure>`
      : `<figure><figcaption>Learning rate per epoch</figcaption><p class="note">No learning rate was logged.</p></figure>`,
    hasDev
      ? `<figure><figcaption>Dev accuracy and F1 per epoch</figcaption><div class="chart" id="chart-dev"></div></figure>`
      : `<figure><figcaption>Dev accuracy and F1 per epoch</figcaption><p class="note">No epoch has been validated yet.</p></figure>`,
  ].join('\n    ');
  const sources = [
    data.sources.log ? `<li>log: <code>${escapeHtml(data.sources.log)}</code></li>` : '',
    ...data.sources.events.map((f) => `<li>TensorBoard: <code>${escapeHtml(f)}</code></li>`),
    data.sources.checkpoint ? `<li>best checkpoint: <code>${escapeHtml(data.sources.checkpoint)}</code></li>` : '',
    data.sources.metrics ? `<li>test metrics: <code>${escapeHtml(data.sources.metrics)}</code></li>` : '',
  ].join('');
  const options = Object.entries(data.options)
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td><code>${escapeHtml(v)}</code></td></tr>`)
    .join('');

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>t5cls report: ${escapeHtml(data.run)}</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>t5cls report <span>${escapeHtml(data.run)}</span></h1></header>
<main>
<section id="summary">
  <h2>Run</h2>
  <div class="cards">${cards}</div>
  ${data.notes.length ? `<ul class="notes">${data.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>` : ''}
</section>
<section id="training">
  <h2>Training</h2>
  <div class="grid">
    ${trainingCharts}
  </div>
  <h2 style="margin-top:16px">Epochs</h2>
  ${epochTable(data, best?.epoch)}
</section>
${testSection(data)}
<section id="details">
  <details><summary>Files and options</summary>
    <ul>${sources}</ul>
    ${options ? `<table class="options">${options}</table>` : '<p class="note">No options were logged.</p>'}
    <p class="note">Generated ${escapeHtml(data.generatedAt)} by t5cls.</p>
  </details>
</section>
</main>
<script type="application/json" id="t5cls-data">${embedJson(data)}</script>
<script>${escapeScript(tfjsVisScript())}</script>
<script>${escapeScript(reportScript())}</script>
</body>
</html>
`;
}
