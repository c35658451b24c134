-- A rotated virtual key keeps its id, limits, spend and usage; its secret changes. The secret it had
-- before is remembered (hash, or public id and sealed secret for id.secret keys) so that it keeps
-- working until previous_valid_until (a grace period for callers to switch; NULL: not at all), and
-- is refused afterwards as "rotated" rather than unknown.
ALTER TABLE gateway_virtual_keys ADD COLUMN previous_key_hash TEXT;
ALTER TABLE gateway_virtual_keys ADD COLUMN previous_public_id TEXT;
ALTER TABLE gateway_virtual_keys ADD COLUMN previous_secret_sealed TEXT;
ALTER TABLE gateway_virtual_keys ADD COLUMN previous_valid_until TEXT;
ALTER TABLE gateway_virtual_keys ADD COLUMN rotated_at TEXT;
CREATE UNIQUE INDEX gateway_virtual_keys_previous_hash ON gateway_virtual_keys (previous_key_hash) WHERE previous_key_hash IS NOT NULL;
CREATE UNIQUE INDEX gateway_virtual_keys_previous_public_id ON gateway_virtual_keys (previous_public_id) WHERE previous_public_id IS NOT NULL;
