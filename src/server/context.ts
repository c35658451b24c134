// Builds the process-wide AppContext: data dir, lock, database, master key, shared services.
import { join } from 'node:path';
import type { Config } from '../core/config/config.ts';
import type { AppContext, RuntimeState } from '../core/context.ts';
import { createAudit } from '../core/audit/audit.ts';
import { loadOrCreateMasterKey } from '../core/crypto/master-key.ts';
import { createSecretBox } from '../core/crypto/secret-box.ts';
import { acquireDataDirLock, closeDatabase, openDatabase, prepareDataDir } from '../core/db/db.ts';
import { isSingleExecutable, loadNativeBinding, seaAddonFile } from '../core/native/sea-addons.ts';
import { createWriter } from '../core/db/write-thread.ts';
import { Events } from '../core/events/events.ts';
import { createIdentity } from '../core/identity/identity.ts';
import { createSetupTokens } from '../core/identity/setup.ts';
import type { Logger } from '../core/log/log.ts';
import { createMetrics } from '../core/metrics/metrics.ts';
import { createSettingsStore, SETTING } from '../core/settings/settings-store.ts';
import { cacheDirFromEnv } from '../core/config/config.ts';
import { NodeRelayHolder } from '../core/relay/node-relay.ts';
import { createTracing } from '../core/telemetry/tracing.ts';
import { VERSION } from '../core/version.ts';

export interface OwnedContext {
  ctx: AppContext;
  /** Flushes buffers, checkpoints the WAL, closes the database and releases the data-dir lock. */
  close(): void;
}

export function createContext(config: Config, log: Logger): OwnedContext {
  prepareDataDir(config.dataDir);
  const cacheDir = config.cacheDir ?? cacheDirFromEnv();
  const nativeBinding = loadNativeBinding(cacheDir);
  const release = acquireDataDirLock(config.dataDir, nativeBinding);
  let db;
  try {
    db = openDatabase(join(config.dataDir, 'nexus.db'), { nativeBinding });
  } catch (err) {
    release();
    throw err;
  }
  const events = new Events((err) => log.error({ err }, 'event listener failed'));
  const settings = createSettingsStore(db);
  // The console may override the session lifetime and the public URL at run time (settings page).
  const identity = createIdentity(db, events, { sessionTtlSeconds: () => settings.get<number>(SETTING.sessionTtlSeconds) ?? config.session.ttlSeconds });
  // Per-request batches (audit entries, gateway usage) commit on the write thread.
  const writer = createWriter(db, {
    thread: config.database.writeThread,
    onError: (batch, err) => log.error({ err, batch }, 'database write failed'),
    ...(isSingleExecutable() ? { nativeBindingPath: seaAddonFile('better_sqlite3.node', cacheDir) } : {}),
  });
  const audit = createAudit(db, (err) => log.error({ err }, 'audit write failed'), writer);
  const metrics = createMetrics();
  const state: RuntimeState = { ready: false, shuttingDown: false, publicAddress: null, adminAddress: null };
  const ctx: AppContext = {
    config,
    log,
    db,
    writer,
    secretBox: createSecretBox(loadOrCreateMasterKey(config.dataDir)),
    events,
    identity,
    setup: createSetupTokens(config.dataDir, settings),
    audit,
    settings,
    metrics,
    tracing: createTracing(config.telemetry, { registry: metrics.registry, log, version: VERSION }),
    state,
    relay: new NodeRelayHolder(),
    publicUrl: () => settings.get<string>(SETTING.publicUrl) ?? config.publicUrl ?? (state.publicAddress ? `http://${state.publicAddress}` : `http://${config.listen.host}:${config.listen.port}`),
  };
  return {
    ctx,
    close() {
      audit.close();
      writer.close();
      identity.close();
      closeDatabase(db);
      release();
    },
  };
}
