-- Console and single sign-on: one-time codes the CLI exchanges for a personal token, and pending
-- OIDC sign-ins (state → nonce, PKCE verifier). Both rows are short-lived and single use.
CREATE TABLE cli_codes (
  code_hash   TEXT PRIMARY KEY,
  user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at  TEXT NOT NULL,
  expires_at  TEXT NOT NULL
);
CREATE INDEX cli_codes_expiry ON cli_codes (expires_at);

CREATE TABLE oidc_logins (
  state_hash    TEXT PRIMARY KEY,
  nonce         TEXT NOT NULL,
  code_verifier TEXT NOT NULL,
  return_to     TEXT NOT NULL,
  created_at    TEXT NOT NULL,
  expires_at    TEXT NOT NULL
);
CREATE INDEX oidc_logins_expiry ON oidc_logins (expires_at);
