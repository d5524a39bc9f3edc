#!/usr/bin/env bash
# The heads' UPDATE alone, as the writer sends it before (A) and after (B:
# "c.id = ANY($1)" added), with a generic plan (plan_cache_mode =
# force_generic_plan, as the writer's sessions set), against a copy of the
# channels table (its columns, keys and checks) holding N channels, for N
# from 250 to 16,000. Per N and side: the plan's scan of the table and the
# microseconds per one-channel transaction, 5,000 of them in a PL/pgSQL
# procedure (whose static SQL is a prepared statement of its own), each
# committed with synchronous_commit off, so that the disk's flush is not
# counted and the dead row versions can be pruned as they would be. Scratch
# schema, dropped after.
#   window.sh [DSN]   (a superuser's; default the bench PostgreSQL)
set -euo pipefail
dsn=${1:-"host=127.0.0.1 port=55434 dbname=fanout user=postgres"}
q() { psql -X -q -At "$dsn" -v ON_ERROR_STOP=1 "$@"; }
stmt_a="UPDATE hk.ch c SET last_seq = g.upto FROM unnest(ids, olds, uptos, epochs) AS g(id, old, upto, epoch) WHERE c.id = g.id AND c.last_seq = g.old AND c.owner_epoch = g.epoch"
stmt_b="UPDATE hk.ch c SET last_seq = g.upto FROM unnest(ids, olds, uptos, epochs) AS g(id, old, upto, epoch) WHERE c.id = ANY(ids) AND c.id = g.id AND c.last_seq = g.old AND c.owner_epoch = g.epoch"
echo "| channels | A: scan | A: us per transaction | B: scan | B: us per transaction |"
echo "|---:|---|---:|---|---:|"
for n in 250 500 1000 2000 4000 8000 16000; do
    q -c "SET client_min_messages = warning; DROP SCHEMA IF EXISTS hk CASCADE; CREATE SCHEMA hk;
          CREATE TABLE hk.ch (LIKE public.channels INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS INCLUDING INDEXES);
          INSERT INTO hk.ch (name, kind) SELECT 'c' || i, 'public' FROM generate_series(1, $n) i;
          ANALYZE hk.ch;"
    row="| $n |"
    for side in a b; do
        if [ $side = a ]; then s=$stmt_a; else s=$stmt_b; fi
        plan=$(q -c "SET plan_cache_mode = force_generic_plan;
            PREPARE p(int8[], int8[], int8[], int8[]) AS $(sed 's/ids, olds, uptos, epochs/$1, $2, $3, $4/; s/ANY(ids)/ANY($1)/' <<<"$s");
            EXPLAIN (COSTS OFF) EXECUTE p('{1}', '{0}', '{0}', '{0}');" | grep -o 'Seq Scan on ch\|Index Scan using ch_pkey\|Bitmap Heap Scan on ch' | head -1)
        us=$(q -c "CREATE OR REPLACE PROCEDURE hk.run(k int, INOUT us float8 DEFAULT 0) LANGUAGE plpgsql AS \$f\$
            DECLARE ids int8[]; olds int8[]; uptos int8[]; epochs int8[]; t0 timestamptz := clock_timestamp();
            BEGIN
              FOR i IN 1..k LOOP
                ids := ARRAY[1 + (i * 7919) % $n]; olds := ARRAY[0]; uptos := ARRAY[0]; epochs := ARRAY[0];
                $s;
                COMMIT;
              END LOOP;
              us := extract(epoch FROM clock_timestamp() - t0) * 1e6 / k;
            END \$f\$;" -c "SET plan_cache_mode = force_generic_plan" \
            -c "SET synchronous_commit = off" -c "CALL hk.run(5000)" | awk '{printf "%.1f", $1}')
        row="$row ${plan:-?} | $us |"
    done
    echo "$row"
done
q -c "SET client_min_messages = warning; DROP SCHEMA hk CASCADE"
