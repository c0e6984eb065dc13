-- Version 5: cluster mode's timer leases (SCALE-OUT.md 2.7).
--
-- Every node of a cluster runs a timer loop on the same timers. A node fires a due timer only after
-- leasing it (`lease_owner` its node id, `lease_until` when the lease runs out), with FOR UPDATE SKIP
-- LOCKED, so two nodes never fire one timer at once; a node that dies mid-firing leaves a lease that
-- runs out, and another node fires the timer again. Finishing a firing, or setting the timer again,
-- clears the lease. A server on its own never leases.
ALTER TABLE plugin_timers ADD COLUMN lease_owner TEXT COLLATE "C";
ALTER TABLE plugin_timers ADD COLUMN lease_until BIGINT;
