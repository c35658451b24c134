-- Every gateway call and every proxied request appends an audit row, so each index on audit_log is
-- paid thousands of times a second. Two of them did no work for what they cost:
-- - audit_node indexed every row, though node_id is set only on requests routed through a node;
--   partial now (a `node_id = ?` filter implies node_id IS NOT NULL, so SQLite still uses it).
-- - audit_actor (actor_name, id) served no query: the audit API's actor filter matches the name OR
--   the id, and SQLite can use an index for an OR only when every branch has one, so it scanned
--   with or without it.
DROP INDEX audit_node;
CREATE INDEX audit_node ON audit_log (node_id, id) WHERE node_id IS NOT NULL;
DROP INDEX audit_actor;
