// GET /ws: agents dial out to here. The subprotocol, handshake and everything after live in
// agent-session.ts; a plain GET (no upgrade) is told what this endpoint expects.
import type { FastifyInstance } from 'fastify';
import { SUBPROTOCOL } from '../../../protocol/version.ts';
import type { Hub } from '../hub.ts';

export function wsRoutes(app: FastifyInstance, hub: Hub) {
  app.route({
    method: 'GET',
    url: '/ws',
    handler: async (_req, reply) =>
      reply.code(426).header('upgrade', 'websocket').send({ error: { code: 'upgrade_required', message: `connect with a WebSocket using subprotocol ${SUBPROTOCOL}` } }),
    wsHandler: (socket, req) => hub.accept(socket, req.ip, req.raw.socket),
  });
}
