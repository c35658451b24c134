// Which Nexus user an ID token signs in: the SCIM-provisioned (or local) user whose userName is
// the token's preferred_username or email, else whose email is the token's email. Unknown people
// are refused unless just-in-time creation is on.
import type { JWTPayload } from 'jose';
import type { AppContext } from '../../../core/context.ts';
import { AppError } from '../../../core/errors/errors.ts';
import type { User } from '../../../core/identity/identity.ts';

export async function userForClaims(ctx: AppContext, claims: JWTPayload, jit: boolean): Promise<{ user: User; created: boolean }> {
  const str = (v: unknown) => (typeof v === 'string' && v.trim() ? v.trim() : null);
  const preferred = str(claims.preferred_username) ?? str(claims.upn);
  // An address the provider says it has not verified must not take over an account.
  const email = claims.email_verified === false ? null : str(claims.email);
  const users = ctx.identity.users;
  const found = (preferred && users.getByUsername(preferred)) || (email && users.getByUsername(email)) || (email && users.getByEmail(email)) || undefined;
  if (found) {
    if (!found.active) throw new AppError('forbidden', `the Nexus account ${found.username} is deactivated`);
    return { user: found, created: false };
  }
  const who = preferred ?? email ?? String(claims.sub);
  if (!jit) throw new AppError('forbidden', `there is no Nexus account for ${who}; ask an administrator to provision it`);
  const username = (preferred ?? email ?? `oidc-${String(claims.sub)}`).slice(0, 128).replace(/[\s\x00-\x1f]/g, '_');
  const user = await ctx.identity.createUser({
    username,
    email,
    display_name: str(claims.name),
    role: 'member',
    source: 'oidc',
    external_id: String(claims.sub).slice(0, 255),
  });
  return { user, created: true };
}
