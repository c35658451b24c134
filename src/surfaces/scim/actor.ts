// Who is writing through SCIM: the token the identity provider presented. Every write is audited
// with actor_type 'scim' (DESIGN.md §3 "Audit").
import type { AppContext } from '../../core/context.ts';

export interface ScimActor {
  tokenId: string;
  tokenName: string;
  ip: string;
}

export function auditScim(ctx: AppContext, actor: ScimActor, action: string, target: { type: 'user' | 'group'; id: string | null }, details: Record<string, unknown>, outcome: 'success' | 'failure' = 'success') {
  ctx.audit.record({
    actor_type: 'scim',
    actor_id: actor.tokenId,
    actor_name: actor.tokenName,
    action,
    target_type: target.type,
    target_id: target.id,
    outcome,
    source_ip: actor.ip,
    details,
  });
}
