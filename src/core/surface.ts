// The contract between server/app.ts (the composition root) and each surface.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from './context.ts';

export interface Surface {
  name: string;
  /** Registers public routes inside the surface's own encapsulated scope. */
  register(app: FastifyInstance, ctx: AppContext): Promise<void> | void;
  /** Registers routes on the loopback admin listener. */
  registerAdmin?(app: FastifyInstance, ctx: AppContext): Promise<void> | void;
  /**
   * Paths where a WebSocket handshake is taken (the surface registers @fastify/websocket in its own
   * scope); a handshake anywhere else is handled as a plain HTTP request.
   */
  upgrades?(url: string): boolean;
  /** Unknown paths under these prefixes get a 404 in this surface's wire format. */
  notFound?: { match(url: string, req: FastifyRequest): boolean; send(req: FastifyRequest, reply: FastifyReply): unknown };
}
