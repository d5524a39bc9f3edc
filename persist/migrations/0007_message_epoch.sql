-- SPDX-License-Identifier: BSD-3-Clause
-- 0007: each message keeps the owner epoch it was committed under (the
-- channel's owner_epoch its writer claimed, 0005). The fence already
-- refuses a commit from a stale owner; this makes the fact checkable
-- afterwards: in a channel, epochs never go down as seqs go up (the fault
-- harness's rule 5, docs/reliability.md). Rows from before it have NULL.
-- A nullable column without a default: PostgreSQL adds it without
-- rewriting the table.
ALTER TABLE messages ADD COLUMN owner_epoch bigint CHECK (owner_epoch >= 0);
