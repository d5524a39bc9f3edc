-- SPDX-License-Identifier: BSD-3-Clause
-- 0015: a message without an '@' has no mentions, found without running
-- 0010's query. fanout_mentions, which the stored mentions column calls for
-- every message inserted or edited, held an ARRAY(SELECT ...) over
-- regexp_matches, which PostgreSQL cannot inline: each row started and ended
-- an executor for it, about half of the writer's backend time per row
-- (docs/benchmarks.md, "Mentions at every insert"). The query moves,
-- unchanged, to fanout_mentions_scan; fanout_mentions becomes one CASE
-- that PostgreSQL inlines into the column's expression (which it does only
-- for a function not declared STRICT: a NULL body still gives NULL, by the
-- strict scan), so most rows cost a strpos. Every value is the same as
-- 0010's: nothing stored is rewritten.
CREATE FUNCTION fanout_mentions_scan(body text) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ARRAY(
        SELECT DISTINCT CASE WHEN n = 'everyone' THEN 'channel' ELSE n END
          FROM (SELECT lower(rtrim(m[1], '.')) AS n
                  FROM regexp_matches(body, '(?:^|[^A-Za-z0-9_.-])@([A-Za-z0-9_.-]{1,64})', 'g')
                       AS m) names
         WHERE n <> ''
         ORDER BY 1);
CREATE OR REPLACE FUNCTION fanout_mentions(body text) RETURNS text[]
    LANGUAGE sql IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE
    RETURN CASE WHEN strpos(body, '@') = 0 THEN '{}'::text[] ELSE fanout_mentions_scan(body) END;
