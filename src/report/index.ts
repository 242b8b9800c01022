/** `t5cls report`: one self-contained HTML page with a training run's curves and, once tested, its test results. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../fsutil.js';
import { UsageError } from '../errors.js';
import { collectRunData, resolveRun, type RunLocations } from './run_data.js';
import { renderReportHtml } from './html.js';

export { collectRunData, listRuns, resolveRun } from './run_data.js';
export type { ReportCheckpoint, ReportTest, ResolvedRun, RunLocations, RunReportData, ScalarSeries } from './run_data.js';
export { embedJson, escapeScript, renderReportHtml, tfjsVisBundlePath } from './html.js';
export { parseEventFile, readEventFile, type EventFileContents, type ScalarEvent } from './events.js';

export interface RunReportOptions extends RunLocations {
  /** The HTML file to write; default `reports/<run>.html` (relative to the working folder). */
  output?: string;
}

/** Writes the report of one run (atomically) and returns the HTML file's absolute path. */
export function writeRunReport(options: RunReportOptions = {}): string {
  const resolved = resolveRun(options);
  const data = collectRunData(resolved);
  const file = path.resolve(options.output ?? path.join('reports', `${resolved.name}.html`));
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
  } catch (e) {
    throw new UsageError(`--output ${file}: cannot create its folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (fs.existsSync(file) && fs.statSync(file).isDirectory())
    throw new UsageError(`--output ${file}: is a folder; give an .html file name`);
  writeFileAtomic(file, renderReportHtml(data));
  return file;
}
