// `nexus agent …`: the remote agent on a private host.
import { AgentError } from '../../agent/home.ts';
import { agentCredentialsCommand } from './agent-credentials.ts';
import { agentDaemonCommand } from './agent-daemon.ts';
import { agentEnrollCommand, agentRotateCommand } from './agent-enroll.ts';
import { agentStartCommand } from './agent-start.ts';

export const AGENT_USAGE = `Usage: nexus agent <command> [--profile NAME]

  enroll --url ws(s)://HOST/ws --token nx_nreg_… [--ca FILE] [--force]
                                  exchange a registration token for node credentials; --ca: the
                                  appliance's certificate (PEM) when it is self-signed, kept for start
  rotate                          install credentials rotated on the appliance (nexus node rotate NODE):
                                  their JSON piped on stdin, or NEXUS_NODE_AUTH_TOKEN and
                                  NEXUS_NODE_SIGNING_SECRET; then start the agent again
  credentials add --service SLUG --url URL [--header NAME] [--secret-format bearer|bot|raw|basic|query|path|body] [--secret-env VAR]
                                  store the secret for a service (SLUG: the service's slug on the appliance,
                                  as in its proxy URL); typed without echo, piped on stdin, or from VAR;
                                  --header: the header, query parameter, path prefix or JSON field
  credentials list [--json] | credentials remove --service SLUG
  start [--transport auto|ws|http] [--log-level LEVEL]
                                  connect to the hub and serve requests (foreground)
  daemon install|uninstall|start|stop|status|logs [-f] [--user|--system] [--root DIR] [--dry-run] [--print]
         [--transport auto|ws|http] [--log-level LEVEL]
                                  run as a systemd service

State lives in $NEXUS_AGENT_HOME (default ~/.nexus-agent); --profile NAME uses profiles/NAME/ below it.
`;

const SUB: Record<string, (argv: string[]) => Promise<number>> = {
  enroll: agentEnrollCommand,
  rotate: agentRotateCommand,
  start: agentStartCommand,
  credentials: agentCredentialsCommand,
  daemon: agentDaemonCommand,
};

export async function agentCommand(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(AGENT_USAGE);
    return name ? 0 : 2;
  }
  const cmd = Object.hasOwn(SUB, name) ? SUB[name] : undefined;
  if (!cmd) {
    process.stderr.write(`nexus agent: unknown command "${name}"\n\n${AGENT_USAGE}`);
    return 2;
  }
  try {
    return await cmd(rest);
  } catch (err) {
    if (err instanceof AgentError) {
      process.stderr.write(`nexus agent ${name}: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}
