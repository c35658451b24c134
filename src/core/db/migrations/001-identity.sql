-- Users, sessions, personal API tokens and appliance settings.
CREATE TABLE users (
  id             TEXT PRIMARY KEY,
  username       TEXT NOT NULL COLLATE NOCASE UNIQUE,
  email          TEXT COLLATE NOCASE,
  display_name   TEXT,
  password_hash  TEXT,
  role           TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member')),
  active         INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
  source         TEXT NOT NULL DEFAULT 'local' CHECK (source IN ('local', 'scim', 'oidc')),
  external_id    TEXT,
  created_at     TEXT NOT NULL,
  updated_at     TEXT NOT NULL,
  deactivated_at TEXT
);
CREATE INDEX users_email ON users (email);

CREATE TABLE sessions (
  id_hash      TEXT PRIMARY KEY,
  user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at   TEXT NOT NULL,
  expires_at   TEXT NOT NULL,
  source_ip    TEXT,
  user_agent   TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE api_tokens (
  id           TEXT PRIMARY KEY,
  user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name         TEXT NOT NULL,
  token_hash   TEXT NOT NULL UNIQUE,
  hint         TEXT NOT NULL,
  created_at   TEXT NOT NULL,
  expires_at   TEXT,
  last_used_at TEXT,
  revoked_at   TEXT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE settings (
  key        TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
