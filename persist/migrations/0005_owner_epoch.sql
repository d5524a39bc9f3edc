-- SPDX-License-Identifier: BSD-3-Clause
-- 0005: the owner epoch, the cluster's fence (docs/cluster.md, "Ownership").
-- A node that takes a channel raises owner_epoch to its ring's epoch before
-- it sequences anything; every commit checks that owner_epoch is still the
-- epoch its writer claimed, so a stale owner (paused, cut off, its lease
-- lost) can neither commit nor acknowledge. A node alone uses epoch 0.
ALTER TABLE channels ADD COLUMN owner_epoch bigint NOT NULL DEFAULT 0
    CHECK (owner_epoch >= 0);
