// `nexus agent credentials add|list|remove`: the upstream secrets this host injects. The secret is
// typed at a prompt that does not echo, read from --secret-env VAR, or piped on stdin; never a flag
// (flags end up in shell history and `ps`).
import { parseArgs } from 'node:util';
import { createCredentialsStore } from '../../agent/credentials-store.ts';
import { agentHome, AgentError } from '../../agent/home.ts';
import { readEnv } from '../../core/config/config.ts';
import { SECRET_FORMATS, type SecretFormat } from '../../protocol/credentials.ts';

const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;
const HEADER = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/;
/** What `--header` names for each format when it is not given (`body` has no default). */
const DEFAULT_NAME: Record<SecretFormat, string> = { bearer: 'Authorization', bot: 'Authorization', raw: 'Authorization', basic: 'Authorization', query: 'key', path: '', body: '' };

/** Reads one line from the terminal without echoing it, or from stdin when it is not a terminal. */
export async function readSecret(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    let text = '';
    for await (const chunk of stdin) {
      text += chunk;
      if (text.includes('\n') || text.length > 65536) break;
    }
    return text.split(/\r?\n/)[0] ?? '';
  }
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.removeListener('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (s: string) => {
      for (const ch of s) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new AgentError('cancelled'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

export async function agentCredentialsCommand(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      profile: { type: 'string' },
      service: { type: 'string' },
      url: { type: 'string' },
      header: { type: 'string' },
      'secret-format': { type: 'string' },
      'secret-env': { type: 'string' },
      json: { type: 'boolean' },
    },
    strict: true,
  });
  const store = createCredentialsStore(agentHome(values.profile));
  switch (action) {
    case 'add': {
      const { service, url } = values;
      const format = (values['secret-format'] ?? 'bearer') as SecretFormat;
      if (!service || !SLUG.test(service)) throw new AgentError('--service SLUG is required (the slug the appliance gave the service)', 2);
      if (!url) throw new AgentError('--url URL is required (the local service this credential is for)', 2);
      try {
        const u = new URL(url);
        if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
      } catch {
        throw new AgentError(`--url "${url}" is not an http(s) URL`, 2);
      }
      if (!Object.hasOwn(SECRET_FORMATS, format)) throw new AgentError(`--secret-format must be one of ${Object.keys(SECRET_FORMATS).join(', ')}`, 2);
      if (format === 'body' && values.header === undefined) throw new AgentError('--secret-format body needs --header FIELD (the JSON field the secret goes in)', 2);
      const header = values.header ?? DEFAULT_NAME[format];
      // A path prefix may be empty (the secret is the whole first segment); every other name may not.
      if (!(format === 'path' && header === '') && !HEADER.test(header)) throw new AgentError('--header must be a header name (or query parameter, path prefix or JSON field)', 2);
      let secret: string | undefined;
      if (values['secret-env']) {
        secret = readEnv(values['secret-env']);
        if (!secret) throw new AgentError(`environment variable ${values['secret-env']} is empty or not set`);
      } else {
        secret = await readSecret(`Secret for ${service} (input hidden): `);
      }
      secret = secret.trim();
      if (!secret) throw new AgentError('the secret is empty');
      if (/[\r\n\0]/.test(secret)) throw new AgentError('the secret contains a line break or NUL');
      store.put({ service, url, header, format, secret });
      process.stdout.write(`Stored the credential for ${service} (encrypted in ${store.path}). A running agent picks it up on the next request.\n`);
      return 0;
    }
    case 'list': {
      const items = store.list();
      if (values.json) {
        process.stdout.write(JSON.stringify(items, null, 2) + '\n');
        return 0;
      }
      if (!items.length) {
        process.stdout.write('No credentials stored.\n');
        return 0;
      }
      for (const c of items) process.stdout.write(`${c.service}\t${c.url}\t${c.header}\t${c.format}\t${c.updatedAt}\n`);
      return 0;
    }
    case 'remove': {
      if (!values.service) throw new AgentError('--service SLUG is required', 2);
      if (!store.remove(values.service)) throw new AgentError(`no credential for ${values.service}`);
      process.stdout.write(`Removed the credential for ${values.service}.\n`);
      return 0;
    }
    default:
      process.stderr.write('Usage: nexus agent credentials add|list|remove [options]\n');
      return 2;
  }
}
