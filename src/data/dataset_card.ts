/**
 * The YAML header of a Hub dataset card (the front matter of its README.md), read with the `yaml` package: the
 * whole YAML 1.2 spec (flow collections, anchors and aliases, block scalars, …) as huggingface_hub may write it.
 */
import { type Alias, LineCounter, parseDocument, visit } from 'yaml';
import { FormatError } from '../errors.js';

/** What a card's YAML holds, as JSON-like values. */
export type YamlValue = string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue };

/** The YAML between the leading `---` line and the next `---` (or `...`) line, and the file's line it starts on. */
export function frontMatter(markdown: string): { yaml: string; firstLine: number } | undefined {
  const lines = markdown.replace(/^\uFEFF/, '').split(/\r?\n/);
  if (lines[0]?.trim() !== '---') return undefined;
  for (let i = 1; i < lines.length; i++) {
    const t = lines[i]!.trimEnd();
    if (t === '---' || t === '...') return { yaml: lines.slice(1, i).join('\n'), firstLine: 2 };
  }
  return undefined;
}

/**
 * Parses one YAML document. An error is a one-line FormatError naming `where` and the line, counted from
 * `firstLine` (the file's line the YAML starts on).
 */
export function parseYaml(text: string, where = 'YAML', firstLine = 1): YamlValue {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    // `<<` merges and a repeated key overrides, as in PyYAML, which the Hub reads cards with; explicit !!timestamp,
    // !!set or !!binary values stay strings and maps, so that values stay JSON-like
    merge: true,
    uniqueKeys: false,
    resolveKnownTags: false,
    logLevel: 'error',
  });
  const fail = (offset: number, message: string): never => {
    const { line, col } = lineCounter.linePos(offset);
    throw new FormatError(`${where}: line ${line + firstLine - 1}, column ${col}: ${message}`);
  };
  const error = doc.errors[0];
  if (error) fail(error.pos[0], error.message);
  // the package finds these only while building the values, where it no longer knows their place
  let unresolved: Alias | undefined;
  visit(doc, {
    Alias(_, alias) {
      if (alias.resolve(doc)) return;
      unresolved = alias;
      return visit.BREAK;
    },
  });
  if (unresolved) fail(unresolved.range?.[0] ?? 0, `no anchor &${unresolved.source} before the alias *${unresolved.source}`);
  try {
    return doc.toJS() as YamlValue;
  } catch (e) {
    // aliases expanding past the package's limit (a "billion laughs" document)
    if (e instanceof ReferenceError) throw new FormatError(`${where}: ${e.message}`);
    throw e;
  }
}

/** The card's YAML header, from README.md's text; `where` names the file in errors. */
export function readCardHeader(markdown: string, where: string): YamlValue {
  const header = frontMatter(markdown);
  if (!header) throw new FormatError(`${where}: no YAML header (--- … ---) describing the data files`);
  return parseYaml(header.yaml, where, header.firstLine);
}
