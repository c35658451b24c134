-- A virtual key may be charged to a group: its calls then count against the group's budget too
-- (groups.max_budget_usd, migration 302). No foreign key: a key whose group is deleted is refused
-- until it is re-assigned or cleared, rather than silently escaping the budget.
ALTER TABLE gateway_virtual_keys ADD COLUMN group_id TEXT;
CREATE INDEX gateway_virtual_keys_group ON gateway_virtual_keys (group_id) WHERE group_id IS NOT NULL;
