-- SPDX-License-Identifier: BSD-3-Clause
-- 0008: full-text search over messages (docs/api.md, "Search"). A stored
-- generated tsvector of each message's body, English stemming (a search
-- for "deploy" finds "deploying"; words of other languages are kept as
-- they are), NULL for event rows (edits, deletes, reactions), so the GIN
-- index holds messages only. An edit rewrites the body and with it the
-- vector; a delete empties both. Adding a stored column rewrites the
-- table: on a large database this migration takes a while at the first
-- start of the new version.
ALTER TABLE messages ADD COLUMN search tsvector GENERATED ALWAYS AS
    (CASE WHEN kind = 'message' THEN to_tsvector('english'::regconfig, body) END) STORED;
CREATE INDEX messages_search ON messages USING gin (search);
