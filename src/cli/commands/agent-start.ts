import { parseArgs } from 'node:util';
import { PermanentAgentError, runAgent, TRANSPORTS, type Transport } from '../../agent/connect.ts';
import { createCredentialsStore } from '../../agent/credentials-store.ts';
import { proxyFor } from '../../agent/hub-egress.ts';
import { PERMANENT_EXIT, SUPERVISOR_ENV } from '../../agent/daemon.ts';
import { agentHome, AgentError } from '../../agent/home.ts';
import { loadIdentity } from '../../agent/state.ts';
import { Registry } from 'prom-client';
import { agentTelemetryConfig, ConfigError, LOG_LEVELS } from '../../core/config/config.ts';
import { createLogger } from '../../core/log/log.ts';
import { createTracing } from '../../core/telemetry/tracing.ts';
import { VERSION } from '../../core/version.ts';

export async function agentStartCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { profile: { type: 'string' }, 'log-level': { type: 'string' }, transport: { type: 'string' } },
    strict: true,
  });
  const transport = (values.transport ?? 'auto') as Transport;
  if (!TRANSPORTS.includes(transport)) throw new AgentError('--transport must be ws, http or auto', 2);
  const level = values['log-level'] ?? 'info';
  if (!LOG_LEVELS.includes(level)) throw new AgentError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`, 2);
  const home = agentHome(values.profile);
  const identity = loadIdentity(home);
  if (!identity) throw new AgentError(`not enrolled yet (${home.dir}); run nexus agent enroll --url … --token …${home.profile ? ` --profile ${home.profile}` : ''}`);
  const log = createLogger({ level }).child({ role: 'agent', ...(home.profile ? { profile: home.profile } : {}) });
  let telemetry;
  try {
    telemetry = agentTelemetryConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) throw new AgentError(err.message, 2);
    throw err;
  }
  const tracing = createTracing(telemetry, { registry: new Registry(), log, version: VERSION });
  if (tracing.exporting) log.info({ collector: new URL(telemetry.otlpEndpoint!).origin }, 'exporting spans');
  const stop = new AbortController();
  const onSignal = (signal: string) => {
    log.info({ signal }, 'stopping');
    stop.abort();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    // A malformed HTTPS_PROXY / HTTP_PROXY would fail every attempt alike, on either transport: said
    // once, with the exit status systemd does not restart into.
    try {
      proxyFor(new URL(identity.hubUrl));
    } catch (err) {
      throw err instanceof AgentError ? new PermanentAgentError(err.message) : err;
    }
    await runAgent({ identity, credentials: createCredentialsStore(home), log, signal: stop.signal, transport, tracing });
    await tracing.shutdown(3_000);
    log.info('stopped');
    log.flush();
    return 0;
  } catch (err) {
    if (err instanceof PermanentAgentError) {
      log.fatal({ reason: err.message }, 'cannot continue');
      log.flush();
      process.stderr.write(`nexus agent start: ${err.message}\n`);
      // launchd restarts any failed exit (daemon.ts SUPERVISOR_ENV): a clean one keeps it from
      // starting the agent into the same refusal every few seconds.
      return process.env[SUPERVISOR_ENV] === 'launchd' ? 0 : PERMANENT_EXIT;
    }
    throw err;
  } finally {
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
  }
}
