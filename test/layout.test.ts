/**
 * The source layout a newcomer reads: no import cycles among the modules of src/ (type-only imports count too: they
 * tie the modules' meanings together the same way), no file over 500 lines, and src/ formatted by prettier.
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

const files = sourceFiles(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));
const rel = (f: string) => path.relative(SRC, f);

test('the cycle finder finds a cycle it is given', () => {
  const g = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
    ['d', ['a']],
  ]);
  assert.deepEqual(findCycles(g), [['a', 'b', 'c', 'a']]);
});

test('src/ has no import cycle', () => {
  for (const [f, deps] of graph) for (const d of deps) assert.ok(graph.has(d), `${rel(f)} imports ${rel(d)}, which does not exist`);
  const cycles = findCycles(graph).map((c) => c.map(rel).join(' → '));
  assert.deepEqual(cycles, []);
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
