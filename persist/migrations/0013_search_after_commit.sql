-- SPDX-License-Identifier: BSD-3-Clause
-- 0013: the search index written after the commit, not in it (docs/api.md,
-- "Search"; persist/indexer.c). A message's words move from a generated
-- column of messages, whose GIN entry every durable commit paid for, to a
-- table of their own that each node's indexer fills in batches a moment
-- after its writer committed them. search_heads says, per channel, up to
-- which seq the index holds the channel's messages; an indexer catches a
-- channel up from there, so a node that stops before indexing loses
-- nothing (another node, or this one at its next start, finds the channel
-- behind). Edits and deletes still change the index in their own
-- transaction (the trigger below): a search never finds what a message no
-- longer says. The words are those of a body's first 100,000 characters
-- (a tsvector holds at most 1 MB). Copies the existing vectors: on a large database this takes
-- a while at the first start of this version.
CREATE TABLE message_search (
    channel_id bigint NOT NULL,
    seq        bigint NOT NULL,
    search     tsvector NOT NULL,
    PRIMARY KEY (channel_id, seq)
);
INSERT INTO message_search (channel_id, seq, search)
    SELECT channel_id, seq, search FROM messages
     WHERE kind = 'message' AND deleted_at IS NULL;
CREATE INDEX message_search_words ON message_search USING gin (channel_id, search);
CREATE TABLE search_heads (
    channel_id  bigint PRIMARY KEY,
    indexed_seq bigint NOT NULL
);
INSERT INTO search_heads (channel_id, indexed_seq) SELECT id, last_seq FROM channels;
DROP INDEX messages_search;
ALTER TABLE messages DROP COLUMN search;

-- 0003's events, and the index kept with them: an edit writes the new
-- words (whether or not the indexer has reached the message: its own
-- insert then finds the row and leaves it), a delete takes them out.
CREATE OR REPLACE FUNCTION fanout_apply_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.kind = 'edit' THEN
        UPDATE messages SET body = NEW.body, edited_at = NEW.created_at
         WHERE channel_id = NEW.channel_id AND seq = NEW.parent_seq
           AND kind = 'message' AND deleted_at IS NULL;
        IF FOUND THEN
            INSERT INTO message_search (channel_id, seq, search)
            VALUES (NEW.channel_id, NEW.parent_seq,
                    to_tsvector('english'::regconfig, left(NEW.body, 100000)))
            ON CONFLICT (channel_id, seq) DO UPDATE SET search = excluded.search;
        END IF;
    ELSIF NEW.kind = 'delete' THEN
        UPDATE messages SET body = '', deleted_at = NEW.created_at
         WHERE channel_id = NEW.channel_id AND seq = NEW.parent_seq AND kind = 'message';
        DELETE FROM reactions WHERE channel_id = NEW.channel_id AND seq = NEW.parent_seq;
        DELETE FROM message_search WHERE channel_id = NEW.channel_id AND seq = NEW.parent_seq;
    ELSIF NEW.kind = 'react' THEN
        INSERT INTO reactions (channel_id, seq, emoji, user_id)
        SELECT NEW.channel_id, NEW.parent_seq, NEW.body, NEW.author_id
         WHERE EXISTS (SELECT 1 FROM messages t WHERE t.channel_id = NEW.channel_id
                        AND t.seq = NEW.parent_seq AND t.kind = 'message' AND t.deleted_at IS NULL)
        ON CONFLICT DO NOTHING;
    ELSIF NEW.kind = 'unreact' THEN
        DELETE FROM reactions WHERE channel_id = NEW.channel_id AND seq = NEW.parent_seq
           AND emoji = NEW.body AND user_id = NEW.author_id;
    END IF;
    RETURN NULL;
END $$;
