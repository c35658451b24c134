// Dispatches the first argument to a role. Each command returns an exit code, or -1 to keep running.

import { VERSION } from '../core/version.ts';

export type Command = (argv: string[]) => Promise<number>;

export const USAGE = `nexus — one controlled doorway to AI models and private APIs

Usage:
  nexus serve [options]        run the appliance (nexus serve --help)
  nexus first-boot [options]   prepare a fresh appliance once (nexus first-boot --help)
  nexus login [--url URL]      sign this CLI in through the console (nexus login --help)
  nexus service add|list|nodes|update
                               add a service (credential typed in the browser), list them, pick
                               their nodes, change their endpoint
  nexus node list|register|token|rotate|delete
                               nodes: private hosts reached through an agent
  nexus provider add|list|update|remove
                               the AI gateway's providers (API keys read without echo)
  nexus model add|list|update|remove
                               public model names, their deployments, prices, routing and cache
  nexus key create|list|update|rotate|revoke
                               virtual keys for the AI gateway
  nexus usage [--by key,model] what the AI gateway's calls used and cost (nexus usage --help)
  nexus backup [verify FILE]   the data dir as one file, taken while the appliance runs
  nexus restore FILE           put a backup back (the appliance stopped)
  nexus agent <command>        the remote agent on a private host (nexus agent --help)
  nexus version                print the version (also --version)

Every command takes --help.
`;

// Each role loads only its own modules: `nexus key list` does not pay for fastify, the gateway or the
// agent's WebSocket stack.
const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./serve.ts')).serveCommand,
  'first-boot': async () => (await import('./commands/first-boot.ts')).firstBootCommand,
  login: async () => (await import('./commands/login.ts')).loginCommand,
  service: async () => (await import('./commands/service.ts')).serviceCommand,
  node: async () => (await import('./commands/node.ts')).nodeCommand,
  provider: async () => (await import('./commands/provider.ts')).providerCommand,
  model: async () => (await import('./commands/provider.ts')).modelCommand,
  key: async () => (await import('./commands/key.ts')).keyCommand,
  usage: async () => (await import('./commands/usage.ts')).usageCommand,
  backup: async () => (await import('./commands/backup.ts')).backupCommand,
  restore: async () => (await import('./commands/backup.ts')).restoreCommand,
  agent: async () => (await import('./commands/agent.ts')).agentCommand,
  version: async () => async (argv: string[]) => {
    process.stdout.write(`nexus ${VERSION}\n`);
    if (argv.includes('--verbose')) {
      // Whether ws masks frames in C (bufferutil) or in its JavaScript fallback: hub throughput depends on it.
      const masking = await import('bufferutil').then((m) => (typeof m.mask === 'function' ? 'native' : 'js'), () => 'js');
      process.stdout.write(`node ${process.versions.node}\nwebsocket masking: ${masking}\n`);
    }
    return 0;
  },
};

export { VERSION } from '../core/version.ts';

export function registerCommand(name: string, cmd: Command): void {
  COMMANDS[name] = async () => cmd;
}

/**
 * `nexus key list | head -1`: once the reader of stdout has gone, nothing more can be said; stop
 * quietly with 141 (128 + SIGPIPE), as `ls` does, instead of a stack trace. Node ignores SIGPIPE, so
 * the write fails with EPIPE instead. The appliance and the agent keep their own output handling.
 */
function stopWhenReaderLeaves(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(141);
    throw err;
  });
}

/**
 * parseArgs calls `--input-price -1` "ambiguous" (the value looks like an option). Every number this
 * CLI takes is zero or more, so a negative one is said to be refused as such; another value starting
 * with '-' is shown how to be written.
 */
function ambiguousValue(message: string, argv: string[]): string | null {
  const m = /^Option '(--[\w-]+)' argument is ambiguous/.exec(message);
  if (!m) return null;
  const flag = m[1]!;
  const value = argv[argv.indexOf(flag) + 1];
  if (value === undefined) return null;
  if (/^-\d/.test(value) && Number.isFinite(Number(value))) return `${flag} must not be negative (got ${value}): prices, limits and durations are zero or more`;
  return `${flag} ${value}: a value starting with '-' is written ${flag}=${value}`;
}

export async function runCli(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-V') return runCli(['version', ...rest]);
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!load) {
    process.stderr.write(`nexus: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  const cmd = await load();
  if (name !== 'serve' && name !== 'agent') stopWhenReaderLeaves();
  // `--help` anywhere before `--` (`nexus node register --help`) is the command's usage, exit 0;
  // each command prints it for a leading `--help`.
  const end = rest.indexOf('--');
  if (rest.slice(0, end < 0 ? rest.length : end).some((a) => a === '--help' || a === '-h')) return cmd(['--help']);
  try {
    return await cmd(rest);
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      // parseArgs appends advice about positionals that start with '-', which only confuses here.
      const message = ambiguousValue((err as Error).message, rest) ?? (err as Error).message.replace(/\. To specify a positional argument[\s\S]*$/, '');
      process.stderr.write(`nexus ${name}: ${message} (nexus ${name} --help lists the options)\n`);
      return 2;
    }
    throw err;
  }
}
