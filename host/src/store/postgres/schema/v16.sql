-- Version 16: a node of a cluster starts a run of deliveries, each under its lease, in one round trip
-- (store/postgres/leases.rs, `start_runs`).
--
-- Before, a cluster node's run was its head alone: each start a lease of its own, one event per queue and
-- round, so under load its after-hooks fell seconds behind the requests (BENCHMARKS.md problem 37). This is
-- version 14's `chathooks_start_run` with the leases of `leases::start_head`: the head if it heads its
-- queue and is due, or is in flight under a lease that ran out; then each event behind it, in order, if it
-- is due (or its lease ran out) and the one before it is now in flight under this node's lease with no
-- delivery of the queue between the two; stopping at the first that does not start. Every row started gets
-- the same lease. The started rows come back in order.
CREATE FUNCTION chathooks_start_leased_run(
    p_plugin TEXT, p_head BIGINT, p_behind BIGINT[], p_now BIGINT, p_owner TEXT, p_until BIGINT
) RETURNS TABLE (started_attempt BIGINT, started_due BIGINT, started_error TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    previous BIGINT := p_head;
    following BIGINT;
BEGIN
    RETURN QUERY
    UPDATE deliveries d SET state = 'in_flight', attempt = d.attempt + 1,
                            lease_owner = p_owner, lease_until = p_until
    WHERE d.event_id = p_head AND d.plugin = p_plugin
      AND ((d.state = 'pending' AND d.next_attempt_at <= p_now)
           OR (d.state = 'in_flight' AND coalesce(d.lease_until, 0) < p_now))
      AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.plugin = p_plugin
                        AND o.conversation_id = d.conversation_id AND o.event_id < p_head)
    RETURNING d.attempt, d.next_attempt_at, d.last_error;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    FOREACH following IN ARRAY coalesce(p_behind, '{}') LOOP
        RETURN QUERY
        UPDATE deliveries d SET state = 'in_flight', attempt = d.attempt + 1,
                                lease_owner = p_owner, lease_until = p_until
        WHERE d.event_id = following AND d.plugin = p_plugin
          AND ((d.state = 'pending' AND d.next_attempt_at <= p_now)
               OR (d.state = 'in_flight' AND coalesce(d.lease_until, 0) < p_now))
          AND previous < following
          AND EXISTS (SELECT 1 FROM deliveries p WHERE p.event_id = previous AND p.plugin = p_plugin
                        AND p.conversation_id = d.conversation_id AND p.state = 'in_flight'
                        AND p.lease_owner = p_owner)
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
