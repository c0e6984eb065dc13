-- Version 13: a plugin's KV increment in one round trip (store/postgres/kv.rs, "One round trip").
--
-- The same steps as the client's transaction, in the same order, inside one statement: lock the plugin's
-- usage row (creating it), read the key's row, check the quota, write, add to the usage. In PL/pgSQL each
-- statement takes its own snapshot under READ COMMITTED, so the read after the lock sees every earlier
-- write of the plugin, as the client's transaction does.
--
-- It answers NULL whenever the case is not the plain one, and the client then takes its full path, which
-- decides the answer: a stored value that is not a plain decimal integer of at most 18 digits, an expired
-- row, a result past the bigint range, or a write that would go past the quota (the full path purges the
-- plugin's expired rows and checks again). So the function never has to agree with Rust's number parsing
-- or error messages, only recognise the common case.
CREATE FUNCTION chathooks_kv_increment(
    p_plugin TEXT, p_key BYTEA, p_delta BIGINT, p_now BIGINT, p_max_keys BIGINT, p_max_bytes BIGINT
) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    held_keys  BIGINT;
    held_bytes BIGINT;
    old_value  BYTEA;
    old_expiry BIGINT;
    found_row  BOOLEAN;
    old_number BIGINT := 0;
    new_number BIGINT;
    new_value  BYTEA;
    add_keys   BIGINT := 1;
    add_bytes  BIGINT;
BEGIN
    INSERT INTO plugin_kv_usage (plugin, keys, bytes) VALUES (p_plugin, 0, 0)
    ON CONFLICT (plugin) DO UPDATE SET keys = plugin_kv_usage.keys
    RETURNING keys, bytes INTO held_keys, held_bytes;

    SELECT value, expires_at INTO old_value, old_expiry
    FROM plugin_kv WHERE plugin = p_plugin AND key = p_key;
    found_row := FOUND;
    IF found_row THEN
        IF old_expiry IS NOT NULL AND old_expiry <= p_now THEN
            RETURN NULL;
        END IF;
        -- `escape` keeps ASCII digits and '-' as they are and spells every other byte differently.
        IF encode(old_value, 'escape') !~ '^-?[0-9]{1,18}$' THEN
            RETURN NULL;
        END IF;
        old_number := encode(old_value, 'escape')::BIGINT;
        add_keys := 0;
    END IF;
    IF (p_delta > 0 AND old_number > 9223372036854775807 - p_delta)
       OR (p_delta < 0 AND old_number < -9223372036854775807 - 1 - p_delta) THEN
        RETURN NULL;
    END IF;
    new_number := old_number + p_delta;
    new_value := convert_to(new_number::TEXT, 'UTF8');
    add_bytes := octet_length(p_key) + octet_length(new_value);
    IF found_row THEN
        add_bytes := add_bytes - octet_length(p_key) - octet_length(old_value);
    END IF;
    IF (add_keys > 0 AND held_keys + add_keys > p_max_keys)
       OR (add_bytes > 0 AND held_bytes + add_bytes > p_max_bytes) THEN
        RETURN NULL;
    END IF;

    INSERT INTO plugin_kv (plugin, key, value, expires_at) VALUES (p_plugin, p_key, new_value, NULL)
    ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value;
    IF add_keys <> 0 OR add_bytes <> 0 THEN
        UPDATE plugin_kv_usage SET keys = keys + add_keys, bytes = bytes + add_bytes
        WHERE plugin = p_plugin;
    END IF;
    RETURN new_number;
END
$$;
