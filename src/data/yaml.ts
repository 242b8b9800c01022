/**
 * A reader for the YAML of Hub dataset cards (the front matter of README.md): block mappings and sequences,
 * plain / quoted / block scalars and one-line flow collections, which is what huggingface_hub writes. Anchors,
 * tags and multi-document streams are not supported.
 */

export class YamlError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
  }
}

export type YamlValue = string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue };

/** The YAML between the leading `---` line and the next `---` (or `...`) line, with its first line number. */
export function frontMatter(markdown: string): { yaml: string; firstLine: number } | undefined {
  const lines = markdown.replace(/^\uFEFF/, '').split(/\r?\n/);
  if (lines[0]?.trim() !== '---') return undefined;
  for (let i = 1; i < lines.length; i++) {
    const t = lines[i]!.trimEnd();
    if (t === '---' || t === '...') return { yaml: lines.slice(1, i).join('\n'), firstLine: 2 };
  }
  return undefined;
}

interface Line {
  indent: number;
  text: string; // content after the indentation, comments not removed
  no: number;
}

const KEY_RE = /^(?:'((?:[^']|'')*)'|"((?:[^"\\]|\\.)*)"|([^\s'"#\-?:,[\]{}&*!|>%@`][^#]*?|-[^\s#][^#]*?))[ \t]*:(?=[ \t]|$)/;

function stripComment(s: string): string {
  let q: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) {
      if (c === '\\' && q === '"') i++;
      else if (c === "'" && q === "'" && s[i + 1] === "'") i++;
      else if (c === q) q = null;
    } else if (c === "'" || c === '"') {
      if (i === 0 || /[\s[{,:]/.test(s[i - 1]!)) q = c;
    } else if (c === '#' && (i === 0 || /\s/.test(s[i - 1]!))) {
      return s.slice(0, i).trimEnd();
    }
  }
  return s.trimEnd();
}

function plainScalar(s: string): YamlValue {
  if (s === '' || s === '~' || /^(null|Null|NULL)$/.test(s)) return null;
  if (/^(true|True|TRUE)$/.test(s)) return true;
  if (/^(false|False|FALSE)$/.test(s)) return false;
  if (/^[-+]?\d+$/.test(s)) return Number(s);
  if (/^0x[0-9a-fA-F]+$/.test(s)) return parseInt(s.slice(2), 16);
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return Number(s);
  if (/^[-+]?\.(inf|Inf|INF)$/.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  if (/^\.(nan|NaN|NAN)$/.test(s)) return NaN;
  return s;
}

function unescapeDouble(body: string, line: number): string {
  return body.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)/g, (_, e: string) => {
    switch (e[0]) {
      case 'x':
      case 'u':
      case 'U':
        return String.fromCodePoint(parseInt(e.slice(1), 16));
      case 'n':
        return '\n';
      case 't':
        return '\t';
      case 'r':
        return '\r';
      case '0':
        return '\0';
      case '"':
      case '\\':
      case '/':
      case ' ':
        return e;
      case 'N':
        return '\u0085';
      case '_':
        return '\u00a0';
      default:
        throw new YamlError(`unknown escape \\${e}`, line);
    }
  });
}

/** Joins the lines of a multi-line flow scalar as YAML folds them: one newline becomes a space. */
function fold(parts: string[]): string {
  let out = '';
  let blank = 0;
  parts.forEach((p, i) => {
    const t = i === 0 ? p.trimEnd() : i === parts.length - 1 ? p.trimStart() : p.trim();
    if (i > 0 && t === '') {
      blank++;
      return;
    }
    if (i > 0) out += blank > 0 ? '\n'.repeat(blank) : ' ';
    blank = 0;
    out += t;
  });
  return out;
}

class FlowParser {
  i = 0;
  constructor(
    readonly s: string,
    readonly line: number,
  ) {}
  ws(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i]!)) this.i++;
  }
  value(): YamlValue {
    this.ws();
    const c = this.s[this.i];
    if (c === '[') {
      this.i++;
      const out: YamlValue[] = [];
      for (;;) {
        this.ws();
        if (this.s[this.i] === ']') {
          this.i++;
          return out;
        }
        out.push(this.value());
        this.ws();
        if (this.s[this.i] === ',') this.i++;
        else if (this.s[this.i] !== ']') throw new YamlError('expected , or ] in a flow sequence', this.line);
      }
    }
    if (c === '{') {
      this.i++;
      const out: Record<string, YamlValue> = {};
      for (;;) {
        this.ws();
        if (this.s[this.i] === '}') {
          this.i++;
          return out;
        }
        const k = this.value();
        this.ws();
        let v: YamlValue = null;
        if (this.s[this.i] === ':') {
          this.i++;
          v = this.value();
        }
        out[String(k)] = v;
        this.ws();
        if (this.s[this.i] === ',') this.i++;
        else if (this.s[this.i] !== '}') throw new YamlError('expected , or } in a flow mapping', this.line);
      }
    }
    if (c === "'") {
      const m = /^'((?:[^']|'')*)'/.exec(this.s.slice(this.i));
      if (!m) throw new YamlError('unterminated quoted string', this.line);
      this.i += m[0].length;
      return m[1]!.replace(/''/g, "'");
    }
    if (c === '"') {
      const m = /^"((?:[^"\\]|\\.)*)"/.exec(this.s.slice(this.i));
      if (!m) throw new YamlError('unterminated quoted string', this.line);
      this.i += m[0].length;
      return unescapeDouble(m[1]!, this.line);
    }
    const start = this.i;
    while (
      this.i < this.s.length &&
      !/[,\]}]/.test(this.s[this.i]!) &&
      !(this.s[this.i] === ':' && /[\s,\]}]/.test(this.s[this.i + 1] ?? ' '))
    ) {
      this.i++;
    }
    return plainScalar(this.s.slice(start, this.i).trim());
  }
}

class Parser {
  lines: Line[];
  pos = 0;
  constructor(
    readonly raw: string[],
    readonly firstLine: number,
  ) {
    this.lines = raw.map((r, i) => {
      const m = /^( *)(.*)$/.exec(r)!;
      if (/^\t/.test(m[2]!) && m[2]!.trim() !== '') throw new YamlError('tabs are not allowed for indentation', i + firstLine);
      return { indent: m[1]!.length, text: m[2]!, no: i + firstLine };
    });
  }

  private significant(l: Line): boolean {
    const t = l.text.trim();
    return t !== '' && !t.startsWith('#');
  }

  /** Index of the next line with content, from `pos`. */
  peek(): Line | undefined {
    while (this.pos < this.lines.length && !this.significant(this.lines[this.pos]!)) this.pos++;
    return this.lines[this.pos];
  }

  parseDocument(): YamlValue {
    const l = this.peek();
    if (!l) return null;
    const v = this.parseNode(l.indent);
    const rest = this.peek();
    if (rest) throw new YamlError('unexpected content (check the indentation)', rest.no);
    return v;
  }

  /** A block node whose first line is at exactly `indent`. */
  parseNode(indent: number): YamlValue {
    const l = this.peek()!;
    if (isSeqItem(l.text)) return this.parseSequence(indent);
    if (KEY_RE.test(l.text)) return this.parseMapping(indent);
    this.pos++;
    return this.inlineValue(stripComment(l.text), indent - 1, l.no);
  }

  parseSequence(indent: number): YamlValue[] {
    const out: YamlValue[] = [];
    for (;;) {
      const l = this.peek();
      if (!l || l.indent !== indent || !isSeqItem(l.text)) break;
      const rest = l.text.slice(1);
      const content = rest.trimStart();
      if (stripComment(content) === '') {
        this.pos++;
        const next = this.peek();
        out.push(next && next.indent > indent ? this.parseNode(next.indent) : null);
        continue;
      }
      // "- key: value" or "- - x": the item is a block node starting at the column of its content.
      const col = indent + 1 + (rest.length - content.length);
      if (isSeqItem(content) || KEY_RE.test(content)) {
        this.lines[this.pos] = { indent: col, text: content, no: l.no };
        out.push(this.parseNode(col));
        continue;
      }
      this.pos++;
      out.push(this.inlineValue(stripComment(content), indent, l.no));
    }
    return out;
  }

  parseMapping(indent: number): Record<string, YamlValue> {
    const out: Record<string, YamlValue> = {};
    for (;;) {
      const l = this.peek();
      if (!l || l.indent !== indent || isSeqItem(l.text)) break;
      const m = KEY_RE.exec(l.text);
      if (!m) throw new YamlError(`expected "key: value", found ${JSON.stringify(l.text.trim())}`, l.no);
      const key = m[1] !== undefined ? m[1].replace(/''/g, "'") : m[2] !== undefined ? unescapeDouble(m[2], l.no) : m[3]!.trim();
      const rest = stripComment(l.text.slice(m[0].length)).trim();
      this.pos++;
      if (rest === '') {
        const next = this.peek();
        if (next && next.indent > indent) out[key] = this.parseNode(next.indent);
        else if (next && next.indent === indent && isSeqItem(next.text)) out[key] = this.parseSequence(indent);
        else out[key] = null;
      } else if (/^[|>]/.test(rest)) {
        out[key] = this.blockScalar(rest, indent, l.no);
      } else {
        out[key] = this.inlineValue(rest, indent, l.no);
      }
    }
    return out;
  }

  /** A scalar or flow collection starting on the current line, continued on lines indented deeper than `parent`. */
  inlineValue(first: string, parent: number, no: number): YamlValue {
    const more = (): string[] => {
      const parts: string[] = [];
      while (this.pos < this.lines.length) {
        const l = this.lines[this.pos]!;
        if (l.text.trim() !== '' && l.indent <= parent) break;
        parts.push(l.text.trim() === '' ? '' : ' '.repeat(Math.max(0, l.indent - parent - 1)) + l.text);
        this.pos++;
      }
      while (parts.length > 0 && parts[parts.length - 1] === '') {
        parts.pop();
        this.pos--;
      }
      return parts;
    };
    if (first.startsWith("'") || first.startsWith('"')) {
      const q = first[0]!;
      const closed = q === "'" ? /^'((?:[^']|'')*)'\s*$/ : /^"((?:[^"\\]|\\.)*)"\s*$/;
      let text = first;
      const parts = [first];
      while (!closed.test(text)) {
        const l = this.lines[this.pos];
        if (!l) throw new YamlError('unterminated quoted string', no);
        parts.push(l.text);
        text = parts.join('\n');
        this.pos++;
      }
      const body = closed.exec(stripComment(text))?.[1] ?? closed.exec(text)![1]!;
      const folded = fold(body.split('\n'));
      return q === "'" ? folded.replace(/''/g, "'") : unescapeDouble(folded, no);
    }
    if (first.startsWith('[') || first.startsWith('{')) {
      let text = first;
      for (;;) {
        try {
          const p = new FlowParser(text, no);
          const v = p.value();
          p.ws();
          if (p.i !== text.length) throw new YamlError('unexpected text after a flow collection', no);
          return v;
        } catch (e) {
          const l = this.lines[this.pos];
          if (!l || l.indent <= parent || !(e instanceof YamlError)) throw e;
          text += ' ' + stripComment(l.text);
          this.pos++;
        }
      }
    }
    const parts = [first, ...more().map((p) => stripComment(p))];
    return parts.length === 1 ? plainScalar(first) : fold(parts);
  }

  blockScalar(header: string, parent: number, no: number): string {
    const m = /^([|>])([1-9])?([-+])?([1-9])?$/.exec(header);
    if (!m) throw new YamlError(`bad block scalar header ${JSON.stringify(header)}`, no);
    const literal = m[1] === '|';
    const chomp = m[3] ?? '';
    const explicit = Number(m[2] ?? m[4] ?? 0);
    const body: string[] = [];
    let indent = explicit ? parent + explicit : -1;
    while (this.pos < this.lines.length) {
      const l = this.lines[this.pos]!;
      const raw = this.raw[this.pos]!;
      if (l.text.trim() === '') {
        body.push('');
        this.pos++;
        continue;
      }
      if (indent < 0) indent = l.indent;
      if (l.indent < indent || l.indent <= parent) break;
      body.push(raw.slice(indent));
      this.pos++;
    }
    let trailing = 0;
    while (body.length > 0 && body[body.length - 1] === '') {
      body.pop();
      trailing++;
    }
    this.pos -= trailing;
    let text: string;
    if (literal) {
      text = body.join('\n');
    } else {
      text = '';
      let blanks = 0;
      let prev: string | undefined;
      for (const b of body) {
        if (b === '') {
          blanks++;
          continue;
        }
        if (prev === undefined) text += '\n'.repeat(blanks) + b;
        else if (/^\s/.test(b) || /^\s/.test(prev)) text += '\n'.repeat(blanks + 1) + b;
        else text += (blanks > 0 ? '\n'.repeat(blanks) : ' ') + b;
        blanks = 0;
        prev = b;
      }
    }
    if (body.length === 0) return '';
    if (chomp === '-') return text;
    if (chomp === '+') return text + '\n'.repeat(trailing + 1);
    return text + '\n';
  }
}

function isSeqItem(text: string): boolean {
  return text === '-' || text.startsWith('- ') || text.startsWith('-\t');
}

/** Parses a YAML document of the subset described above; `firstLine` numbers lines in errors. */
export function parseYaml(text: string, firstLine = 1): YamlValue {
  return new Parser(text.split(/\r?\n/), firstLine).parseDocument();
}
