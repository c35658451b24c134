// `npm run build` → dist/nexus: a single Linux x64 executable (Node's Single Executable Application).
//   1. esbuild bundles src/main.ts into one CommonJS file (the migrations folder inlined), and the
//      write thread (src/core/db/write-worker.ts) and the backup snapshot thread
//      (src/core/backup/snapshot-worker.ts) into others, stored as assets.
//   2. Node writes the SEA blob: the bundle plus assets (better-sqlite3's .node file, console assets,
//      templates) that src/core/native/sea-addons.ts and src/core/assets/assets.ts read at run time.
//   3. postject injects the blob into a copy of the pinned Node 24 binary.
// Nothing is downloaded: the Node binary is the one npm installed (the `node` devDependency).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { build, type Plugin } from 'esbuild';
import { ASSET_DIRS } from '../src/core/assets/assets.ts';
import { NATIVE_ASSETS } from '../src/core/native/sea-addons.ts';

const ROOT = resolve(import.meta.dirname, '..');
// `--out DIR` builds elsewhere (tests build into a temp dir so they never race a running dist/nexus).
const outFlag = process.argv.indexOf('--out');
const OUT = outFlag > 0 && process.argv[outFlag + 1] ? resolve(process.argv[outFlag + 1]!) : join(ROOT, 'dist');
const WORK = join(OUT, 'build');
const require = createRequire(import.meta.url);

function log(msg: string) {
  process.stderr.write(`build: ${msg}\n`);
}

/**
 * `require('bufferutil')` (from ws) becomes a module that loads the addon stored in the executable.
 * If that fails, the require throws and ws falls back to its JavaScript masking, as it would anyway.
 */
const seaBufferutil: Plugin = {
  name: 'sea-bufferutil',
  setup(b) {
    b.onResolve({ filter: /^bufferutil$/ }, () => ({ path: 'bufferutil', namespace: 'sea-addon' }));
    b.onLoad({ filter: /.*/, namespace: 'sea-addon' }, () => ({
      contents: `module.exports = require(${JSON.stringify(join(ROOT, 'src/core/native/sea-addons.ts'))}).loadSeaAddon('bufferutil.node');`,
      loader: 'js',
      resolveDir: ROOT,
    }));
  },
};

/** Replaces the migrations loader (which reads its folder at run time) with the files inline. */
const inlineMigrations: Plugin = {
  name: 'inline-migrations',
  setup(b) {
    b.onLoad({ filter: /core[\\/]db[\\/]migrations[\\/]index\.ts$/ }, (args) => {
      const dir = dirname(args.path);
      const files = readdirSync(dir).filter((f) => /^\d{3}-[a-z0-9-]+\.sql$/.test(f)).sort();
      const list = files.map((f) => ({ version: Number(f.slice(0, 3)), name: f, sql: readFileSync(join(dir, f), 'utf8') }));
      return {
        contents: `export function loadMigrations() { return ${JSON.stringify(list)}; }`,
        loader: 'ts',
        watchFiles: files.map((f) => join(dir, f)),
      };
    });
  },
};

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

async function main() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`dist/nexus is built for linux-x64; this is ${process.platform}-${process.arch}`);
  }
  if (!process.versions.node.startsWith('24.')) {
    throw new Error(`run the build through npm so the pinned Node 24 is used (this is Node ${process.versions.node})`);
  }
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });

  // Optional step owned by the console: build web assets first when the script exists.
  const webBuild = join(ROOT, 'scripts/build-web.ts');
  if (existsSync(webBuild)) {
    log('console assets');
    execFileSync(process.execPath, [webBuild], { stdio: 'inherit', cwd: ROOT });
  }

  log('bundling src/main.ts');
  const bundle = join(WORK, 'nexus.cjs');
  const shim = join(WORK, 'import-meta-shim.js');
  writeFileSync(shim, [
    "export const importMetaUrl = require('node:url').pathToFileURL(__filename).href;",
    'export const importMetaDirname = __dirname;',
    'export const importMetaFilename = __filename;',
  ].join('\n'));
  // Options both bundles share: one CommonJS file for Node 24, migrations inlined.
  const common = {
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    minifySyntax: true,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
  } as const;
  await build({
    ...common,
    entryPoints: [join(ROOT, 'src/main.ts')],
    outfile: bundle,
    plugins: [inlineMigrations, seaBufferutil],
    inject: [shim],
    define: {
      'import.meta.url': 'importMetaUrl',
      'import.meta.dirname': 'importMetaDirname',
      'import.meta.filename': 'importMetaFilename',
    },
    // ws's optional UTF-8 validator is not installed; ws validates in JavaScript without it.
    external: ['utf-8-validate'],
  });

  log('bundling the write thread and the backup snapshot thread');
  const writeWorker = join(WORK, 'write-worker.cjs');
  await build({ ...common, entryPoints: [join(ROOT, 'src/core/db/write-worker.ts')], outfile: writeWorker, plugins: [inlineMigrations] });

  const snapshotWorker = join(WORK, 'snapshot-worker.cjs');
  await build({ ...common, entryPoints: [join(ROOT, 'src/core/backup/snapshot-worker.ts')], outfile: snapshotWorker, plugins: [inlineMigrations] });

  const assets: Record<string, string> = { 'write-worker.cjs': writeWorker, 'snapshot-worker.cjs': snapshotWorker };
  for (const [asset, file] of Object.entries(NATIVE_ASSETS)) {
    const [pkg, ...rest] = file.split('/');
    const path = join(dirname(require.resolve(`${pkg}/package.json`)), ...rest);
    if (!existsSync(path)) throw new Error(`prebuilt native module not found at ${path}`);
    assets[asset] = path;
  }
  for (const dir of ASSET_DIRS) {
    for (const file of walk(join(ROOT, dir))) assets[relative(ROOT, file).split('\\').join('/')] = file;
  }
  log(`${Object.keys(assets).length} assets`);

  const seaConfig = join(WORK, 'sea-config.json');
  const blob = join(WORK, 'sea-prep.blob');
  writeFileSync(seaConfig, JSON.stringify({
    main: bundle,
    output: blob,
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    useCodeCache: true,
    assets,
  }, null, 2));
  execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: 'inherit', cwd: ROOT });

  const exe = join(OUT, 'nexus');
  rmSync(exe, { force: true });
  copyFileSync(process.execPath, exe);
  chmodSync(exe, 0o755);
  log('injecting the blob with postject');
  const postject = join(dirname(require.resolve('postject/package.json')), 'dist', 'cli.js');
  execFileSync(process.execPath, [
    postject, exe, 'NODE_SEA_BLOB', blob,
    '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });

  const size = statSync(exe).size;
  log(`${relative(process.cwd(), exe) || exe} ready (${(size / 1024 / 1024).toFixed(1)} MiB)`);
}

main().catch((err: unknown) => {
  process.stderr.write(`build failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
