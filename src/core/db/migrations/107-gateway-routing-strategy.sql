-- How a model's deployments of one priority share its calls: weighted (random by weight), least_busy
-- (fewest in flight) or latency (fastest to answer); engine/router.ts.
ALTER TABLE gateway_models ADD COLUMN routing_strategy TEXT NOT NULL DEFAULT 'weighted'
  CHECK (routing_strategy IN ('weighted', 'least_busy', 'latency'));
