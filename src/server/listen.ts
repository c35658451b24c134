// `nexus serve`: opens the context, builds both apps, listens, and shuts down gracefully on
// SIGTERM/SIGINT: stop accepting, drain in-flight requests up to the grace bound, close, checkpoint.
import type { FastifyInstance } from 'fastify';
import { isLoopbackHost, type Config } from '../core/config/config.ts';
import type { AppContext } from '../core/context.ts';
import { createLogger, type Logger } from '../core/log/log.ts';
import { buildAdminApp, buildPublicApp } from './app.ts';
import { createContext } from './context.ts';

/** How long shutdown waits for queued spans to reach the collector (core/telemetry/otlp-exporter.ts). */
const SPAN_FLUSH_MS = 3000;

export interface RunningServer {
  ctx: AppContext;
  publicApp: FastifyInstance;
  adminApp: FastifyInstance;
  publicUrl: string;
  adminUrl: string;
  setupToken: string | null;
  close(reason?: string): Promise<void>;
}

function addressOf(app: FastifyInstance): string {
  const addr = app.server.address();
  if (!addr || typeof addr === 'string') return String(addr);
  return addr.family === 'IPv6' ? `[${addr.address}]:${addr.port}` : `${addr.address}:${addr.port}`;
}

export async function startServer(config: Config, log: Logger = createLogger({ level: config.logLevel })): Promise<RunningServer> {
  // The admin listener has no authentication (metrics, hub agents, disconnecting a node): it is meant
  // for this machine only. Another address is allowed (a container publishes it to its host), but
  // said loudly.
  if (!isLoopbackHost(config.adminListen.host)) {
    log.warn({ adminListen: config.adminListen.host }, `admin listener bound to ${config.adminListen.host}, not a loopback address: /metrics and /api/hub/* (which can disconnect nodes) answer anyone who reaches it, without authentication`);
  }
  const owned = createContext(config, log);
  const { ctx } = owned;
  let publicApp: FastifyInstance | undefined;
  let adminApp: FastifyInstance | undefined;
  try {
    publicApp = await buildPublicApp(ctx);
    adminApp = await buildAdminApp(ctx);
    await publicApp.listen({ host: config.listen.host, port: config.listen.port });
    await adminApp.listen({ host: config.adminListen.host, port: config.adminListen.port });
  } catch (err) {
    await Promise.allSettled([publicApp?.close(), adminApp?.close()]);
    owned.close();
    throw err;
  }
  ctx.state.publicAddress = addressOf(publicApp);
  ctx.state.adminAddress = addressOf(adminApp);
  ctx.state.ready = true;

  const setupToken = ctx.setup.ensure(ctx.identity.hasAdmin());
  const publicUrl = ctx.publicUrl();
  log.info({ public: ctx.state.publicAddress, admin: ctx.state.adminAddress, dataDir: config.dataDir }, 'nexus is ready');
  if (setupToken) log.info({ setupUrl: `${openable(publicUrl)}/setup`, tokenFile: ctx.setup.path }, 'setup required');

  let closing: Promise<void> | null = null;
  const close = (reason = 'close') => {
    closing ??= (async () => {
      log.info({ reason }, 'shutting down');
      ctx.state.ready = false;
      ctx.state.shuttingDown = true;
      const apps = [publicApp!, adminApp!];
      const drained = Promise.allSettled(apps.map((a) => a.close()));
      const timer = setTimeout(() => {
        log.warn({ graceMs: config.shutdownGraceMs }, 'grace period over; closing remaining connections');
        for (const a of apps) a.server.closeAllConnections();
      }, config.shutdownGraceMs);
      await drained;
      clearTimeout(timer);
      // The last requests' spans go to the collector, within a bound a down collector cannot stretch.
      await ctx.tracing.shutdown(SPAN_FLUSH_MS);
      owned.close();
      log.info('stopped');
    })();
    return closing;
  };

  return {
    ctx,
    publicApp,
    adminApp,
    publicUrl,
    adminUrl: `http://${ctx.state.adminAddress}`,
    setupToken,
    close,
  };
}

/** Installs SIGTERM/SIGINT handlers that close the server once and exit. */
export function exitOnSignals(server: RunningServer, log: Logger): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      log.warn({ signal }, 'second signal; exiting now');
      process.exit(1);
    }
    signalled = true;
    // A hook that never finishes (a stuck stream, a hung upstream) must not keep the process alive:
    // past the grace period plus a margin, exit anyway.
    const deadline = server.ctx.config.shutdownGraceMs + 5_000;
    setTimeout(() => {
      log.error({ deadlineMs: deadline }, 'shutdown did not finish in time; exiting');
      process.exit(1);
    }, deadline).unref();
    server.close(signal).then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/** A URL on a wildcard address (http://0.0.0.0:8080) as one a browser on this machine can open. */
export function openable(url: string): string {
  const u = new URL(url);
  if (u.hostname === '0.0.0.0') u.hostname = '127.0.0.1';
  else if (u.hostname === '[::]') u.hostname = '[::1]';
  else return url;
  return u.origin;
}
