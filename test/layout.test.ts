/**
 * The source layout a newcomer reads: no import cycles among the modules of src/ nor among its folders (type-only
 * imports count too: they tie the modules' meanings together the same way), src's folders in one order that no
 * import runs up, no file over 500 lines, and src/ formatted by prettier.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './helpers/fixtures.js';

const SRC = path.join(REPO_ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports and re-exports of a file, resolved to files of src/. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf-8');
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\b[^'";]*?from\s+'(\.[^']+)'/gm)) {
    out.push(path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts')));
  }
  return out;
}

/** Every cycle reachable in the graph, each as the list of files on it (found by depth-first search). */
function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'active' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'active');
    stack.push(f);
    for (const g of graph.get(f) ?? []) {
      if (state.get(g) === 'active') cycles.push([...stack.slice(stack.indexOf(g)), g]);
      else if (!state.has(g)) visit(g);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return cycles;
}

/**
 * The graph of folders that a graph of files (paths relative to src/) makes: an edge X → Y between two sibling
 * folders (same parent) when a file under X imports a file under Y. A file directly in the parent belongs to neither.
 */
function folderGraph(fileGraph: Map<string, string[]>): Map<string, string[]> {
  const edges = new Map<string, Set<string>>();
  for (const [from, deps] of fileGraph) {
    for (const to of deps) {
      const a = path.posix.dirname(from).split('/');
      const b = path.posix.dirname(to).split('/');
      let common = 0;
      while (common < a.length && common < b.length && a[common] === b[common]) common++;
      if (a[0] === '.' || b[0] === '.' || common === a.length || common === b.length) continue;
      const x = a.slice(0, common + 1).join('/');
      const y = b.slice(0, common + 1).join('/');
      edges.set(x, (edges.get(x) ?? new Set()).add(y));
    }
  }
  return new Map([...edges].map(([x, ys]) => [x, [...ys].sort()]));
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));
const rel = (f: string) => path.relative(SRC, f).split(path.sep).join('/');
const relGraph = new Map([...graph].map(([f, deps]) => [rel(f), deps.map(rel)]));

/**
 * src's folders from the bottom up; a folder imports only folders of lower ranks (those of one rank are
 * independent). `.` is src's own low modules (tf.ts, errors.ts, random.ts, labels.ts, checkpoint_meta.ts,
 * run_log_format.ts, …), which import no folder; `index.ts`, the library's entry, is the top.
 */
const FOLDER_RANKS: string[][] = [
  ['.'],
  ['protobuf', 'hub', 'params'],
  ['engine'],
  ['model', 'tokenizer', 'data'],
  ['eval'],
  ['train', 'report', 'export'],
  ['launcher'],
  ['cli'],
  ['index.ts'],
];

/** The top-level unit of src/ a file belongs to: its folder, `.` for src's own modules, `index.ts` for the entry. */
function topLevelUnit(file: string): string {
  const [first, ...rest] = file.split('/');
  return rest.length ? first! : file === 'index.ts' ? 'index.ts' : '.';
}

/** Folder cycles known to remain (none). */
const KNOWN_FOLDER_CYCLES: string[] = [];

test('the cycle finder finds a cycle it is given', () => {
  const g = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
    ['d', ['a']],
  ]);
  assert.deepEqual(findCycles(g), [['a', 'b', 'c', 'a']]);
});

test('the folder graph finds a folder cycle that no file cycle shows', () => {
  const g = new Map([
    ['a/x.ts', ['b/y.ts', 'a/inner/z.ts']],
    ['b/y.ts', ['c/z.ts']],
    ['c/w.ts', ['a/v.ts', 'tf.ts']],
    ['a/inner/z.ts', ['a/v.ts']],
    ['d/top.ts', ['a/x.ts']],
  ]);
  assert.deepEqual(findCycles(g), []);
  assert.deepEqual(findCycles(folderGraph(g)), [['a', 'b', 'c', 'a']]);
});

test('src/ has no import cycle', () => {
  for (const [f, deps] of graph) for (const d of deps) assert.ok(graph.has(d), `${rel(f)} imports ${rel(d)}, which does not exist`);
  const cycles = findCycles(graph).map((c) => c.map(rel).join(' → '));
  assert.deepEqual(cycles, []);
});

/** A cycle written from its smallest node, so that the same cycle always reads the same. */
function canonical(cycle: string[]): string {
  const ring = cycle.slice(0, -1);
  const start = ring.indexOf([...ring].sort()[0]!);
  const rotated = [...ring.slice(start), ...ring.slice(0, start)];
  return [...rotated, rotated[0]].join(' → ');
}

test('src/ has no folder-level import cycle (between sibling folders, directly or through others)', () => {
  const cycles = findCycles(folderGraph(relGraph)).map(canonical);
  assert.deepEqual(
    cycles.filter((c) => !KNOWN_FOLDER_CYCLES.includes(c)),
    [],
  );
  for (const known of KNOWN_FOLDER_CYCLES) assert.ok(cycles.includes(known), `${known} is gone: remove it from KNOWN_FOLDER_CYCLES`);
});

test("no import runs up the order of src's folders", () => {
  const rank = new Map(FOLDER_RANKS.flatMap((units, r) => units.map((u) => [u, r] as const)));
  const units = new Set([...relGraph.keys()].map(topLevelUnit));
  assert.deepEqual(
    [...units].filter((u) => !rank.has(u)),
    [],
    'every folder of src/ has a place in FOLDER_RANKS',
  );
  const upward = [...relGraph].flatMap(([f, deps]) =>
    deps
      .filter((d) => topLevelUnit(d) !== topLevelUnit(f) && rank.get(topLevelUnit(d))! >= rank.get(topLevelUnit(f))!)
      .map((d) => `${f} → ${d} (${topLevelUnit(f)} may not import ${topLevelUnit(d)})`),
  );
  assert.deepEqual(upward, []);
});

test('src/model/ and src/train/ reach the engine through engine/ops.ts only', () => {
  const ops = path.join(SRC, 'engine', 'ops.ts');
  const reaching = [...graph]
    .filter(([f]) => /^(model|train)\//.test(rel(f)))
    .flatMap(([f, deps]) => deps.filter((d) => rel(d).startsWith('engine/') && d !== ops).map((d) => `${rel(f)} → ${rel(d)}`));
  assert.deepEqual(reaching, []);
  assert.ok([...graph.get(path.join(SRC, 'model', 'layers.ts'))!].includes(ops), 'the check sees the model import ops.ts');
});

test('no file in src/ is over 500 lines', () => {
  const long = files.map((f) => [rel(f), fs.readFileSync(f, 'utf-8').split('\n').length - 1] as const).filter(([, n]) => n > 500);
  assert.deepEqual(long, []);
});

test('src/ is formatted as .prettierrc.json says (npm run format rewrites it)', async () => {
  const prettier = await import('prettier');
  const unformatted: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const options = await prettier.resolveConfig(file);
    if (!(await prettier.check(fs.readFileSync(file, 'utf-8'), { ...options, filepath: file }))) {
      unformatted.push(path.relative(REPO_ROOT, file));
    }
  }
  assert.deepEqual(unformatted, []);
});
