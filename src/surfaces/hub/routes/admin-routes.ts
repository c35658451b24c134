// Loopback admin API (admin listener only): connected agents and a disconnect action.
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../../core/errors/errors.ts';
import { CLOSE } from '../../../protocol/version.ts';
import type { Hub } from '../hub.ts';

export function adminRoutes(app: FastifyInstance, hub: Hub) {
  app.get('/api/hub/agents', async () => {
    const names = new Map(hub.nodes.store.list().map((n) => [n.id, n.name]));
    return { items: hub.registry.list().map((a) => ({ ...a, name: names.get(a.node_id) ?? null })) };
  });

  app.get<{ Params: { id: string } }>('/api/hub/agents/:id/streams', async (req) => {
    const s = hub.registry.get(req.params.id);
    if (!s) throw new AppError('not_found', 'agent not connected');
    return { items: s.mux.list().map((st) => ({ id: st.id, opened_at: new Date(st.openedAt).toISOString(), bytes_in: st.bytesIn, bytes_out: st.bytesOut, buffered: st.buffered })) };
  });

  app.post<{ Params: { id: string } }>('/api/hub/agents/:id/disconnect', async (req, reply) => {
    if (!hub.registry.disconnect(req.params.id, CLOSE.disconnected, 'disconnected by an administrator')) {
      throw new AppError('not_found', 'agent not connected');
    }
    return reply.code(204).send();
  });
}
