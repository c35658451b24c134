import { isSea } from 'node:sea';
import { parseArgs } from 'node:util';
import { commandsFor, currentUser, defaultManager, MANAGERS, removeUnit, renderService, runCommands, serviceName, unitPath, writeUnit, type DaemonTarget, type ServiceManager } from '../../agent/daemon.ts';
import { agentHome, AgentError } from '../../agent/home.ts';
import { TRANSPORTS } from '../../agent/connect.ts';
import { isEnrolled } from '../../agent/state.ts';
import { LOG_LEVELS } from '../../core/config/config.ts';
import { resolve } from 'node:path';

const ACTIONS = ['install', 'uninstall', 'start', 'stop', 'status', 'logs'] as const;
type Action = (typeof ACTIONS)[number];

function startArgv(): string[] {
  // The single executable runs itself; under node, the interpreter runs src/main.ts.
  return isSea() ? [process.execPath, 'agent', 'start'] : [process.execPath, resolve(process.argv[1]!), 'agent', 'start'];
}

export async function agentDaemonCommand(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      profile: { type: 'string' },
      root: { type: 'string' },
      'dry-run': { type: 'boolean' },
      user: { type: 'boolean' },
      system: { type: 'boolean' },
      follow: { type: 'boolean', short: 'f' },
      print: { type: 'boolean' },
      transport: { type: 'string' },
      'log-level': { type: 'string' },
      manager: { type: 'string' },
    },
    strict: true,
  });
  if (!ACTIONS.includes(action as Action)) {
    process.stderr.write(`Usage: nexus agent daemon ${ACTIONS.join('|')} [--profile NAME] [--root DIR] [--dry-run] [--user|--system] [--manager systemd|launchd] [--transport auto|ws|http] [--log-level LEVEL]\n`);
    return 2;
  }
  const manager = (values.manager ?? defaultManager()) as ServiceManager;
  if (!MANAGERS.includes(manager)) throw new AgentError('--manager must be systemd or launchd', 2);
  const home = agentHome(values.profile);
  const system = values.system ? true : values.user ? false : process.getuid?.() === 0;
  // `agent start` flags the unit passes on (checked here, so a typo fails now rather than at boot).
  const startFlags: string[] = [];
  if (values.transport !== undefined) {
    if (!TRANSPORTS.includes(values.transport)) throw new AgentError('--transport must be ws, http or auto', 2);
    startFlags.push('--transport', values.transport);
  }
  if (values['log-level'] !== undefined) {
    if (!LOG_LEVELS.includes(values['log-level'])) throw new AgentError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`, 2);
    startFlags.push('--log-level', values['log-level']);
  }
  const target: DaemonTarget = { manager, profile: home.profile, system, agentHome: home.root, exec: [...startArgv(), ...startFlags], user: currentUser() };
  const dryRun = values['dry-run'] ?? false;
  const out = (line: string) => process.stdout.write(line + '\n');
  if (action === 'install') {
    // An unenrolled profile's agent exits at once and systemd restarts it every 5 s until it is
    // enrolled: refuse to install it on this host; --print and --dry-run still show what would be
    // installed, with a warning. Under --root the unit is for an image whose instances enroll when
    // they first boot (cloud-init), which is just what those restarts wait for: a warning only.
    if (!isEnrolled(home)) {
      const enroll = `nexus agent enroll --url wss://HOST/ws --token nx_nreg_…${home.profile ? ` --profile ${home.profile}` : ''}`;
      if (!values.print && !dryRun && !values.root) throw new AgentError(`${home.profile ? `profile "${home.profile}"` : 'this agent home'} is not enrolled (${home.dir}); run ${enroll} first`);
      process.stderr.write(`warning: ${home.profile ? `profile "${home.profile}"` : 'this agent home'} is not enrolled (${home.dir}); the unit would restart every 5 s until it is: ${enroll}\n`);
    }
    if (values.print) {
      process.stdout.write(renderService(target));
      return 0;
    }
    // --root writes into an image being built, so it writes even with --dry-run; a plain dry run
    // changes nothing on this host, and shows what it would write.
    if (dryRun && !values.root) {
      out(`Would write ${unitPath(target)}:`);
      process.stdout.write(renderService(target));
    } else {
      out(`Wrote ${writeUnit(target, values.root ?? '/')}`);
    }
    // A user unit runs only while its user has a session, unless lingering is enabled for that user.
    const linger = () => {
      if (!system && manager === 'systemd') out(`A user unit runs only while you are logged in: for the agent to run at boot and after logout, run once: loginctl enable-linger ${target.user}`);
    };
    // Under --root the unit is for another system image: nothing to reload or enable here.
    if (values.root) return linger(), 0;
    const code = runCommands(commandsFor('install', target), dryRun, out);
    if (code === 0 && !dryRun) out(`Installed ${serviceName(target)}; start it with: nexus agent daemon start${home.profile ? ` --profile ${home.profile}` : ''}${values.manager ? ` --manager ${manager}` : ''}`);
    if (code === 0) linger();
    return code;
  }
  if (action === 'uninstall') {
    // Stopped and disabled, then the file goes, then systemd forgets it.
    const code = runCommands(commandsFor('uninstall', target), dryRun, out);
    if (code !== 0) return code;
    if (dryRun) out(`Would remove ${unitPath(target)}`);
    else out(`Removed ${removeUnit(target)}`);
    return manager === 'systemd' ? runCommands([{ argv: system ? ['systemctl', 'daemon-reload'] : ['systemctl', '--user', 'daemon-reload'] }], dryRun, out) : 0;
  }
  return runCommands(commandsFor(action as Action, target, values.follow ?? false), dryRun, out);
}
