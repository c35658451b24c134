-- A group's AI gateway budget across the virtual keys charged to it, for the group's whole life or
-- renewing every UTC day, ISO week or calendar month. Set in the control plane, never by SCIM; what
-- the group spent is counted from the gateway's usage rows of those keys.
ALTER TABLE groups ADD COLUMN max_budget_usd REAL;
ALTER TABLE groups ADD COLUMN budget_period TEXT CHECK (budget_period IN ('day', 'week', 'month'));
