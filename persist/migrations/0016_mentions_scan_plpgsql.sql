-- SPDX-License-Identifier: BSD-3-Clause
-- 0016: fanout_mentions_scan (0015) in PL/pgSQL, the same query. At every
-- statement that writes messages, PostgreSQL plans the stored mentions
-- column's expression again, and tries to inline each SQL function in it:
-- for 0015's scan it read the whole query back from the catalog and then
-- gave up (a subquery cannot be inlined), a tenth of the writer's backend
-- time on transactions of one message (docs/benchmarks.md). A PL/pgSQL
-- function is never a candidate. fanout_mentions stays SQL, one CASE,
-- inlined. Every value is the same: nothing stored is rewritten.
CREATE OR REPLACE FUNCTION fanout_mentions_scan(body text) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN ARRAY(
        SELECT DISTINCT CASE WHEN n = 'everyone' THEN 'channel' ELSE n END
          FROM (SELECT lower(rtrim(m[1], '.')) AS n
                  FROM regexp_matches(body, '(?:^|[^A-Za-z0-9_.-])@([A-Za-z0-9_.-]{1,64})', 'g')
                       AS m) names
         WHERE n <> ''
         ORDER BY 1);
END $$;
