-- SPDX-License-Identifier: BSD-3-Clause
-- 0017: the mentions column is written by the statements that insert and
-- edit messages, no longer generated. For a stored generated column,
-- PostgreSQL 15 reads the column's expression back from the catalog and
-- plans it again (inlining fanout_mentions) for every partition a statement
-- writes, at every statement: for the writer's statements of a few rows, a
-- third of what they cost the backend (20 rows over the partitions 0.39 ms
-- against 0.26 with the same function in the statement, whose plan is made
-- once; docs/benchmarks.md, "Mentions written by the append"). The values are the
-- same: the writer's append computes fanout_mentions(body) for each message
-- (persist/batch.c, batch_copy.c), the edit below for the new body, a
-- delete empties them; nothing stored is rewritten, and dropping the
-- expression changes only the catalog.
--
-- A message row without mentions is refused from here on, so that a writer
-- that does not compute them (a node of an earlier version, still running
-- while another starts this one, or a script) fails loudly instead of
-- storing a message no mention count will find. NOT VALID: every row stored
-- so far was generated under the same rule, and reading them all would hold
-- the first start of this version on a large database; PostgreSQL checks
-- every row inserted or updated from now on.
ALTER TABLE messages ALTER COLUMN mentions DROP EXPRESSION;
ALTER TABLE messages ADD CONSTRAINT messages_mentions_written
    CHECK ((kind = 'message') = (mentions IS NOT NULL)) NOT VALID;

CREATE OR REPLACE FUNCTION fanout_apply_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.kind = 'edit' THEN
        UPDATE messages SET body = NEW.body, mentions = fanout_mentions(NEW.body),
                            edited_at = NEW.created_at
         WHERE channel_id = NEW.channel_id AND seq = NEW.parent_seq
           AND kind = 'message' AND deleted_at IS NULL;
        IF FOUND THEN
            INSERT INTO message_search (channel_id, seq, search)
            VALUES (NEW.channel_id, NEW.parent_seq,
                    to_tsvector('english'::regconfig, left(NEW.body, 100000)))
            ON CONFLICT (channel_id, seq) DO UPDATE SET search = excluded.search;
        END IF;
    ELSIF NEW.kind = 'delete' THEN
        UPDATE messages SET body = '', mentions = '{}', deleted_at = NEW.created_at
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
