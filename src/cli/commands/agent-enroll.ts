import { parseArgs } from 'node:util';
import { enroll, installRotated, type RotatedPair } from '../../agent/enroll.ts';
import { AgentError, agentHome } from '../../agent/home.ts';
import { readCaFile } from '../../agent/tls.ts';

export async function agentEnrollCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { url: { type: 'string' }, token: { type: 'string' }, profile: { type: 'string' }, force: { type: 'boolean' }, ca: { type: 'string' } },
    strict: true,
  });
  if (!values.url || !values.token) {
    process.stderr.write('nexus agent enroll: --url ws(s)://HOST/ws and --token nx_nreg_… are required\n');
    return 2;
  }
  const home = agentHome(values.profile);
  const ca = values.ca === undefined ? undefined : readCaFile(values.ca);
  const id = await enroll(home, values.url, values.token, { force: values.force ?? false, ...(ca ? { ca } : {}) });
  // The node's auth token and signing secret are shown once, to a person at a terminal. Output that
  // is not a terminal often lands in provisioning logs (cloud-init, CI), where they would let anyone
  // reading the log connect as this node: there they are not printed (the agent reads its state).
  const shown = process.stdout.isTTY
    ? ['These credentials are shown once; the agent needs nothing else:', `  auth token:     ${id.authToken}`, `  signing secret: ${id.signingSecret}`]
    : ['(Its auth token and signing secret are printed only to a terminal, never to a log.)'];
  process.stdout.write([
    `Enrolled as node ${id.nodeId}${home.profile ? ` (profile ${home.profile})` : ''}.`,
    '',
    `Its credentials are stored encrypted in ${home.dir} (mode 0600).`,
    ...shown,
    '',
    `Next: nexus agent credentials add --service SLUG --url URL --header Authorization --secret-format bearer${home.profile ? ` --profile ${home.profile}` : ''}`,
    `      nexus agent start${home.profile ? ` --profile ${home.profile}` : ''}`,
    '',
  ].join('\n'));
  return 0;
}

/** Largest stdin `nexus agent rotate` reads: the rotate answer is ~200 bytes. */
const MAX_INPUT = 64 * 1024;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > MAX_INPUT) throw new AgentError(`stdin is larger than ${MAX_INPUT} bytes; expected the rotate answer (JSON)`, 2);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * `nexus agent rotate`: installs the pair POST /api/v1/nodes/{id}/rotate handed out (`nexus node
 * rotate`), read from stdin as that JSON answer, or from NEXUS_NODE_AUTH_TOKEN and
 * NEXUS_NODE_SIGNING_SECRET; never from flags (they end up in shell history and `ps`).
 */
export async function agentRotateCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { profile: { type: 'string' } }, strict: true });
  const home = agentHome(values.profile);
  let pair: RotatedPair;
  const envToken = process.env.NEXUS_NODE_AUTH_TOKEN;
  if (envToken) {
    pair = { auth_token: envToken, signing_secret: process.env.NEXUS_NODE_SIGNING_SECRET };
  } else {
    if (process.stdin.isTTY) {
      throw new AgentError('pipe the rotate answer in (nexus node rotate NODE | ssh HOST nexus agent rotate), or set NEXUS_NODE_AUTH_TOKEN and NEXUS_NODE_SIGNING_SECRET', 2);
    }
    const text = (await readStdin()).trim();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new AgentError('stdin is not JSON; expected the rotate answer {"node_id","auth_token","signing_secret"}', 2);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new AgentError('expected the rotate answer, a JSON object with auth_token and signing_secret', 2);
    pair = parsed as RotatedPair;
  }
  const id = installRotated(home, pair);
  process.stdout.write(`Node ${id.nodeId}${home.profile ? ` (profile ${home.profile})` : ''}: the rotated credentials are stored encrypted in ${home.dir}.\n` +
    `Start the agent again to connect with them: nexus agent start${home.profile ? ` --profile ${home.profile}` : ''} (a daemon: nexus agent daemon start).\n`);
  return 0;
}
