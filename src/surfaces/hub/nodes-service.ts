// Node lifecycle: register (mint a single-use registration token), enroll (exchange it once for an
// auth token and a signing secret), rotate, delete, and the check the /ws handshake runs.
import { randomUUID } from 'node:crypto';
import type { AppContext } from '../../core/context.ts';
import { AppError } from '../../core/errors/errors.ts';
import { hashToken, mintToken, randomToken, tokenMatches, TOKEN_PREFIX } from '../../core/crypto/tokens.ts';
import { NODE_REGISTRATION_FAILED } from '../../core/relay/node-relay.ts';
import type { Principal } from '../../core/identity/identity.ts';
import { createNodesStore, type NodeRow } from './nodes-store.ts';

export interface NodeCredentials {
  node_id: string;
  auth_token: string;
  signing_secret: string;
}

export interface Registration {
  id: string;
  name: string;
  registration_token: string;
  expires_at: string;
}

const aad = (id: string) => `node:${id}`;

export function createNodesService(ctx: Pick<AppContext, 'db' | 'secretBox' | 'config'>) {
  const store = createNodesStore(ctx.db);
  const mintCredentials = () => ({ authToken: mintToken(TOKEN_PREFIX.nodeAuth), secret: randomToken(32) });
  const registrationToken = (ttlSeconds?: number) => {
    const ttl = Math.min(ttlSeconds ?? Infinity, ctx.config.hub.registrationTtlSeconds);
    return { token: mintToken(TOKEN_PREFIX.nodeRegistration), expiresAt: new Date(Date.now() + ttl * 1000).toISOString() };
  };

  return {
    store,

    /**
     * `ttlSeconds` may shorten the configured lifetime of the registration token, never extend it.
     * A name is its owner's handle on the node (the CLI and console take it for the id), so an owner
     * cannot have two nodes of one name: enrolling the existing one again takes a new token for it.
     */
    register(owner: Principal, name: string, ttlSeconds?: number): Registration {
      const id = randomUUID();
      const { token, expiresAt } = registrationToken(ttlSeconds);
      const taken = store.create({ id, owner_id: owner.userId, name, hash: hashToken(token), expires_at: expiresAt });
      if (taken) {
        throw new AppError('conflict', `a node named "${name}" exists already (id ${taken}); to enroll it again, get a new registration token for it: POST /api/v1/nodes/${taken}/registration-token (nexus node token ${name})`, { details: { param: 'name', node_id: taken } });
      }
      return { id, name, registration_token: token, expires_at: expiresAt };
    },

    /**
     * A new registration token for an existing node (enrolled or not): enrolling with it gives the
     * node new credentials under the same id, so its service bindings stay. It replaces any token the
     * node still had; the node's current credentials keep working until the new enrollment.
     */
    reissueRegistration(node: NodeRow, ttlSeconds?: number): Registration {
      const { token, expiresAt } = registrationToken(ttlSeconds);
      if (!store.reissueRegistration(node.id, hashToken(token), expiresAt)) throw new AppError('not_found', 'node not found');
      return { id: node.id, name: node.name, registration_token: token, expires_at: expiresAt };
    },

    /** Exchanges a registration token once. Unknown, used and expired tokens all fail alike (8003). */
    enroll(registrationToken: string): NodeCredentials {
      const fail = () => new AppError('unauthorized', 'node registration failed: the token is unknown, expired or already used', { numericCode: NODE_REGISTRATION_FAILED });
      if (!registrationToken.startsWith(TOKEN_PREFIX.nodeRegistration) || registrationToken.length > 100) throw fail();
      const { authToken, secret } = mintCredentials();
      const id = store.consumeRegistration(hashToken(registrationToken), hashToken(authToken), (nodeId) => ctx.secretBox.seal(secret, aad(nodeId)));
      if (!id) throw fail();
      return { node_id: id, auth_token: authToken, signing_secret: secret };
    },

    /** New auth token and signing secret; the old ones stop working at once. */
    rotate(id: string): NodeCredentials {
      const { authToken, secret } = mintCredentials();
      if (!store.rotate(id, hashToken(authToken), ctx.secretBox.seal(secret, aad(id)))) {
        throw new AppError('conflict', 'node has not enrolled yet; nothing to rotate');
      }
      return { node_id: id, auth_token: authToken, signing_secret: secret };
    },

    /** The signing secret when `authToken` is the node's current token, else null. */
    verify(nodeId: string, authToken: string): string | null {
      if (typeof nodeId !== 'string' || nodeId.length > 64 || typeof authToken !== 'string' || authToken.length > 100) return null;
      const row = store.secrets(nodeId);
      if (!row?.auth_token_hash || !row.signing_secret_sealed) return null;
      if (!tokenMatches(authToken, row.auth_token_hash)) return null;
      return ctx.secretBox.open(row.signing_secret_sealed, aad(nodeId));
    },

    /** A node the principal may see and use: its own, or any for an admin. Others look nonexistent. */
    visible(principal: Principal, id: string): NodeRow {
      const node = store.get(id);
      if (!node || (node.owner_id !== principal.userId && principal.role !== 'admin')) throw new AppError('not_found', 'node not found');
      return node;
    },
  };
}

export type NodesService = ReturnType<typeof createNodesService>;
