-- Cached input tokens priced at their own rate when set (providers bill prompt-cache hits lower);
-- NULL prices them like other input tokens.
ALTER TABLE gateway_models ADD COLUMN cached_input_price_per_mtok REAL;
