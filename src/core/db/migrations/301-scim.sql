-- SCIM-only attributes of users provisioned by an identity provider (RFC 7643 §4.1, §4.3). The user
-- itself lives in `users` (source 'scim'); this row holds what only SCIM speaks of.
CREATE TABLE scim_users (
  user_id     TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  external_id TEXT,
  attrs       TEXT NOT NULL DEFAULT '{}',   -- canonical SCIM JSON: name, emails, phoneNumbers, addresses, enterprise extension…
  version     INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX scim_users_external ON scim_users (external_id);

-- Bearer tokens identity providers present on /scim/v2 (nx_scim_…), stored only as SHA-256.
CREATE TABLE scim_tokens (
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  token_hash   TEXT NOT NULL UNIQUE,
  hint         TEXT NOT NULL,
  created_by   TEXT,
  created_at   TEXT NOT NULL,
  last_used_at TEXT,
  revoked_at   TEXT
);
