// The caller's virtual key, from wherever its SDK puts it: `Authorization: Bearer` (OpenAI, GLM),
// `Authorization: <JWT>` (Zhipu SDKs), `api-key` (Azure), `x-api-key`, `x-goog-api-key` or `?key=`
// (Gemini). The value is never logged (core/log redacts these headers and parameters).
import type { IncomingHttpHeaders } from 'node:http';
import { AppError } from '../../../core/errors/errors.ts';
import type { ResolvedKey, VirtualKeys } from '../keys/virtual-keys.ts';

/** The parts of a request (fastify's or the fast lane's) a credential is read from. */
interface Credentialed {
  readonly headers: IncomingHttpHeaders;
  readonly query: unknown;
}

export function credentialFrom(req: Credentialed): string | null {
  const h = req.headers;
  const auth = h.authorization;
  if (typeof auth === 'string' && auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1]! : auth.trim();
  }
  for (const name of ['api-key', 'x-api-key', 'x-goog-api-key'] as const) {
    const v = h[name];
    if (typeof v === 'string' && v) return v.trim();
  }
  const key = (req.query as Record<string, unknown> | undefined)?.key;
  return typeof key === 'string' && key ? key : null;
}

export function authenticateKey(keys: VirtualKeys, req: Credentialed): ResolvedKey {
  const credential = credentialFrom(req);
  if (!credential) throw new AppError('unauthorized', 'missing API key: send a Nexus virtual key (nx_vk_…)');
  const res = keys.resolve(credential);
  if ('reason' in res) {
    // A key whose owner left the group it is charged to is known, just not allowed: 403, not 401.
    throw new AppError(res.reason === 'group_left' ? 'forbidden' : 'unauthorized', res.message, { details: { glm_code: res.reason === 'expired' || res.message.includes('expired') ? '1003' : '1000' } });
  }
  return res;
}
