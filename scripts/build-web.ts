// Builds the console SPA (web/) into web/dist: one hashed script, one hashed stylesheet and an
// index.html that names them. Hashed names let the console surface serve /assets/* with a one-year
// immutable cache while index.html is always revalidated. web/dist is git-ignored; `npm start`,
// `npm test` (vitest globalSetup) and `npm run build` run this first.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = resolve(import.meta.dirname, '..');
const WEB = join(ROOT, 'web');
const OUT = join(WEB, 'dist');

export async function buildWeb(opts: { quiet?: boolean } = {}): Promise<{ script: string; style: string }> {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(join(OUT, 'assets'), { recursive: true });
  const result = await build({
    entryPoints: { app: join(WEB, 'src/main.ts'), style: join(WEB, 'src/styles.css') },
    bundle: true,
    minify: true,
    sourcemap: false,
    format: 'esm',
    target: ['es2022'],
    outdir: join(OUT, 'assets'),
    entryNames: '[name]-[hash]',
    metafile: true,
    logLevel: opts.quiet ? 'error' : 'warning',
    legalComments: 'none',
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => p.split('/').pop()!);
  const script = outputs.find((f) => /^app-[A-Z0-9]+\.js$/.test(f));
  const style = outputs.find((f) => /^style-[A-Z0-9]+\.css$/.test(f));
  if (!script || !style) throw new Error(`web build produced unexpected files: ${outputs.join(', ')}`);
  const html = readFileSync(join(WEB, 'index.html'), 'utf8')
    .replace('%SCRIPT%', `/assets/${script}`)
    .replace('%STYLE%', `/assets/${style}`);
  writeFileSync(join(OUT, 'index.html'), html);
  if (!opts.quiet) process.stdout.write(`web: built web/dist (${script}, ${style})\n`);
  return { script, style };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildWeb();
}
