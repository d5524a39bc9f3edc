-- SPDX-License-Identifier: BSD-3-Clause
-- 0010: the mentions of each message, stored with it (docs/protocol.md,
-- "Mentions"): the lower-case names after an '@' that starts a word, with
-- "everyone" read as "channel"; the grammar of core/mention.c, which reads
-- the same text for the live `mention` frame. NULL for event rows. An
-- edit rewrites the body and with it the mentions; a delete empties them.
-- A stored column rewrites the table at the first start of this version.
CREATE FUNCTION fanout_mentions(body text) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ARRAY(
        SELECT DISTINCT CASE WHEN n = 'everyone' THEN 'channel' ELSE n END
          FROM (SELECT lower(rtrim(m[1], '.')) AS n
                  FROM regexp_matches(body, '(?:^|[^A-Za-z0-9_.-])@([A-Za-z0-9_.-]{1,64})', 'g')
                       AS m) names
         WHERE n <> ''
         ORDER BY 1);
ALTER TABLE messages ADD COLUMN mentions text[] GENERATED ALWAYS AS
    (CASE WHEN kind = 'message' THEN fanout_mentions(body) END) STORED;
