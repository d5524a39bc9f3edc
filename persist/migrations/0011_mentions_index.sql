-- SPDX-License-Identifier: BSD-3-Clause
-- 0011: the messages that mention anyone, by channel and seq, so that a
-- hello counts a member's mentions (persist/store.c, the channel list) by
-- reading those alone, not every message after a stale read cursor. Most
-- messages mention nobody: the index is small. Built at the first start of
-- this version, over the whole table.
CREATE INDEX messages_mentioning ON messages (channel_id, seq) WHERE cardinality(mentions) > 0;
