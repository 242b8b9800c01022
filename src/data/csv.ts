import { FormatError } from '../errors.js';

export interface DelimitedRow {
  fields: string[];
  /** 1-based line where the row starts. */
  line: number;
}

/**
 * RFC 4180 rows: fields separated by `delimiter`, optionally in double quotes (a quote inside written twice;
 * quoted fields may hold delimiters and line breaks), rows ended by LF or CRLF. Empty lines are skipped.
 * A quote inside an unquoted field is kept as it is.
 */
export function parseDelimited(text: string, delimiter: string, file: string): DelimitedRow[] {
  const s = text.replace(/^\uFEFF/, '');
  const rows: DelimitedRow[] = [];
  let line = 1;
  let i = 0;
  const n = s.length;
  while (i < n) {
    const startLine = line;
    const fields: string[] = [];
    let rowDone = false;
    while (!rowDone) {
      let field = '';
      if (s[i] === '"') {
        const quoteLine = line;
        i++;
        for (;;) {
          if (i >= n) throw new FormatError(`${file}: line ${quoteLine}: quoted field is never closed`);
          const c = s[i]!;
          if (c === '"') {
            if (s[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (c === '\n') line++;
          field += c;
          i++;
        }
        if (i < n && s[i] !== delimiter && s[i] !== '\n' && !(s[i] === '\r' && s[i + 1] === '\n')) {
          throw new FormatError(
            `${file}: line ${line}: unexpected ${JSON.stringify(s[i])} after the closing quote of a field (a quote inside a ` +
              `quoted field is written "")`,
          );
        }
      } else {
        while (i < n && s[i] !== delimiter && s[i] !== '\n' && !(s[i] === '\r' && s[i + 1] === '\n')) field += s[i++];
      }
      fields.push(field);
      if (i >= n) rowDone = true;
      else if (s[i] === delimiter) i++;
      else {
        i += s[i] === '\r' ? 2 : 1;
        line++;
        rowDone = true;
      }
    }
    if (!(fields.length === 1 && fields[0] === '')) rows.push({ fields, line: startLine });
  }
  return rows;
}
