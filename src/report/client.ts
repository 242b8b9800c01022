/**
 * The script that runs inside the report page: reads the embedded JSON and draws the charts with tfjs-vis (loaded
 * before it as the global `tfvis`). Plain ES2017, no imports. When every chart is done it sets
 * `<html data-report="ready">` (or `"failed"`, after logging the reason with console.error).
 */
export const CLIENT_SCRIPT = String.raw`(function () {
  'use strict';
  var html = document.documentElement;
  var failures = 0;
  function fail(what, e) {
    failures++;
    console.error('t5cls report: ' + what + ': ' + (e && e.message ? e.message : String(e)));
  }
  var data;
  try {
    data = JSON.parse(document.getElementById('t5cls-data').textContent);
    if (typeof tfvis === 'undefined') throw new Error('the tfjs-vis script did not load');
  } catch (e) {
    fail('setup', e);
    html.setAttribute('data-report', 'failed');
    return;
  }
  var MAX_POINTS = 20000;
  var HEIGHT = 260;

  // vega fits axis labels into the chart's height: long class names get extra room (labels stop at 180px)
  function labelRoom(names) {
    var longest = 0;
    names.forEach(function (n) { longest = Math.max(longest, String(n).length); });
    return Math.min(180, Math.max(0, longest - 8) * 6);
  }

  function widthOf(el) {
    return Math.max(240, Math.floor(el.clientWidth || 480));
  }

  // Series names become vega-lite field names, where "." and "[" would mean nested access: keep them plain.
  // tfjs-vis draws point i of a line chart at x = i whatever its x value, so series are laid out densely from 0:
  // index = step (or epoch); positions without a value hold null and are left out of the line. Very long series are
  // averaged in blocks of k steps.
  function dense(xs, ys) {
    var max = 0;
    for (var i = 0; i < xs.length; i++) if (xs[i] > max) max = xs[i];
    var k = Math.max(1, Math.ceil((max + 1) / MAX_POINTS));
    var n = Math.floor(max / k) + 1;
    var sum = new Array(n).fill(0), cnt = new Array(n).fill(0);
    for (var j = 0; j < xs.length; j++) {
      if (xs[j] < 0 || ys[j] === null) continue;
      var b = Math.floor(xs[j] / k);
      sum[b] += ys[j];
      cnt[b]++;
    }
    var values = [];
    for (var t = 0; t < n; t++) values.push({ x: t, y: cnt[t] ? sum[t] / cnt[t] : null });
    return { values: values, k: k };
  }

  // TensorBoard's smoothing: exponential moving average with debiasing.
  function smooth(points, weight) {
    var last = 0, count = 0;
    return points.map(function (p) {
      if (p.y === null) return { x: p.x, y: null };
      last = last * weight + (1 - weight) * p.y;
      count++;
      return { x: p.x, y: last / (1 - Math.pow(weight, count)) };
    });
  }

  var jobs = [];
  function chart(id, draw) {
    var el = document.getElementById(id);
    if (!el) return;
    jobs.push(
      new Promise(function (resolve) { requestAnimationFrame(resolve); })
        .then(function () { return draw(el); })
        .catch(function (e) {
          el.classList.add('failed');
          el.textContent = 'This chart could not be drawn: ' + (e && e.message ? e.message : e);
          fail(id, e);
        })
    );
  }

  // A line needs two points: a series known at one x only is shown as bars (one per series, labelled by its name).
  function lineOrBars(el, series, opts) {
    series = series.filter(function (s) { return s.xs.length > 0; });
    var xs = {};
    series.forEach(function (s) { s.xs.forEach(function (x) { xs[x] = true; }); });
    var distinct = Object.keys(xs);
    if (distinct.length < 2) {
      var bars = series.map(function (s) { return { index: s.name, value: s.ys[s.ys.length - 1] }; });
      return tfvis.render.barchart(el, bars, {
        width: widthOf(el), height: HEIGHT, xLabel: opts.xLabel + ' ' + distinct[0], yLabel: opts.yLabel, color: series[0].color,
      });
    }
    var k = 1;
    var values = series.map(function (s) { var d = dense(s.xs, s.ys); k = d.k; return d.values; });
    var n = Math.max.apply(null, values.map(function (v) { return v.length; }));
    values = values.map(function (v) { while (v.length < n) v.push({ x: v.length, y: null }); return v; });
    if (opts.smooth) {
      values.push(smooth(values[0], 0.6));
      series = series.concat([{ name: 'smoothed', color: opts.smooth }]);
    }
    var domain;
    if (opts.fromZero) {
      var max = 0;
      values.forEach(function (v) { v.forEach(function (p) { if (p.y !== null && p.y > max) max = p.y; }); });
      domain = [0, max > 0 ? max * 1.15 : 1];
    }
    return tfvis.render.linechart(el, { values: values, series: series.map(function (s) { return s.name; }) }, {
      width: widthOf(el), height: HEIGHT, yLabel: opts.yLabel,
      xLabel: k > 1 ? opts.xLabel + ' ÷ ' + k : opts.xLabel,
      // up to 30 epochs an ordinal axis labels each one, without fractions
      xType: opts.ordinal && n <= 31 ? 'ordinal' : 'quantitative',
      zoomToFit: !!opts.zoomToFit,
      yAxisDomain: opts.yAxisDomain || domain,
      seriesColors: series.map(function (s) { return s.color; }),
    });
  }

  var loss = data.lossPerStep;
  chart('chart-loss', function (el) {
    return lineOrBars(el, [{ name: 'loss', color: '#6baed6', xs: loss.steps, ys: loss.values }],
      { xLabel: 'optimizer step', yLabel: 'loss', zoomToFit: true, smooth: loss.steps.length > 2 ? '#08306b' : undefined });
  });

  var epochs = data.epochs;
  function epochSeries(key, name, color) {
    var xs = [], ys = [];
    epochs.forEach(function (e) {
      if (typeof e.metrics[key] === 'number') { xs.push(e.epoch); ys.push(e.metrics[key]); }
    });
    return { name: name, color: color, xs: xs, ys: ys };
  }
  chart('chart-lr', function (el) {
    return lineOrBars(el, [epochSeries('learning_rate', 'learning rate', '#6a51a3')], { xLabel: 'epoch', yLabel: 'learning ' +
      'rate', fromZero: true, ordinal: true });
  });
  chart('chart-dev', function (el) {
    return lineOrBars(el, [
      epochSeries('dev_accuracy', 'accuracy', '#1b9e77'),
      epochSeries('dev_macro_f1', 'macro F1', '#d95f02'),
      epochSeries('dev_micro_f1', 'micro F1', '#7570b3'),
      epochSeries('dev_weighted_f1', 'weighted F1', '#e7298a'),
    ], { xLabel: 'epoch', yLabel: 'dev score', yAxisDomain: [0, 1], ordinal: true });
  });

  var test = data.test;
  if (test) {
    chart('chart-confusion', function (el) {
      var labels = test.classes.slice();
      var rows = test.confusion_matrix.map(function (r) { return r.slice(); });
      if (rows.length && rows[0].length > labels.length) {
        // invalid outputs are a last column; the heat map needs a square matrix
        labels.push('(invalid)');
        rows.push(labels.map(function () { return 0; }));
      }
      return tfvis.render.confusionMatrix(el, { values: rows, tickLabels: labels }, {
        width: widthOf(el), height: Math.max(HEIGHT, 48 * labels.length) + labelRoom(labels), xLabel: 'predicted ' +
          'class', yLabel: 'true class',
        colorMap: ['#f7fbff', '#08519c'],
      });
    });
    [['precision', '#31a354'], ['recall', '#3182bd'], ['f1', '#e6550d']].forEach(function (m) {
      chart('chart-' + m[0], function (el) {
        var bars = test.per_class.map(function (c) { return { index: c.name, value: c[m[0]] === null ? 0 : c[m[0]] }; });
        var size = { width: widthOf(el), height: HEIGHT + labelRoom(test.classes) };
        return tfvis.render.barchart(el, bars, Object.assign(size, { yLabel: m[0] === 'f1' ? 'F1' : m[0], color: m[1] }));
      });
    });
  }

  Promise.all(jobs).then(function () {
    html.setAttribute('data-report', failures ? 'failed' : 'ready');
  });
})();
`;
