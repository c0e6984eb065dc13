-- Version 15: an increment that keeps its value's length takes no lock on the plugin's usage row
-- (store/postgres/kv.rs, "Increments that keep their length").
--
-- Every write of a plugin used to wait for the one before it on the plugin's usage row, which was
-- rewritten by each increment even when nothing in it changed: under load the increments of one plugin
-- queued behind each other across every conversation (BENCHMARKS.md problem 19). An increment from 41 to
-- 42 neither adds a key nor changes a byte of the usage, so it needs neither the lock nor the quota check:
-- it is one UPDATE of its own row, which the client sends on its own first and the function below also
-- tries first (it answers whatever the client sends it alone). PostgreSQL's UPDATE takes the row's lock and, if another transaction
-- changed the row meanwhile, evaluates the condition and the new value again on the row as it now is, so
-- two increments of one key never lose one. Every other write that reads a value and then writes it (the
-- full increment, compare-and-swap) locks the row it read (`FOR UPDATE`), after the usage row.
--
-- Lock order: the usage row before a key's row, everywhere. The new first step locks only a key's row,
-- and when it does not answer while the row exists (a row it may have locked on its way out), the
-- function answers NULL and takes no further lock; the client's full path then decides in a transaction
-- of its own. Only when the key has no row does it go on as version 13 did: usage row, then the key.

-- `old_value` plus `delta`, spelt as the full path spells it, if `old_value` is a plain decimal integer of
-- at most 18 digits, `delta` at most 10^18 either way (so the sum fits a bigint) and the sum has the same
-- number of bytes; NULL otherwise. Plain SQL of immutable functions only (`decode`, not `convert_to`,
-- which is stable: digits and '-' come through `escape` as they are), so that PostgreSQL inlines it
-- into the statements using it instead of planning and calling it per row; the nested CASE casts only
-- what the outer one found to be digits.
CREATE FUNCTION chathooks_kv_bumped(old_value BYTEA, delta BIGINT) RETURNS BYTEA
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN encode(old_value, 'escape') ~ '^-?[0-9]{1,18}$'
                     AND delta BETWEEN -1000000000000000000 AND 1000000000000000000
           THEN CASE WHEN octet_length((encode(old_value, 'escape')::BIGINT + delta)::TEXT)
                          = octet_length(old_value)
                     THEN decode((encode(old_value, 'escape')::BIGINT + delta)::TEXT, 'escape')
                END
           END
$$;

CREATE OR REPLACE FUNCTION chathooks_kv_increment(
    p_plugin TEXT, p_key BYTEA, p_delta BIGINT, p_now BIGINT, p_max_keys BIGINT, p_max_bytes BIGINT
) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    held_keys  BIGINT;
    held_bytes BIGINT;
    new_number BIGINT;
    new_value  BYTEA;
    add_bytes  BIGINT;
BEGIN
    UPDATE plugin_kv SET value = chathooks_kv_bumped(value, p_delta)
    WHERE plugin = p_plugin AND key = p_key AND (expires_at IS NULL OR expires_at > p_now)
      AND chathooks_kv_bumped(value, p_delta) IS NOT NULL
    RETURNING value INTO new_value;
    IF FOUND THEN
        RETURN encode(new_value, 'escape')::BIGINT;
    END IF;
    PERFORM 1 FROM plugin_kv WHERE plugin = p_plugin AND key = p_key;
    IF FOUND THEN
        RETURN NULL;
    END IF;

    -- No row: a new key, as in version 13, whose steps follow for that case.
    INSERT INTO plugin_kv_usage (plugin, keys, bytes) VALUES (p_plugin, 0, 0)
    ON CONFLICT (plugin) DO UPDATE SET keys = plugin_kv_usage.keys
    RETURNING keys, bytes INTO held_keys, held_bytes;

    -- A row written since the look above (its writer held the usage row) goes to the full path.
    PERFORM 1 FROM plugin_kv WHERE plugin = p_plugin AND key = p_key;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    new_number := p_delta;
    new_value := convert_to(new_number::TEXT, 'UTF8');
    add_bytes := octet_length(p_key) + octet_length(new_value);
    IF held_keys + 1 > p_max_keys OR held_bytes + add_bytes > p_max_bytes THEN
        RETURN NULL;
    END IF;

    INSERT INTO plugin_kv (plugin, key, value, expires_at) VALUES (p_plugin, p_key, new_value, NULL);
    UPDATE plugin_kv_usage SET keys = keys + 1, bytes = bytes + add_bytes WHERE plugin = p_plugin;
    RETURN new_number;
END
$$;
