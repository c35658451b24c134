-- A service's routing mode, kept rather than derived from its binding: a service routed through nodes
-- stays so when its last node is deleted (service_nodes rows go with the node) and then answers 503
-- (8002, no node bound) instead of being called directly, without a credential, from the appliance.
ALTER TABLE services ADD COLUMN routed_via TEXT NOT NULL DEFAULT 'direct' CHECK (routed_via IN ('direct', 'node'));

-- Bound services are node-routed. So is one that lost its last node before this column existed: a
-- direct service needs a stored credential unless its auth_method is none, so one without is a
-- service whose nodes were deleted. (One with auth_method none cannot be told apart and stays direct.)
UPDATE services SET routed_via = 'node'
  WHERE id IN (SELECT service_id FROM service_nodes) OR (auth_method <> 'none' AND credential_sealed IS NULL);
