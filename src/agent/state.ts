// The node identity an agent got at enrollment: hub URL, node id, auth token and signing secret.
// The two secrets are sealed with the profile's key; node.json itself is 0600.
import type { AgentHome } from './home.ts';
import { AgentError, ensureDir, readJson, writeSecure } from './home.ts';

export interface NodeIdentity {
  hubUrl: string;
  nodeId: string;
  authToken: string;
  signingSecret: string;
  enrolledAt: string;
  /** PEM certificates the hub's TLS certificate must chain to (`enroll --ca`); the system's otherwise. */
  ca?: string;
}

interface Stored {
  version: 1;
  hub_url: string;
  node_id: string;
  auth_token: string;
  signing_secret: string;
  enrolled_at: string;
  ca?: string;
}

export function loadIdentity(home: AgentHome): NodeIdentity | null {
  const s = readJson<Stored>(home.file('node.json'));
  if (!s) return null;
  if (s.version !== 1 || typeof s.node_id !== 'string' || typeof s.hub_url !== 'string') {
    throw new AgentError(`${home.file('node.json')} is not a node identity this agent understands`);
  }
  const box = home.box();
  try {
    return {
      hubUrl: s.hub_url,
      nodeId: s.node_id,
      authToken: box.open(s.auth_token, `auth_token:${s.node_id}`),
      signingSecret: box.open(s.signing_secret, `signing_secret:${s.node_id}`),
      enrolledAt: s.enrolled_at,
      ...(typeof s.ca === 'string' ? { ca: s.ca } : {}),
    };
  } catch {
    throw new AgentError(`cannot decrypt ${home.file('node.json')} (agent.key changed?); enroll again`);
  }
}

/** Whether the profile holds enrollment state (node.json), without opening its secrets or creating agent.key. */
export function isEnrolled(home: AgentHome): boolean {
  const s = readJson<Partial<Stored>>(home.file('node.json'));
  return typeof s?.node_id === 'string' && typeof s.hub_url === 'string';
}

export function saveIdentity(home: AgentHome, id: NodeIdentity): void {
  ensureDir(home.dir);
  const box = home.box();
  const s: Stored = {
    version: 1,
    hub_url: id.hubUrl,
    node_id: id.nodeId,
    auth_token: box.seal(id.authToken, `auth_token:${id.nodeId}`),
    signing_secret: box.seal(id.signingSecret, `signing_secret:${id.nodeId}`),
    enrolled_at: id.enrolledAt,
    ...(id.ca ? { ca: id.ca } : {}),
  };
  writeSecure(home.file('node.json'), JSON.stringify(s, null, 2) + '\n');
}
