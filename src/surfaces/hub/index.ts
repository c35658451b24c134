// Hub: node enrollment, the agents' WebSocket (/ws), services and the service proxy, and the loopback
// admin view of connected agents. Errors render as `{error:{code,message}}` with numeric hub codes.
import websocket from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import { addAnswerHeaders, handleProtocols } from '../../core/http/websocket-protocol.ts';
import type { Surface } from '../../core/surface.ts';
import { CLOSE } from '../../protocol/version.ts';
import { hubFor } from './hub.ts';
import { longPollRoutes } from './long-poll.ts';
import { sendHubError } from './http.ts';
import { adminRoutes } from './routes/admin-routes.ts';
import { keysRoutes } from './routes/keys-routes.ts';
import { nodesRoutes } from './routes/nodes-routes.ts';
import { proxyRoutes } from './routes/proxy-routes.ts';
import { wsRoutes } from './routes/ws-routes.ts';

export const hubSurface: Surface = {
  name: 'hub',
  async register(app, ctx) {
    const hub = hubFor(ctx);
    app.setErrorHandler(sendHubError);
    app.addHook('onClose', async () => hub.close());
    // The appliance's only WebSocket endpoints: /ws and pass-through under the proxy. A route may
    // decide the handshake's subprotocol and extra headers itself (core/http/websocket-protocol.ts).
    await app.register(websocket, {
      options: { maxPayload: 16 * 1024 * 1024, handleProtocols },
      // Shutdown starts here, before the server waits for its connections: every agent is told 1001
      // (over /ws, or as a close frame answering its pending long-poll at once) and its relayed
      // streams end, then the proxy's pass-through WebSockets get 1001 as well. The plugin's own
      // default closes every socket without a code first, and the agent saw no 1001.
      preClose(this: FastifyInstance, done: () => void) {
        hub.goingAway();
        for (const client of this.websocketServer.clients) client.close(CLOSE.goingAway, 'the appliance is shutting down');
        this.websocketServer.close();
        done();
      },
    });
    app.websocketServer.on('headers', addAnswerHeaders);
    nodesRoutes(app, ctx, hub);
    keysRoutes(app, ctx, hub);
    wsRoutes(app, hub);
    await app.register(async (scope) => longPollRoutes(scope, hub));
    await app.register(async (scope) => proxyRoutes(scope, ctx, hub));
  },
  registerAdmin(app, ctx) {
    const hub = hubFor(ctx);
    app.setErrorHandler(sendHubError);
    adminRoutes(app, hub);
  },
  upgrades: (url) => url === '/ws' || url.startsWith('/ws?') || url.startsWith('/ws/') || url.startsWith('/api/v1/proxy/'),
  notFound: {
    match: (url) => url.startsWith('/api/v1/proxy/') || url.startsWith('/api/internal/things/') || url.startsWith('/api/hub/'),
    send: (_req, reply) => reply.code(404).send({ error: { code: 'not_found', message: 'no such route' } }),
  },
};
