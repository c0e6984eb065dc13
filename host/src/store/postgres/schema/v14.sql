-- Version 14: the dispatcher starts a run of deliveries in one round trip (store/postgres/outbox.rs,
-- `start_run`).
--
-- The statements of `start_head` for the run's head, then of `start_next` for each event behind it, in
-- order, stopping at the first that does not start: the same UPDATEs the client sent one by one, with the
-- same conditions, in the same transaction. The started rows come back in order.
CREATE FUNCTION chathooks_start_run(p_plugin TEXT, p_head BIGINT, p_behind BIGINT[], p_now BIGINT)
RETURNS TABLE (started_attempt BIGINT, started_due BIGINT, started_error TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    previous BIGINT := p_head;
    following BIGINT;
BEGIN
    RETURN QUERY
    UPDATE deliveries d SET state = 'in_flight', attempt = d.attempt + 1
    WHERE d.event_id = p_head AND d.plugin = p_plugin AND d.state = 'pending'
      AND d.next_attempt_at <= p_now
      AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.plugin = p_plugin
                        AND o.conversation_id = d.conversation_id AND o.event_id < p_head)
    RETURNING d.attempt, d.next_attempt_at, d.last_error;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    FOREACH following IN ARRAY coalesce(p_behind, '{}') LOOP
        RETURN QUERY
        UPDATE deliveries d SET state = 'in_flight', attempt = d.attempt + 1
        WHERE d.event_id = following AND d.plugin = p_plugin AND d.state = 'pending'
          AND d.next_attempt_at <= p_now
          AND previous < following
          AND EXISTS (SELECT 1 FROM deliveries p WHERE p.event_id = previous AND p.plugin = p_plugin
                        AND p.conversation_id = d.conversation_id AND p.state = 'in_flight')
          AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.plugin = p_plugin
                            AND o.conversation_id = d.conversation_id
                            AND o.event_id > previous AND o.event_id < following)
        RETURNING d.attempt, d.next_attempt_at, d.last_error;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        previous := following;
    END LOOP;
END
$$;
