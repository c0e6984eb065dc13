-- Version 3: cluster mode's delivery leases (SCALE-OUT.md 2.6).
--
-- Every node of a cluster runs a dispatcher on the same deliveries. A node starts a queue head only by
-- leasing it: `lease_owner` is its node id and `lease_until` when the lease runs out. Only the owner
-- records the call's outcome, and a head whose owner died (its lease ran out while in flight) is
-- started again by another node with the next attempt number. A server on its own never leases.
ALTER TABLE deliveries ADD COLUMN lease_owner TEXT COLLATE "C";
ALTER TABLE deliveries ADD COLUMN lease_until BIGINT;
