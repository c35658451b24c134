// What every surface receives: the frozen config and the shared services. Built once per process
// by server/context.ts; surfaces depend on this shape, never on each other.
import type { Config } from './config/config.ts';
import type { Db } from './db/db.ts';
import type { Writer } from './db/write-thread.ts';
import type { SecretBox } from './crypto/secret-box.ts';
import type { Events } from './events/events.ts';
import type { Identity } from './identity/identity.ts';
import type { SetupTokens } from './identity/setup.ts';
import type { Audit } from './audit/audit.ts';
import type { SettingsStore } from './settings/settings-store.ts';
import type { Metrics } from './metrics/metrics.ts';
import type { Logger } from './log/log.ts';
import type { NodeRelayHolder } from './relay/node-relay.ts';
import type { Tracing } from './telemetry/tracing.ts';

export interface RuntimeState {
  ready: boolean;
  shuttingDown: boolean;
  /** Addresses the listeners actually bound (port 0 resolves here). */
  publicAddress: string | null;
  adminAddress: string | null;
}

export interface AppContext {
  config: Config;
  log: Logger;
  db: Db;
  /** Commits the per-request write batches (audit entries, usage) off the request path. */
  writer: Writer;
  secretBox: SecretBox;
  events: Events;
  identity: Identity;
  setup: SetupTokens;
  audit: Audit;
  settings: SettingsStore;
  metrics: Metrics;
  /** Spans and trace-context propagation (core/telemetry); exports only with a collector configured. */
  tracing: Tracing;
  state: RuntimeState;
  /** Reaches private hosts through connected agents; installed by the hub surface. */
  relay: NodeRelayHolder;
  /** The base URL callers use (config.publicUrl, else the public listener's address). */
  publicUrl(): string;
}
