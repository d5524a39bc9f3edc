-- SPDX-License-Identifier: BSD-3-Clause
-- 0003: edits, deletes and reactions. Each is an event row of its own kind in
-- messages (with its own seq, so it replays on resume), whose parent_seq names
-- the message it acts on. A trigger applies it to that message in the same
-- transaction, so history always reads the current state:
--   edit     body := the event's body, edited_at set (not once deleted)
--   delete   body := '', deleted_at set, its reactions dropped
--   react    (user, emoji) added to the message's reactions (a set: twice is once)
--   unreact  (user, emoji) removed
-- Ordinary messages skip the trigger (WHEN), so the hot path pays nothing.

ALTER TABLE messages ADD COLUMN edited_at timestamptz, ADD COLUMN deleted_at timestamptz;

CREATE TABLE reactions (
    channel_id bigint NOT NULL,
    seq        bigint NOT NULL,
    emoji      text NOT NULL CHECK (length(emoji) BETWEEN 1 AND 32),
    user_id    bigint NOT NULL,
    PRIMARY KEY (channel_id, seq, emoji, user_id)
);

CREATE FUNCTION fanout_apply_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.kind = 'edit' THEN
        UPDATE messages SET body = NEW.body, edited_at = NEW.created_at
         WHERE channel_id = NEW.channel_id AND seq = NEW.parent_seq
           AND kind = 'message' AND deleted_at IS NULL;
    ELSIF NEW.kind = 'delete' THEN
        UPDATE messages SET body = '', deleted_at = NEW.created_at
         WHERE channel_id = NEW.channel_id AND seq = NEW.parent_seq AND kind = 'message';
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

CREATE TRIGGER messages_apply_event AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.kind <> 'message') EXECUTE FUNCTION fanout_apply_event();
