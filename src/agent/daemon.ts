// `nexus agent daemon …`: a systemd unit per profile (nexus-agent.service, nexus-agent-NAME.service),
// system-wide when run as root, else a user unit. `--root DIR` writes under DIR instead of / (image
// builds, tests); `--dry-run` prints the systemctl/journalctl commands instead of running them.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';

export interface DaemonTarget {
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

export function unitName(profile: string | null): string {
  return profile ? `nexus-agent-${profile}.service` : 'nexus-agent.service';
}

export function unitPath(t: DaemonTarget, root = '/'): string {
  const dir = t.system ? join(root, 'etc/systemd/system') : join(root === '/' ? homedir() : root, '.config/systemd/user');
  return join(dir, unitName(t.profile));
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

export function currentUser(): string {
  return userInfo().username;
}

export function writeUnit(t: DaemonTarget, root = '/'): string {
  const path = unitPath(t, root);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, renderUnit(t), { mode: 0o644 });
  return path;
}

/** The commands each action runs. */
export function commandsFor(action: 'install' | 'start' | 'stop' | 'status' | 'logs' | 'uninstall', t: DaemonTarget, follow = false): string[][] {
  const ctl = t.system ? ['systemctl'] : ['systemctl', '--user'];
  const unit = unitName(t.profile);
  switch (action) {
    case 'install':
      return [[...ctl, 'daemon-reload'], [...ctl, 'enable', unit]];
    case 'uninstall':
      return [[...ctl, 'disable', '--now', unit], [...ctl, 'daemon-reload']];
    case 'start':
    case 'stop':
      return [[...ctl, action, unit]];
    case 'status':
      return [[...ctl, 'status', '--no-pager', unit]];
    case 'logs':
      return [[t.system ? 'journalctl' : 'journalctl', ...(t.system ? [] : ['--user']), '-u', unit, '--no-pager', ...(follow ? ['-f'] : ['-n', '200'])]];
  }
}

export function runCommands(cmds: string[][], dryRun: boolean, out: (line: string) => void): number {
  for (const c of cmds) {
    if (dryRun) {
      out(c.join(' '));
      continue;
    }
    const r = spawnSync(c[0]!, c.slice(1), { stdio: 'inherit' });
    if (r.error) {
      out(`cannot run ${c[0]}: ${r.error.message}`);
      return 1;
    }
    if (r.status !== 0) return r.status ?? 1;
  }
  return 0;
}
