-- SPDX-License-Identifier: BSD-3-Clause
-- 0014: a delete leaves an empty row in the search index, not none. The
-- indexer (persist/indexer.c) reads a channel's messages with its
-- statement's snapshot and inserts their words ON CONFLICT DO NOTHING; a
-- delete that committed after that snapshot was taken, and removed the
-- message's row before the indexer's insert existed, left nothing for the
-- insert to conflict with, so the deleted words came back and stayed
-- searchable. An edit never had this race: it upserts its words, so
-- whichever comes second, its row stands. A delete now does the same with
-- an empty vector, which no query matches (tests/integration/
-- test_indexer.c, test_a_delete_during_an_index_round_stays_deleted). The
-- rows such a race left behind are emptied here: this reads every deleted
-- message once, at the first start of this version.
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
        IF FOUND THEN -- the UPDATE's: the parent is a message
            INSERT INTO message_search (channel_id, seq, search)
            VALUES (NEW.channel_id, NEW.parent_seq, ''::tsvector)
            ON CONFLICT (channel_id, seq) DO UPDATE SET search = excluded.search;
        END IF;
        DELETE FROM reactions WHERE channel_id = NEW.channel_id AND seq = NEW.parent_seq;
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

UPDATE message_search s SET search = ''::tsvector
  FROM messages m
 WHERE m.channel_id = s.channel_id AND m.seq = s.seq AND m.deleted_at IS NOT NULL
   AND s.search <> ''::tsvector;
