-- A virtual key's budget may renew every UTC day, ISO week (from Monday) or calendar month. Then
-- spent_usd is what the key spent since budget_period_start; a row whose start is older than the
-- current period's has spent nothing in it yet (the next settled spend replaces the old figure).
ALTER TABLE gateway_virtual_keys ADD COLUMN budget_period TEXT CHECK (budget_period IN ('day', 'week', 'month'));
ALTER TABLE gateway_virtual_keys ADD COLUMN budget_period_start TEXT;
