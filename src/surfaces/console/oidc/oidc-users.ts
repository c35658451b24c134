// Which Nexus user an ID token signs in: the SCIM-provisioned (or local) user whose userName is
// the token's preferred_username or email, else whose email is the token's email. Unknown people
// are refused unless just-in-time creation is on.
//
// preferred_username is neither unique nor stable (OpenID Connect Core §5.7: relying parties "MUST
// NOT rely upon" it), so it never opens a local account that has a password — the first-boot admin
// above all: an identity-provider account named "admin" is not proof of owning the appliance's
// admin. Such an account is signed in by SSO only through an email the provider says it verified.
import type { JWTPayload } from 'jose';
import type { AppContext } from '../../../core/context.ts';
import { AppError } from '../../../core/errors/errors.ts';
import type { User } from '../../../core/identity/identity.ts';

export async function userForClaims(ctx: AppContext, claims: JWTPayload, jit: boolean): Promise<{ user: User; created: boolean }> {
  const str = (v: unknown) => (typeof v === 'string' && v.trim() ? v.trim() : null);
  const preferred = str(claims.preferred_username) ?? str(claims.upn);
  // An address the provider says it has not verified must not take over an account.
  const email = claims.email_verified === false ? null : str(claims.email);
  const emailVerified = email !== null && claims.email_verified === true;
  const users = ctx.identity.users;
  const passwordAccount = (u: User) => u.source === 'local' && users.passwordHash(u.id) !== null;
  const candidates: { user: User | undefined; byVerifiedEmail: boolean }[] = [
    { user: preferred ? users.getByUsername(preferred) : undefined, byVerifiedEmail: false },
    { user: email ? users.getByUsername(email) : undefined, byVerifiedEmail: emailVerified },
    { user: email ? users.getByEmail(email) : undefined, byVerifiedEmail: emailVerified },
  ];
  let passwordOnly: User | undefined;
  for (const { user, byVerifiedEmail } of candidates) {
    if (!user) continue;
    if (passwordAccount(user) && !byVerifiedEmail) {
      passwordOnly ??= user;
      continue;
    }
    if (!user.active) throw new AppError('forbidden', `the Nexus account ${user.username} is deactivated`);
    return { user, created: false };
  }
  if (passwordOnly) {
    throw new AppError('forbidden', `the Nexus account ${passwordOnly.username} signs in with its password; single sign-on reaches it only through an email address your identity provider has verified`);
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
