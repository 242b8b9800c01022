/**
 * The report page's own script: web/report/report.js, plain browser JavaScript that `renderReportHtml` inlines as
 * is (`npx tsc -p web/report` type-checks it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { T5clsError } from '../errors.js';

/** In the package's web/ folder, two levels up from src/report/ (under tsx) and dist/report/ (built) alike. */
export const REPORT_SCRIPT_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web/report/report.js');

let script: string | undefined;

/** The text of web/report/report.js, read once. */
export function reportScript(): string {
  try {
    script ??= fs.readFileSync(REPORT_SCRIPT_PATH, 'utf-8');
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new T5clsError(`${REPORT_SCRIPT_PATH}: the report page's script cannot be read (${reason}); reinstall t5cls`, 1, { cause: e });
  }
  return script;
}
