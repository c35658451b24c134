-- AI gateway: providers (upstream accounts), public models mapped to deployments, virtual keys, usage.
CREATE TABLE gateway_providers (
  id              TEXT PRIMARY KEY,
  name            TEXT NOT NULL COLLATE NOCASE UNIQUE,
  type            TEXT NOT NULL CHECK (type IN ('openai', 'azure', 'gemini', 'glm', 'anthropic', 'openai-compatible')),
  base_url        TEXT NOT NULL,
  -- AES-256-GCM via the secret box, bound to the row ("provider:<id>"); never returned by the API.
  api_key_sealed  TEXT,
  api_version     TEXT,
  node_id         TEXT,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL
);

CREATE TABLE gateway_models (
  id                     TEXT PRIMARY KEY,
  name                   TEXT NOT NULL UNIQUE,
  input_price_per_mtok   REAL NOT NULL DEFAULT 0,
  output_price_per_mtok  REAL NOT NULL DEFAULT 0,
  created_at             TEXT NOT NULL,
  updated_at             TEXT NOT NULL
);

CREATE TABLE gateway_deployments (
  id              TEXT PRIMARY KEY,
  model_id        TEXT NOT NULL REFERENCES gateway_models (id) ON DELETE CASCADE,
  provider_id     TEXT NOT NULL REFERENCES gateway_providers (id) ON DELETE RESTRICT,
  upstream_model  TEXT NOT NULL,
  weight          INTEGER NOT NULL DEFAULT 1,
  priority        INTEGER NOT NULL DEFAULT 0,
  position        INTEGER NOT NULL
);
CREATE INDEX gateway_deployments_model ON gateway_deployments (model_id);
CREATE INDEX gateway_deployments_provider ON gateway_deployments (provider_id);

CREATE TABLE gateway_virtual_keys (
  id              TEXT PRIMARY KEY,
  name            TEXT NOT NULL,
  key_hash        TEXT NOT NULL UNIQUE,
  hint            TEXT NOT NULL,
  -- 'standard' (nx_vk_…) or 'id_secret' (nx_vk_<id>.<secret>, usable for Zhipu's JWT scheme).
  format          TEXT NOT NULL DEFAULT 'standard' CHECK (format IN ('standard', 'id_secret')),
  -- For id_secret keys: the public id part, and the HMAC secret sealed ("vk:<id>"), because
  -- verifying an HS256 JWT needs the secret itself, not a hash of it.
  public_id       TEXT UNIQUE,
  secret_sealed   TEXT,
  user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  models          TEXT,
  max_budget_usd  REAL,
  spent_usd       REAL NOT NULL DEFAULT 0,
  rpm             INTEGER,
  tpm             INTEGER,
  expires_at      TEXT,
  revoked_at      TEXT,
  created_at      TEXT NOT NULL,
  last_used_at    TEXT
);
CREATE INDEX gateway_virtual_keys_user ON gateway_virtual_keys (user_id);

CREATE TABLE gateway_usage (
  id                INTEGER PRIMARY KEY,
  ts                TEXT NOT NULL,
  key_id            TEXT,
  user_id           TEXT,
  model             TEXT NOT NULL,
  provider_id       TEXT,
  deployment_id     TEXT,
  upstream_model    TEXT,
  ingress           TEXT NOT NULL,
  operation         TEXT NOT NULL,
  stream            INTEGER NOT NULL DEFAULT 0,
  input_tokens      INTEGER NOT NULL DEFAULT 0,
  output_tokens     INTEGER NOT NULL DEFAULT 0,
  cached_tokens     INTEGER NOT NULL DEFAULT 0,
  reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
  cost_usd          REAL NOT NULL DEFAULT 0,
  latency_ms        REAL,
  ttft_ms           REAL,
  status            INTEGER NOT NULL,
  error_code        TEXT,
  routed_via        TEXT NOT NULL DEFAULT 'direct',
  node_id           TEXT
);
CREATE INDEX gateway_usage_ts ON gateway_usage (ts);
CREATE INDEX gateway_usage_key ON gateway_usage (key_id, ts);
CREATE INDEX gateway_usage_user ON gateway_usage (user_id, ts);
