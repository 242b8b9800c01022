import type { ClassificationMetrics } from './metrics.js';

/** A plain-text evaluation report: summary, per-class precision/recall/F1/support, confusion matrix. */
export function formatReport(m: ClassificationMetrics, classNames: string[], title: string): string {
  const f = (x: number) => x.toFixed(4);
  const width = Math.max(12, ...classNames.map((n) => n.length + 2));
  const pad = (s: string, w = width) => s.padStart(w);
  const lines = [
    title,
    `accuracy     ${f(m.accuracy)}`,
    `macro F1     ${f(m.macroF1)}`,
    `micro F1     ${f(m.microF1)}`,
    `weighted F1  ${f(m.weightedF1)}`,
    `invalid outputs ${m.invalid}`,
    '',
    `${pad('class')}${pad('precision', 11)}${pad('recall', 9)}${pad('f1', 9)}${pad('support', 9)}`,
    ...classNames.map((n, i) => {
      const c = m.perClass[i]!;
      return `${pad(n)}${pad(f(c.precision), 11)}${pad(f(c.recall), 9)}${pad(f(c.f1), 9)}${pad(String(c.support), 9)}`;
    }),
    '',
    'confusion matrix (rows: true class, columns: predicted)',
    `${pad('')}${classNames.map((n) => pad(n)).join('')}${m.invalid ? pad('invalid') : ''}`,
    ...m.confusion.map((row, i) => `${pad(classNames[i]!)}${row.map((v) => pad(String(v))).join('')}`),
  ];
  return lines.join('\n');
}
