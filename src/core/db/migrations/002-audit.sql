-- Append-only audit log. Every surface writes here (DESIGN.md §3 "Audit").
CREATE TABLE audit_log (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  ts          TEXT NOT NULL,
  actor_type  TEXT NOT NULL,            -- user | token | virtual_key | scim | node | system | anonymous
  actor_id    TEXT,
  actor_name  TEXT,
  action      TEXT NOT NULL,            -- e.g. auth.login, token.create, proxy.request
  target_type TEXT,
  target_id   TEXT,
  outcome     TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
  source_ip   TEXT,
  routed_via  TEXT,                     -- direct | node (proxied requests)
  node_id     TEXT,
  status      INTEGER,
  details     TEXT                      -- JSON, never secrets
);
CREATE INDEX audit_action ON audit_log (action, id);
CREATE INDEX audit_actor ON audit_log (actor_name, id);
CREATE INDEX audit_node ON audit_log (node_id, id);
CREATE INDEX audit_ts ON audit_log (ts);
