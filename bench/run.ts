// `npm run bench [-- NAME…]`: runs bench/<NAME>.ts for each name given (default: all), one after
// another so they never compete for the two cores, and prints their markdown sections.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './lib.ts';

const all = readdirSync(join(ROOT, 'bench')).filter((f) => f.endsWith('.ts') && !['run.ts', 'lib.ts'].includes(f) && !f.endsWith('.test.ts')).map((f) => f.slice(0, -3));
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length ? wanted : all;
for (const name of names) {
  if (!all.includes(name)) throw new Error(`no bench/${name}.ts (have: ${all.join(', ')})`);
  process.stderr.write(`bench: ${name}\n`);
  execFileSync(process.execPath, [join(ROOT, 'bench', `${name}.ts`), ...process.argv.slice(2).filter((a) => a.startsWith('-'))], { stdio: 'inherit', cwd: ROOT });
}
