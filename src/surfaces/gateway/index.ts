// The AI gateway surface: OpenAI, Gemini, Anthropic, Azure OpenAI and Zhipu GLM ingress under /v1,
// /v1beta, /openai and /api/paas, each rendering errors in its own wire format, plus the gateway's admin API
// under /api/v1 (providers, models, virtual keys, usage).
import type { AppContext } from '../../core/context.ts';
import type { Surface } from '../../core/surface.ts';
import { adminRoutes, sendAdminError } from './admin/admin-routes.ts';
import { createCatalog } from './catalog/catalog.ts';
import { createGatewayService } from './engine/gateway-service.ts';
import { ResponseCache } from './engine/response-cache.ts';
import { createRouter } from './engine/router.ts';
import { createUpstream } from './engine/upstream.ts';
import { anthropicRoutes } from './ingress/anthropic/anthropic-routes.ts';
import { azureRoutes } from './ingress/azure/azure-routes.ts';
import { geminiRoutes } from './ingress/gemini/gemini-routes.ts';
import type { IngressDeps, IngressHandler } from './ingress/call.ts';
import { glmRoutes } from './ingress/glm/glm-routes.ts';
import { acceptAudioForms } from './ingress/openai/audio-routes.ts';
import { openAiRoutes } from './ingress/openai/openai-routes.ts';
import { isGatewayPath, sendGatewayError, sendGatewayLaneError, sendGatewayNotFound } from './ingress/wire-format.ts';
import { createVirtualKeys } from './keys/virtual-keys.ts';
import { createGatewayMetrics } from './usage/gateway-metrics.ts';
import { createUsageRecorder } from './usage/usage-recorder.ts';

function createGateway(ctx: AppContext) {
  const cfg = ctx.config.gateway;
  const router = createRouter(cfg.cooldownSeconds);
  const catalog = createCatalog(ctx.db, ctx.secretBox, { forget: (ids) => router.forget(ids) });
  const keys = createVirtualKeys({
    db: ctx.db,
    secretBox: ctx.secretBox,
    events: ctx.events,
    users: ctx.identity.users,
    groups: ctx.identity.groups.store,
    allowedModelsForUser: (id) => ctx.identity.groups.allowedModelsForUser(id),
    flushUsage: () => usage.flush(),
  });
  // Group budgets are counted here (usage rows and live counters); the groups API shows them.
  ctx.identity.groups.countBudgetsWith((g) => keys.groupBudget(g));
  const usage = createUsageRecorder(ctx.db, keys, ctx.log, ctx.writer);
  const upstream = createUpstream(ctx.relay, {
    connectTimeoutMs: cfg.connectTimeoutSeconds * 1000,
    headersTimeoutMs: cfg.firstByteTimeoutSeconds * 1000,
    bodyTimeoutMs: cfg.maxStreamSeconds * 1000,
  });
  const cache = new ResponseCache(cfg.cacheMaxBytes);
  const service = createGatewayService({
    catalog,
    keys,
    usage,
    upstream,
    router,
    log: ctx.log,
    maxStreamMs: cfg.maxStreamSeconds * 1000,
    reserveOutputTokens: cfg.reserveOutputTokens,
    audit: ctx.audit,
    metrics: createGatewayMetrics(ctx.metrics.registry, () => cache.size),
    cache,
    tracing: ctx.tracing,
  });
  return { catalog, keys, usage, upstream, service, router };
}

export const gatewaySurface: Surface = {
  name: 'gateway',
  async register(app, ctx) {
    const gw = createGateway(ctx);
    app.addHook('onClose', async () => {
      gw.usage.close();
      gw.keys.close();
      await gw.upstream.close();
    });
    await app.register(async (admin) => {
      admin.setErrorHandler(sendAdminError);
      adminRoutes(admin, ctx, gw);
    });
    await app.register(async (ingress) => {
      ingress.setErrorHandler(sendGatewayError);
      // Chat requests carry images and audio inline (base64): the gateway's own, larger body limit.
      ingress.addHook('onRoute', (route) => {
        route.bodyLimit ??= ctx.config.gateway.bodyLimitBytes;
      });
      acceptAudioForms(ingress); // audio uploads (multipart/form-data), within the same body limit
      // The hot JSON routes are also served by the public listener's fast lane (core/http/fast-lane.ts).
      const fast = ingress.fastLane ?? null;
      const bodyLimit = ctx.config.gateway.bodyLimitBytes;
      const lane = fast && { post: (path: string, handler: IngressHandler) => fast.post(path, handler, { bodyLimit, onError: sendGatewayLaneError, surface: 'gateway' }) };
      const deps: IngressDeps = { service: gw.service, keys: gw.keys, tracing: ctx.tracing, ...(lane ? { lane } : {}) };
      openAiRoutes(ingress, deps);
      geminiRoutes(ingress, deps);
      azureRoutes(ingress, deps);
      glmRoutes(ingress, deps);
      anthropicRoutes(ingress, deps);
    });
  },
  notFound: {
    match: (url) => isGatewayPath(url),
    send: sendGatewayNotFound,
  },
};
