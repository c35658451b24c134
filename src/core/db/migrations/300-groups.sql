-- Groups are an identity concept every surface may consult (role and allowed models of their members).
-- They arrive by SCIM today; the mapping columns are set in the control plane.
CREATE TABLE groups (
  id           TEXT PRIMARY KEY,
  display_name TEXT NOT NULL COLLATE NOCASE UNIQUE,
  external_id  TEXT,
  source       TEXT NOT NULL DEFAULT 'scim' CHECK (source IN ('local', 'scim')),
  role         TEXT CHECK (role IN ('admin', 'member')),   -- NULL: the group grants no role
  models       TEXT,                                       -- JSON array of model names; NULL: no restriction
  version      INTEGER NOT NULL DEFAULT 1,
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL
);
CREATE INDEX groups_external ON groups (external_id);

CREATE TABLE group_members (
  group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
  user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  display  TEXT,
  PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id, group_id);
