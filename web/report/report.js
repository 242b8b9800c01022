// @ts-check
/**
 * The script of the page `t5cls report` writes (src/report/html.ts inlines it as is): reads the embedded JSON and
 * draws the charts with tfjs-vis, whose bundle is inlined before it as the global `tfvis`. A classic script, no
 * imports. When every chart is done it sets `<html data-report="ready">` (or `"failed"`, after logging the reason
 * with console.error). `npx tsc -p web/report` type-checks it.
 */
(() => {
  'use strict';
  /** @typedef {import('../../src/report/run_data.js').RunReportData} RunReportData */
  /** @typedef {{ name: string, color: string, xs: number[], ys: (number | null)[] }} Series */
  /** @typedef {{ x: number, y: number | null }} Point */
  /**
   * @typedef {object} LineOptions
   * @property {string} xLabel
   * @property {string} yLabel
   * @property {string} [smooth] the colour of a smoothed copy of the first series
   * @property {boolean} [zoomToFit]
   * @property {boolean} [fromZero] a y axis from 0 to a little over the largest value
   * @property {boolean} [ordinal] one x tick per value (when there are few)
   * @property {[number, number]} [yAxisDomain]
   */

  const html = document.documentElement;
  let failures = 0;
  /**
   * @param {string} what
   * @param {unknown} e
   */
  function fail(what, e) {
    failures++;
    console.error('t5cls report: ' + what + ': ' + messageOf(e));
  }
  /** @param {any} e */
  function messageOf(e) {
    return e && e.message ? e.message : String(e);
  }

  /** @type {RunReportData} */
  let data;
  try {
    const json = /** @type {HTMLElement} */ (document.getElementById('t5cls-data')).textContent;
    data = JSON.parse(json ?? '');
    if (typeof tfvis === 'undefined') throw new Error('the tfjs-vis script did not load');
  } catch (e) {
    fail('setup', e);
    html.setAttribute('data-report', 'failed');
    return;
  }
  const MAX_POINTS = 20000;
  const HEIGHT = 260;

  /**
   * vega fits axis labels into the chart's height: long class names get extra room (labels stop at 180px).
   * @param {string[]} names
   */
  function labelRoom(names) {
    const longest = names.reduce((most, n) => Math.max(most, String(n).length), 0);
    return Math.min(180, Math.max(0, longest - 8) * 6);
  }

  /** @param {HTMLElement} el */
  function widthOf(el) {
    return Math.max(240, Math.floor(el.clientWidth || 480));
  }

  /**
   * Series names become vega-lite field names, where "." and "[" would mean nested access: keep them plain.
   * tfjs-vis draws point i of a line chart at x = i whatever its x value, so series are laid out densely from 0:
   * index = step (or epoch); positions without a value hold null and are left out of the line. Very long series
   * are averaged in blocks of k steps.
   * @param {number[]} xs
   * @param {(number | null)[]} ys
   * @returns {{ values: Point[], k: number }}
   */
  function dense(xs, ys) {
    let max = 0;
    for (const x of xs) if (x > max) max = x;
    const k = Math.max(1, Math.ceil((max + 1) / MAX_POINTS));
    const n = Math.floor(max / k) + 1;
    const sum = new Array(n).fill(0);
    const count = new Array(n).fill(0);
    xs.forEach((x, j) => {
      const y = ys[j];
      if (x < 0 || y === null) return;
      const b = Math.floor(x / k);
      sum[b] += y;
      count[b]++;
    });
    /** @type {Point[]} */
    const values = [];
    for (let t = 0; t < n; t++) values.push({ x: t, y: count[t] ? sum[t] / count[t] : null });
    return { values, k };
  }

  /**
   * TensorBoard's smoothing: exponential moving average with debiasing.
   * @param {Point[]} points
   * @param {number} weight
   * @returns {Point[]}
   */
  function smooth(points, weight) {
    let last = 0;
    let count = 0;
    return points.map((p) => {
      if (p.y === null) return { x: p.x, y: null };
      last = last * weight + (1 - weight) * p.y;
      count++;
      return { x: p.x, y: last / (1 - Math.pow(weight, count)) };
    });
  }

  /**
   * tfjs-vis's types want a number as a bar's index; a name is drawn as its label just as well.
   * @param {{ index: string, value: number }[]} bars
   */
  function namedBars(bars) {
    return /** @type {{ index: number, value: number }[]} */ (/** @type {unknown} */ (bars));
  }

  /** @type {Promise<unknown>[]} */
  const jobs = [];
  /**
   * Draws into the element `id` (if the page has it) on the next frame; a failure is written into the element.
   * @param {string} id
   * @param {(el: HTMLElement) => Promise<unknown>} draw
   */
  function chart(id, draw) {
    const el = document.getElementById(id);
    if (!el) return;
    jobs.push(
      new Promise((resolve) => requestAnimationFrame(resolve))
        .then(() => draw(el))
        .catch((e) => {
          el.classList.add('failed');
          el.textContent = 'This chart could not be drawn: ' + messageOf(e);
          fail(id, e);
        }),
    );
  }

  /**
   * A line needs two points: a series known at one x only is shown as bars (one per series, labelled by its name).
   * @param {HTMLElement} el
   * @param {Series[]} allSeries
   * @param {LineOptions} opts
   */
  function lineOrBars(el, allSeries, opts) {
    let series = allSeries.filter((s) => s.xs.length > 0);
    const distinct = [...new Set(series.flatMap((s) => s.xs.map(String)))];
    if (distinct.length < 2) {
      const bars = series.map((s) => ({ index: s.name, value: /** @type {number} */ (s.ys[s.ys.length - 1]) }));
      return tfvis.render.barchart(el, namedBars(bars), {
        width: widthOf(el),
        height: HEIGHT,
        xLabel: opts.xLabel + ' ' + distinct[0],
        yLabel: opts.yLabel,
        color: series[0].color,
      });
    }
    let k = 1;
    const values = series.map((s) => {
      const d = dense(s.xs, s.ys);
      k = d.k;
      return d.values;
    });
    const n = Math.max(...values.map((v) => v.length));
    for (const v of values) while (v.length < n) v.push({ x: v.length, y: null });
    if (opts.smooth) {
      values.push(smooth(values[0], 0.6));
      series = [...series, { name: 'smoothed', color: opts.smooth, xs: [], ys: [] }];
    }
    /** @type {[number, number] | undefined} */
    let domain;
    if (opts.fromZero) {
      let max = 0;
      for (const v of values) for (const p of v) if (p.y !== null && p.y > max) max = p.y;
      domain = [0, max > 0 ? max * 1.15 : 1];
    }
    // tfjs-vis's types want numbers; null (no value at this x) is what leaves a gap in the line
    const points = /** @type {{ x: number, y: number }[][]} */ (values);
    return tfvis.render.linechart(
      el,
      { values: points, series: series.map((s) => s.name) },
      {
        width: widthOf(el),
        height: HEIGHT,
        yLabel: opts.yLabel,
        xLabel: k > 1 ? opts.xLabel + ' ÷ ' + k : opts.xLabel,
        // up to 30 epochs an ordinal axis labels each one, without fractions
        xType: opts.ordinal && n <= 31 ? 'ordinal' : 'quantitative',
        zoomToFit: !!opts.zoomToFit,
        yAxisDomain: opts.yAxisDomain || domain,
        seriesColors: series.map((s) => s.color),
      },
    );
  }

  const loss = data.lossPerStep;
  chart('chart-loss', (el) =>
    lineOrBars(el, [{ name: 'loss', color: '#6baed6', xs: loss.steps, ys: loss.values }], {
      xLabel: 'optimizer step',
      yLabel: 'loss',
      zoomToFit: true,
      smooth: loss.steps.length > 2 ? '#08306b' : undefined,
    }),
  );

  /**
   * One metric per epoch, from the epochs that have it.
   * @param {string} key
   * @param {string} name
   * @param {string} color
   * @returns {Series}
   */
  function epochSeries(key, name, color) {
    /** @type {number[]} */
    const xs = [];
    /** @type {number[]} */
    const ys = [];
    for (const e of data.epochs) {
      const value = e.metrics[key];
      if (typeof value === 'number') {
        xs.push(e.epoch);
        ys.push(value);
      }
    }
    return { name, color, xs, ys };
  }
  chart('chart-lr', (el) =>
    lineOrBars(el, [epochSeries('learning_rate', 'learning rate', '#6a51a3')], {
      xLabel: 'epoch',
      yLabel: 'learning rate',
      fromZero: true,
      ordinal: true,
    }),
  );
  chart('chart-dev', (el) =>
    lineOrBars(
      el,
      [
        epochSeries('dev_accuracy', 'accuracy', '#1b9e77'),
        epochSeries('dev_macro_f1', 'macro F1', '#d95f02'),
        epochSeries('dev_micro_f1', 'micro F1', '#7570b3'),
        epochSeries('dev_weighted_f1', 'weighted F1', '#e7298a'),
      ],
      { xLabel: 'epoch', yLabel: 'dev score', yAxisDomain: [0, 1], ordinal: true },
    ),
  );

  const test = data.test;
  if (test) {
    chart('chart-confusion', (el) => {
      const labels = test.classes.slice();
      const rows = test.confusion_matrix.map((r) => r.slice());
      if (rows.length && rows[0].length > labels.length) {
        // invalid outputs are a last column; the heat map needs a square matrix
        labels.push('(invalid)');
        rows.push(labels.map(() => 0));
      }
      return tfvis.render.confusionMatrix(
        el,
        { values: rows, tickLabels: labels },
        {
          width: widthOf(el),
          height: Math.max(HEIGHT, 48 * labels.length) + labelRoom(labels),
          xLabel: 'predicted class',
          yLabel: 'true class',
          colorMap: ['#f7fbff', '#08519c'],
        },
      );
    });
    /** @type {['precision' | 'recall' | 'f1', string][]} */
    const scores = [
      ['precision', '#31a354'],
      ['recall', '#3182bd'],
      ['f1', '#e6550d'],
    ];
    for (const [score, color] of scores) {
      chart('chart-' + score, (el) => {
        const bars = test.per_class.map((c) => ({ index: c.name, value: c[score] === null ? 0 : c[score] }));
        return tfvis.render.barchart(el, namedBars(bars), {
          width: widthOf(el),
          height: HEIGHT + labelRoom(test.classes),
          yLabel: score === 'f1' ? 'F1' : score,
          color,
        });
      });
    }
  }

  Promise.all(jobs).then(() => {
    html.setAttribute('data-report', failures ? 'failed' : 'ready');
  });
})();
