-- Hub: enrolled nodes (remote agents) and the services the proxy serves, direct or through nodes.
CREATE TABLE nodes (
  id                       TEXT PRIMARY KEY,
  owner_id                 TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name                     TEXT NOT NULL,
  registration_token_hash  TEXT UNIQUE,          -- NULL once consumed
  registration_expires_at  TEXT,
  auth_token_hash          TEXT UNIQUE,          -- nx_nauth_…, SHA-256
  signing_secret_sealed    TEXT,                 -- AES-256-GCM under the master key, aad "node:<id>"
  enrolled_at              TEXT,
  last_seen_at             TEXT,
  created_at               TEXT NOT NULL,
  updated_at               TEXT NOT NULL
);
CREATE INDEX nodes_owner ON nodes (owner_id);

CREATE TABLE services (
  id                 TEXT PRIMARY KEY,
  owner_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  slug               TEXT NOT NULL,
  label              TEXT,
  endpoint_url       TEXT NOT NULL,
  auth_method        TEXT NOT NULL CHECK (auth_method IN ('bearer', 'bot_bearer', 'header', 'query', 'path', 'basic', 'body', 'none')),
  auth_key_name      TEXT,
  credential_sealed  TEXT,                       -- direct services only; aad "service:<id>"
  created_at         TEXT NOT NULL,
  UNIQUE (owner_id, slug)
);

-- Services routed through nodes: tried by priority (lower first), weighted round robin within one.
CREATE TABLE service_nodes (
  service_id  TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
  node_id     TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
  priority    INTEGER NOT NULL DEFAULT 0,
  weight      INTEGER NOT NULL DEFAULT 1,
  PRIMARY KEY (service_id, node_id)
);
CREATE INDEX service_nodes_node ON service_nodes (node_id);
