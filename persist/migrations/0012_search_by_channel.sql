-- SPDX-License-Identifier: BSD-3-Clause
-- 0012: the search index keyed by channel as well as by word (btree_gin, a
-- trusted extension of PostgreSQL's own contrib that the database's owner
-- may create), so that a search reads only the matches in the searcher's
-- channels, not every match of a common word in the whole table and then
-- the channels (docs/benchmarks.md, "Search over 10 million messages").
-- Rebuilds the index: on a large database this takes a while at the first
-- start of this version.
CREATE EXTENSION IF NOT EXISTS btree_gin;
DROP INDEX messages_search;
CREATE INDEX messages_search ON messages USING gin (channel_id, search);
