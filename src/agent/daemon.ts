// `nexus agent daemon …`: a service per profile that keeps the agent running. On Linux a systemd unit
// (nexus-agent.service, nexus-agent-NAME.service), system-wide when run as root, else a user unit; on
// macOS a launchd job (nexus.agent, nexus.agent.NAME), a LaunchDaemon as root, else a LaunchAgent.
// `--root DIR` writes under DIR instead of / (image builds, tests); `--dry-run` prints the commands
// (systemctl/journalctl, launchctl/tail) instead of running them.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';

export type ServiceManager = 'systemd' | 'launchd';
export const MANAGERS: readonly string[] = ['systemd', 'launchd'] satisfies ServiceManager[];

/** The host's own: launchd on macOS, systemd elsewhere. */
export function defaultManager(platform: NodeJS.Platform = process.platform): ServiceManager {
  return platform === 'darwin' ? 'launchd' : 'systemd';
}

export interface DaemonTarget {
  manager: ServiceManager;
  profile: string | null;
  /** System unit (root) or user unit. */
  system: boolean;
  agentHome: string;
  /** argv that starts the agent, e.g. [nodePath, mainTs, 'agent', 'start'] or [nexusBinary, 'agent', 'start']. */
  exec: string[];
  user: string;
}

/** Exit status of a permanent failure: systemd must not restart into the same refusal. */
export const PERMANENT_EXIT = 3;

/**
 * Set in the launchd job's environment. launchd cannot be told to leave one exit status alone (systemd's
 * RestartPreventExitStatus), only to restart after a failure (KeepAlive.SuccessfulExit false): under it
 * a permanent failure exits 0, after saying why in the log.
 */
export const SUPERVISOR_ENV = 'NEXUS_AGENT_SUPERVISOR';

export function unitName(profile: string | null): string {
  return profile ? `nexus-agent-${profile}.service` : 'nexus-agent.service';
}

/** launchd's job label. */
export function jobLabel(profile: string | null): string {
  return profile ? `nexus.agent.${profile}` : 'nexus.agent';
}

/** The service's name as its manager knows it. */
export function serviceName(t: Pick<DaemonTarget, 'manager' | 'profile'>): string {
  return t.manager === 'launchd' ? jobLabel(t.profile) : unitName(t.profile);
}

/** Where the unit file (systemd) or the job's property list (launchd) goes. */
export function unitPath(t: DaemonTarget, root = '/'): string {
  const home = root === '/' ? homedir() : root;
  if (t.manager === 'launchd') return join(t.system ? join(root, 'Library/LaunchDaemons') : join(home, 'Library/LaunchAgents'), `${jobLabel(t.profile)}.plist`);
  const dir = t.system ? join(root, 'etc/systemd/system') : join(home, '.config/systemd/user');
  return join(dir, unitName(t.profile));
}

/** The launchd job's log (its stdout and stderr); systemd's go to the journal. */
export function logPath(t: DaemonTarget): string {
  const file = t.profile ? `nexus-agent-${t.profile}.log` : 'nexus-agent.log';
  return t.system ? join('/Library/Logs', file) : join(homedir(), 'Library/Logs', file);
}

/** systemd quoting for ExecStart arguments (systemd.syntax(7)). */
function quote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `"${arg.replace(/(["\\])/g, '\\$1').replace(/%/g, '%%')}"`;
}

export function renderUnit(t: DaemonTarget): string {
  const args = [...t.exec, ...(t.profile ? ['--profile', t.profile] : [])];
  return [
    '[Unit]',
    `Description=Nexus agent${t.profile ? ` (profile ${t.profile})` : ''}`,
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${args.map(quote).join(' ')}`,
    `Environment=${quote(`NEXUS_AGENT_HOME=${t.agentHome}`)}`,
    ...(t.system ? [`User=${t.user}`] : []),
    'Restart=always',
    'RestartSec=5',
    `RestartPreventExitStatus=${PERMANENT_EXIT}`,
    'NoNewPrivileges=true',
    'PrivateTmp=true',
    ...(t.system ? ['ProtectSystem=strict', `ReadWritePaths=${quote(t.agentHome)}`, 'ProtectHome=read-only'] : []),
    '',
    '[Install]',
    `WantedBy=${t.system ? 'multi-user.target' : 'default.target'}`,
    '',
  ].join('\n');
}

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };
const xml = (text: string) => text.replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);

/** The launchd job (launchd.plist(5)): started at load and after a failure, not after a clean exit. */
export function renderPlist(t: DaemonTarget): string {
  const args = [...t.exec, ...(t.profile ? ['--profile', t.profile] : [])];
  const log = logPath(t);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<plist version="1.0">',
    '<dict>',
    '  <key>Label</key>',
    `  <string>${xml(jobLabel(t.profile))}</string>`,
    '  <key>ProgramArguments</key>',
    '  <array>',
    ...args.map((a) => `    <string>${xml(a)}</string>`),
    '  </array>',
    '  <key>EnvironmentVariables</key>',
    '  <dict>',
    '    <key>NEXUS_AGENT_HOME</key>',
    `    <string>${xml(t.agentHome)}</string>`,
    `    <key>${SUPERVISOR_ENV}</key>`,
    '    <string>launchd</string>',
    '  </dict>',
    ...(t.system ? ['  <key>UserName</key>', `  <string>${xml(t.user)}</string>`] : []),
    '  <key>WorkingDirectory</key>',
    '  <string>/</string>',
    '  <key>RunAtLoad</key>',
    '  <true/>',
    '  <key>KeepAlive</key>',
    '  <dict>',
    '    <key>SuccessfulExit</key>',
    '    <false/>',
    '  </dict>',
    '  <key>ThrottleInterval</key>',
    '  <integer>5</integer>',
    '  <key>StandardOutPath</key>',
    `  <string>${xml(log)}</string>`,
    '  <key>StandardErrorPath</key>',
    `  <string>${xml(log)}</string>`,
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
}

/** The file the service manager reads: a systemd unit or a launchd property list. */
export function renderService(t: DaemonTarget): string {
  return t.manager === 'launchd' ? renderPlist(t) : renderUnit(t);
}

export function currentUser(): string {
  return userInfo().username;
}

export function writeUnit(t: DaemonTarget, root = '/'): string {
  const path = unitPath(t, root);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, renderService(t), { mode: 0o644 });
  return path;
}

export function removeUnit(t: DaemonTarget, root = '/'): string {
  const path = unitPath(t, root);
  rmSync(path, { force: true });
  return path;
}

/** A command to run; `mayFail`: its failure does not stop the ones after it (e.g. unloading a job that is not loaded). */
export interface Command {
  argv: string[];
  mayFail?: boolean;
}

function launchdCommands(action: 'install' | 'start' | 'stop' | 'status' | 'logs' | 'uninstall', t: DaemonTarget, follow: boolean): Command[] {
  const domain = t.system ? 'system' : `gui/${process.getuid?.() ?? 501}`;
  const job = `${domain}/${jobLabel(t.profile)}`;
  switch (action) {
    case 'install':
      // Loaded at the next boot (LaunchDaemon) or login (LaunchAgent); `start` loads it now.
      return [{ argv: ['launchctl', 'enable', job] }];
    case 'uninstall':
      return [{ argv: ['launchctl', 'bootout', job], mayFail: true }, { argv: ['launchctl', 'disable', job], mayFail: true }];
    case 'start':
      return [{ argv: ['launchctl', 'bootstrap', domain, unitPath(t)] }];
    case 'stop':
      return [{ argv: ['launchctl', 'bootout', job] }];
    case 'status':
      return [{ argv: ['launchctl', 'print', job] }];
    case 'logs':
      return [{ argv: ['tail', ...(follow ? ['-f'] : []), '-n', '200', logPath(t)] }];
  }
}

/** The commands each action runs. */
export function commandsFor(action: 'install' | 'start' | 'stop' | 'status' | 'logs' | 'uninstall', t: DaemonTarget, follow = false): Command[] {
  if (t.manager === 'launchd') return launchdCommands(action, t, follow);
  return systemdCommands(action, t, follow).map((argv) => ({ argv }));
}

function systemdCommands(action: 'install' | 'start' | 'stop' | 'status' | 'logs' | 'uninstall', t: DaemonTarget, follow: boolean): string[][] {
  const ctl = t.system ? ['systemctl'] : ['systemctl', '--user'];
  const unit = unitName(t.profile);
  switch (action) {
    case 'install':
      return [[...ctl, 'daemon-reload'], [...ctl, 'enable', unit]];
    case 'uninstall':
      // The CLI then removes the unit file and reloads systemd.
      return [[...ctl, 'disable', '--now', unit]];
    case 'start':
    case 'stop':
      return [[...ctl, action, unit]];
    case 'status':
      return [[...ctl, 'status', '--no-pager', unit]];
    case 'logs':
      return [[t.system ? 'journalctl' : 'journalctl', ...(t.system ? [] : ['--user']), '-u', unit, '--no-pager', ...(follow ? ['-f'] : ['-n', '200'])]];
  }
}

export function runCommands(cmds: Command[], dryRun: boolean, out: (line: string) => void): number {
  for (const { argv: c, mayFail } of cmds) {
    if (dryRun) {
      out(c.join(' '));
      continue;
    }
    const r = spawnSync(c[0]!, c.slice(1), { stdio: 'inherit' });
    if (r.error) {
      out(`cannot run ${c[0]}: ${r.error.message}`);
      return 1;
    }
    if (r.status !== 0 && !mayFail) return r.status ?? 1;
  }
  return 0;
}
