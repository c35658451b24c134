-- A user's AI gateway budget across all of their virtual keys, for the user's whole life or renewing
-- every UTC day, ISO week or calendar month. What they spent is counted from the gateway's usage rows.
ALTER TABLE users ADD COLUMN max_budget_usd REAL;
ALTER TABLE users ADD COLUMN budget_period TEXT CHECK (budget_period IN ('day', 'week', 'month'));
