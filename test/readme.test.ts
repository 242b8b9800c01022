import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { optionsTable } from '../src/cli/options_table.js';
import { REPO_ROOT } from './helpers/fixtures.js';

test('the README options table matches the params schema (npm run docs regenerates it)', () => {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf-8');
  assert.ok(readme.includes(optionsTable()), 'README options table is out of date: run npm run docs');
});

test('the README names the install and test commands CI uses', () => {
  const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf-8');
  const ci = fs.readFileSync(path.join(REPO_ROOT, '.ci/run'), 'utf-8');
  assert.match(readme, /npm install/);
  assert.match(readme, /npm test/);
  assert.match(ci, /npm ci/);
  assert.match(ci, /npm test/);
});
