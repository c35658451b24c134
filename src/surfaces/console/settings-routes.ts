// Appliance settings the console edits: public URL, session lifetime, the TLS certificate. Admin
// only. Single sign-on settings live in oidc/oidc-routes.ts.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../../core/context.ts';
import { AppError } from '../../core/errors/errors.ts';
import { actorOf, requireAdmin } from '../../core/http/auth.ts';
import { SETTING } from '../../core/settings/settings-store.ts';
import { MAX_PEM_BYTES, checkCertificate, readCertificate, storeCertificate, tlsPaths } from './tls.ts';

const putBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    public_url: { type: ['string', 'null'], maxLength: 2048 },
    session_ttl_seconds: { type: 'integer', minimum: 300, maximum: 30 * 86400 },
  },
} as const;

const tlsBody = {
  type: 'object',
  required: ['certificate', 'private_key'],
  additionalProperties: false,
  properties: {
    certificate: { type: 'string', minLength: 1, maxLength: MAX_PEM_BYTES },
    private_key: { type: 'string', minLength: 1, maxLength: MAX_PEM_BYTES },
  },
} as const;

/** An origin (scheme://host[:port]) users reach the appliance at; paths, queries and credentials are refused. */
export function normalizePublicUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    throw new AppError('validation_failed', 'public_url is not a URL', { details: { param: 'public_url' } });
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new AppError('validation_failed', 'public_url must start with https:// or http://', { details: { param: 'public_url' } });
  if (u.username || u.password) throw new AppError('validation_failed', 'public_url must not contain credentials', { details: { param: 'public_url' } });
  if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) throw new AppError('validation_failed', 'public_url must be an origin without a path, e.g. https://nexus.example.com', { details: { param: 'public_url' } });
  return u.origin;
}

function view(ctx: AppContext, req: FastifyRequest) {
  return {
    public_url: ctx.settings.get<string>(SETTING.publicUrl) ?? ctx.config.publicUrl,
    // What the browser used to reach us (nginx passes X-Forwarded-Proto/Host from a trusted hop).
    detected_public_url: ctx.config.publicUrl ?? `${req.protocol}://${req.host}`,
    session_ttl_seconds: ctx.settings.get<number>(SETTING.sessionTtlSeconds) ?? ctx.config.session.ttlSeconds,
  };
}

export function settingsRoutes(app: FastifyInstance, ctx: AppContext) {
  const admin = { preHandler: requireAdmin(ctx) };

  app.get('/api/v1/settings', admin, async (req) => view(ctx, req));

  app.put<{ Body: { public_url?: string | null; session_ttl_seconds?: number } }>('/api/v1/settings', { ...admin, schema: { body: putBody } }, async (req) => {
    const { public_url, session_ttl_seconds } = req.body;
    if (public_url !== undefined) {
      if (public_url === null || public_url === '') ctx.settings.delete(SETTING.publicUrl);
      else ctx.settings.set(SETTING.publicUrl, normalizePublicUrl(public_url));
    }
    if (session_ttl_seconds !== undefined) ctx.settings.set(SETTING.sessionTtlSeconds, session_ttl_seconds);
    ctx.audit.record({ ...actorOf(req), action: 'settings.update', target_type: 'settings', outcome: 'success', details: { fields: Object.keys(req.body) } });
    return view(ctx, req);
  });

  const tlsView = () => {
    const p = tlsPaths(ctx.config.dataDir);
    return { certificate: readCertificate(ctx.config.dataDir), cert_path: p.cert, key_path: p.key };
  };

  app.get('/api/v1/settings/tls', admin, async () => tlsView());

  app.put<{ Body: { certificate: string; private_key: string } }>('/api/v1/settings/tls', {
    ...admin,
    bodyLimit: 4 * MAX_PEM_BYTES,
    schema: { body: tlsBody },
  }, async (req) => {
    const cert = checkCertificate(req.body.certificate, req.body.private_key);
    storeCertificate(ctx.config.dataDir, req.body.certificate, req.body.private_key);
    ctx.audit.record({ ...actorOf(req), action: 'settings.tls.update', target_type: 'tls_certificate', target_id: cert.fingerprint_sha256, outcome: 'success', details: { subject: cert.subject, valid_to: cert.valid_to } });
    return tlsView();
  });
}
