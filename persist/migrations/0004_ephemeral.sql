-- SPDX-License-Identifier: BSD-3-Clause
-- 0004: ephemeral channels: live-only feeds (market data, live events). Their
-- messages are never stored and there is no catch-up; membership still
-- applies. Their seq is kept in memory by the node, restarting after a
-- restart; a subscriber drops nothing by it.
ALTER TABLE channels DROP CONSTRAINT channels_kind_check;
ALTER TABLE channels ADD CONSTRAINT channels_kind_check
    CHECK (kind IN ('public', 'private', 'dm', 'ephemeral'));
