// `nexus backup [verify FILE]` and `nexus restore FILE`: the data dir as one file (docs/backup.md).
// They work on the data dir directly, not through the API: a backup is taken while the appliance
// runs (in this process, so the appliance's requests never wait for it); a restore needs it stopped.
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BackupError, createBackup, MIN_PASSPHRASE_LENGTH, openBackup, readHeader, restoreBackup } from '../../core/backup/backup.ts';
import { cacheDirFromEnv, ConfigError, loadConfig } from '../../core/config/config.ts';
import { acquireDataDirLock, DataDirError } from '../../core/db/db.ts';
import { loadMigrations } from '../../core/db/migrations/index.ts';
import { loadNativeBinding } from '../../core/native/sea-addons.ts';
import { CliError } from '../cli-credentials.ts';
import { withCliErrors } from '../output.ts';
import { promptSecret } from '../prompt.ts';
import { VERSION } from '../../core/version.ts';

export const BACKUP_USAGE = `Usage:
  nexus backup [--out FILE | --out DIR [--keep N]] [--passphrase-env VAR | --passphrase-file FILE | --no-keys]
               [--data-dir DIR]
  nexus backup verify FILE [--passphrase-env VAR | --passphrase-file FILE]

  Writes the appliance's data to one file while it keeps running: a consistent copy of the
  database and, sealed with a passphrase, the master key and the TLS certificate and key.
  Restore it with nexus restore.

  --out FILE|DIR         where to write (default ./nexus-backup-<UTC time>.nxbackup; a directory gets
                         a file of that name inside)
  --keep N               with a directory: afterwards keep only its N newest nexus-backup-*.nxbackup
  --passphrase-env VAR   read the passphrase from this environment variable
  --passphrase-file FILE read it from the first line of this file (e.g. a systemd credential)
                         without either, it is asked for (twice) without echo; at least ${MIN_PASSPHRASE_LENGTH} characters
  --no-keys              leave the keys out: no passphrase, and restoring it needs this appliance's
                         master.key, kept elsewhere
  --data-dir DIR         the appliance's data dir (env NEXUS_DATA_DIR, default ./.data)
  --config FILE          read the data dir from this config file (env NEXUS_CONFIG)

  verify FILE            decrypts and checks a backup completely (checksums, database integrity,
                         schema) without restoring it
`;

export const RESTORE_USAGE = `Usage: nexus restore FILE [--data-dir DIR] [--force] [--passphrase-env VAR | --passphrase-file FILE]
                    [--master-key FILE]

  Puts a backup made by nexus backup into the data dir. The appliance must be stopped. Everything
  is checked before the data dir changes; what the backup replaces is moved to
  DIR/before-restore-<time>/, never deleted.

  --force                replace an appliance that already has users (a fresh one, straight after
                         first boot, is replaced without it)
  --master-key FILE      for a backup made with --no-keys: the master key of the appliance it came
                         from (default: the master.key already in the data dir)
  --data-dir DIR         the data dir to restore into (env NEXUS_DATA_DIR, default ./.data)
  --config FILE          read the data dir from this config file (env NEXUS_CONFIG)
`;

const PASSPHRASE_OPTIONS = {
  'passphrase-env': { type: 'string' },
  'passphrase-file': { type: 'string' },
  'data-dir': { type: 'string' },
  config: { type: 'string' },
} as const;

function dataDirOf(values: { 'data-dir'?: string | undefined; config?: string | undefined }): string {
  try {
    return loadConfig({ flags: { 'data-dir': values['data-dir'], config: values.config } }).dataDir;
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, 2);
    throw err;
  }
}

/** The passphrase from --passphrase-env, --passphrase-file, or the terminal (twice when `confirm`). */
async function passphraseFrom(values: { 'passphrase-env'?: string | undefined; 'passphrase-file'?: string | undefined }, confirm: boolean): Promise<string> {
  const env = values['passphrase-env'];
  const file = values['passphrase-file'];
  if (env !== undefined && file !== undefined) throw new CliError('--passphrase-env and --passphrase-file: give one', 2);
  if (env !== undefined) {
    const v = process.env[env];
    if (v === undefined || v === '') throw new CliError(`environment variable ${env} is not set`, 2);
    return v;
  }
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 2);
    }
    const line = text.split(/\r?\n/)[0] ?? '';
    if (!line) throw new CliError(`${file} is empty`, 2);
    return line;
  }
  const first = await promptSecret('Backup passphrase: ');
  if (confirm && process.stdin.isTTY) {
    const again = await promptSecret('Again: ');
    if (again !== first) throw new CliError('the passphrases differ', 2);
  }
  return first;
}

const isDirectory = (p: string) => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

const mb = (n: number) => `${(n / 1e6).toFixed(n < 1e7 ? 2 : 0)} MB`;

function cliError(err: unknown): never {
  if (err instanceof BackupError) throw new CliError(err.message, 1);
  throw err;
}

export async function backupCommand(argv: string[]): Promise<number> {
  return withCliErrors('backup', async () => {
    if (argv[0] === 'verify') return verify(argv.slice(1));
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...PASSPHRASE_OPTIONS, out: { type: 'string' }, keep: { type: 'string' }, 'no-keys': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      process.stdout.write(BACKUP_USAGE);
      return 0;
    }
    if (positionals.length) throw new CliError(`unexpected "${positionals[0]}" (nexus backup --help)`, 2);
    if (values['no-keys'] && (values['passphrase-env'] !== undefined || values['passphrase-file'] !== undefined)) {
      throw new CliError('--no-keys takes no passphrase: a backup without keys is not sealed', 2);
    }
    const dataDir = dataDirOf(values);
    const name = `nexus-backup-${new Date().toISOString().replace(/[-:]|\.\d+/g, '')}.nxbackup`;
    const outDir = values.out !== undefined && isDirectory(values.out) ? resolve(values.out) : null;
    const out = outDir ? join(outDir, name) : resolve(values.out ?? name);
    let keep: number | null = null;
    if (values.keep !== undefined) {
      if (!outDir) throw new CliError('--keep needs --out DIR (a directory of backups)', 2);
      keep = Number(values.keep);
      if (!Number.isInteger(keep) || keep < 1) throw new CliError(`--keep "${values.keep}": expected a whole number of at least 1`, 2);
    }
    const passphrase = values['no-keys'] ? null : await passphraseFrom(values, true);
    const result = await createBackup({ dataDir, out, passphrase, version: VERSION, nativeBinding: loadNativeBinding(cacheDirFromEnv()) }).catch(cliError);
    const h = result.header;
    process.stdout.write(`Backup written to ${out} (${mb(result.bytes)}; database ${mb(result.dbBytes)}, schema ${h.schema.at(-1) ?? 0}).\n`);
    if (h.seal) {
      process.stdout.write(`It holds ${h.files.join(', ')}, sealed with your passphrase: without the passphrase it cannot be restored.\n`);
    } else {
      process.stdout.write(`It holds no keys: restoring it needs this appliance's master.key (key check ${h.key_check}), kept somewhere else.\n`);
    }
    if (outDir && keep !== null) {
      // Names sort by time; only this command's own files are considered.
      const old = readdirSync(outDir).filter((f) => /^nexus-backup-\d{8}T\d{6}Z\.nxbackup$/.test(f)).sort().slice(0, -keep);
      for (const f of old) rmSync(join(outDir, f), { force: true });
      if (old.length) process.stdout.write(`Removed ${old.length} older backup(s) from ${outDir} (keeping ${keep}).\n`);
    }
    return 0;
  });
}

async function verify(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { 'passphrase-env': PASSPHRASE_OPTIONS['passphrase-env'], 'passphrase-file': PASSPHRASE_OPTIONS['passphrase-file'] },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) throw new CliError('nexus backup verify FILE: one file', 2);
  const file = resolve(positionals[0]!);
  const { header } = (() => {
    try {
      return readHeader(file);
    } catch (err) {
      return cliError(err);
    }
  })();
  const passphrase = header.seal ? await passphraseFrom(values, false) : null;
  const dbOut = join(tmpdir(), `nexus-verify-${process.pid}-${Date.now()}.db`);
  try {
    const opened = await openBackup({ file, passphrase, dbOut, migrations: loadMigrations(), nativeBinding: loadNativeBinding(cacheDirFromEnv()) }).catch(cliError);
    process.stdout.write(`${file}: a good backup made ${header.created_at} by nexus ${header.nexus_version}: database ${mb(opened.dbBytes)} (schema ${header.schema.at(-1) ?? 0}, ${opened.users} user(s))${header.files.length ? `, ${header.files.join(', ')}` : ', no keys'}.\n`);
    return 0;
  } finally {
    rmSync(dbOut, { force: true });
  }
}

export async function restoreCommand(argv: string[]): Promise<number> {
  return withCliErrors('restore', async () => {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...PASSPHRASE_OPTIONS, force: { type: 'boolean' }, 'master-key': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      process.stdout.write(RESTORE_USAGE);
      return 0;
    }
    if (positionals.length !== 1) throw new CliError('nexus restore FILE: name one backup file (nexus restore --help)', 2);
    const file = resolve(positionals[0]!);
    const dataDir = dataDirOf(values);
    let header;
    try {
      header = readHeader(file).header;
    } catch (err) {
      cliError(err);
    }
    if (header.seal && values['master-key'] !== undefined) throw new CliError('--master-key is for backups made with --no-keys; this one carries its key', 2);
    const nativeBinding = loadNativeBinding(cacheDirFromEnv());
    // Said before the passphrase is asked for, not after it was typed; restoreBackup holds the lock
    // itself for the restore.
    if (isDirectory(dataDir)) {
      try {
        acquireDataDirLock(dataDir, nativeBinding)();
      } catch (err) {
        if (err instanceof DataDirError) throw new CliError(`${err.message.replace(/; stop it first$/, '')}: stop it before restoring`);
        throw err;
      }
    }
    const passphrase = header.seal ? await passphraseFrom(values, false) : null;
    const result = await restoreBackup({ dataDir, file, passphrase, force: values.force ?? false, masterKeyFile: values['master-key'], migrations: loadMigrations(), nativeBinding }).catch(cliError);
    process.stdout.write(`Restored the backup made ${header.created_at} by nexus ${header.nexus_version} into ${dataDir} (${result.users} user(s)).\n`);
    if (result.movedTo) process.stdout.write(`What it replaced is in ${result.movedTo}/.\n`);
    if (header.files.includes('tls/cert.pem')) process.stdout.write(`The TLS certificate came back too: reload nginx after starting (systemctl reload nginx).\n`);
    process.stdout.write(`Start the appliance: nexus serve --data-dir ${dataDir} (or systemctl start nexus).\n`);
    return 0;
  });
}
