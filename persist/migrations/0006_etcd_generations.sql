-- SPDX-License-Identifier: BSD-3-Clause
-- 0006: etcd generations. The owner epoch (0005) is built from the etcd
-- revision of the ring, but an etcd cluster that is replaced (its data
-- lost, a new one bootstrapped) starts its revisions again from 1, below
-- every epoch already stored. Each etcd cluster the nodes meet gets the next
-- generation here, and an epoch is generation << 40 | revision: a new etcd
-- always yields higher epochs than every old one (docs/cluster.md).
CREATE TABLE etcd_generations (
    cluster_id text PRIMARY KEY,
    generation bigint NOT NULL UNIQUE CHECK (generation > 0),
    first_seen timestamptz NOT NULL DEFAULT now()
);
