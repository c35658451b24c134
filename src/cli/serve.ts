// `nexus serve`: the appliance.
import { parseArgs } from 'node:util';
import { ConfigError, isLoopbackHost, loadConfig, unknownNexusEnv } from '../core/config/config.ts';
import { DataDirError, dataDirExposure } from '../core/db/db.ts';
import { SETUP_PASSWORD_PLACEHOLDER } from '../core/identity/identity.ts';
import { createLogger } from '../core/log/log.ts';
import { exitOnSignals, openable, startServer } from '../server/listen.ts';

export const SERVE_USAGE = `Usage: nexus serve [options]

  --data-dir DIR          data directory (env NEXUS_DATA_DIR, default ./.data)
  --listen HOST:PORT      public listener (env NEXUS_LISTEN, default 127.0.0.1:8080)
  --admin-listen HOST:PORT  loopback admin listener (env NEXUS_ADMIN_LISTEN, default 127.0.0.1:9090)
  --config FILE           YAML or JSON config file (env NEXUS_CONFIG)
  --public-url URL        URL users reach the appliance at (env NEXUS_PUBLIC_URL)
  --log-level LEVEL       trace|debug|info|warn|error (env NEXUS_LOG_LEVEL)
`;

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'data-dir': { type: 'string' },
      listen: { type: 'string' },
      'admin-listen': { type: 'string' },
      config: { type: 'string' },
      'public-url': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(SERVE_USAGE);
    return 0;
  }
  let config;
  try {
    config = loadConfig({ flags: values });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`nexus serve: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger({ level: config.logLevel });
  // Said on the console and in the log (for a service manager's journal); never fatal.
  const warnings: string[] = [];
  for (const { name, closest } of unknownNexusEnv()) {
    const text = `environment variable ${name} is not a Nexus setting and is ignored${closest ? ` (did you mean ${closest}?)` : ''}`;
    log.warn({ variable: name, closest }, text);
    warnings.push(text);
  }
  let server;
  try {
    server = await startServer(config, log);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const message = err instanceof DataDirError ? e.message
      : e.code === 'EADDRINUSE' ? `${listenAddress(e) ?? 'the address'} is already in use; choose another with --listen/--admin-listen`
      : e.code === 'EACCES' ? `permission denied: ${e.message}`
      : null;
    if (message) {
      log.fatal({ reason: message }, 'cannot start');
      log.flush?.();
      process.stderr.write(`nexus serve: ${message}\n`);
      return 1;
    }
    throw err;
  }
  exitOnSignals(server, log);
  const exposed = dataDirExposure(config.dataDir);
  if (exposed) {
    log.warn({ dataDir: config.dataDir }, exposed);
    warnings.push(exposed);
  }
  const adminLoopback = isLoopbackHost(config.adminListen.host);
  if (!adminLoopback) warnings.push(`the admin listener (${server.adminUrl}) is not on loopback: /metrics and /api/hub/* answer anyone who reaches it, without authentication`);
  // A wildcard listen address is where the appliance listens, not a URL anyone can open.
  const publicUrl = openable(server.publicUrl);
  // The public listener on this host, which a configured public URL (nginx in front) does not show.
  const here = openable(`http://${server.ctx.state.publicAddress}`);
  const lines = [
    '',
    `  Nexus is running at ${publicUrl}  (admin/metrics on ${openable(server.adminUrl)}${adminLoopback ? ', loopback only' : ', reachable from the network'})`,
    `  Data dir: ${config.dataDir}`,
  ];
  if (publicUrl !== server.publicUrl) lines.push(`  Listening on every interface (${config.listen.host}); --public-url (or the console's settings) names the URL users reach it at`);
  else if (publicUrl !== here) lines.push(`  Listening on ${server.ctx.state.publicAddress} (the URL above is where people reach it)`);
  if (warnings.length) lines.push('', ...warnings.map((w) => `  Warning: ${w}`));
  if (server.setupToken) {
    // The shell line reads the token file, so it runs on this host: it goes to the listener here,
    // which needs neither a name that resolves yet nor trust in a first boot's self-signed certificate.
    lines.push(
      '',
      `  First start: finish setup at ${publicUrl}/setup`,
      `  Setup token (one time, also in ${server.ctx.setup.path}):`,
      `    ${server.setupToken}`,
      '',
      `  Or from a shell:`,
      `    curl -X POST ${here}/api/v1/setup -H 'content-type: application/json' \\`,
      `      -d '{"setup_token":"'$(cat ${server.ctx.setup.path})'","username":"admin","password":"${SETUP_PASSWORD_PLACEHOLDER}"}'`,
    );
  }
  process.stderr.write(lines.join('\n') + '\n\n');
  return -1; // keep running
}

/** HOST:PORT of a failed listen (Node's errors carry both), for the one-line reason. */
function listenAddress(e: NodeJS.ErrnoException & { address?: string; port?: number }): string | null {
  if (typeof e.address !== 'string') return null;
  const host = e.address.includes(':') ? `[${e.address}]` : e.address;
  return typeof e.port === 'number' ? `${host}:${e.port}` : host;
}
