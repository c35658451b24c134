-- Exact-match response cache: how long a model's answers are kept (null: not cached), and which
-- usage rows were answered from the cache (nothing reached a provider, nothing charged).
ALTER TABLE gateway_models ADD COLUMN cache_ttl_seconds INTEGER;
ALTER TABLE gateway_usage ADD COLUMN cache_hit INTEGER NOT NULL DEFAULT 0;
