/** Rewrites the README's options table from the commands' params schemas (src/params/commands.ts). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { withOptionsTable } from '../src/cli/options_table.js';

const readme = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../README.md');
fs.writeFileSync(readme, withOptionsTable(fs.readFileSync(readme, 'utf-8')));
console.log(`updated ${readme}`);
