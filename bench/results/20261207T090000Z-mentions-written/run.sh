#!/usr/bin/env bash
# What a stored generated mentions column costs a statement, against the
# same function computed by the statement (migration 0017): pgbench, prepared
# statements on a generic plan (as the writer's lanes run), synchronous_commit
# off so that the statement's CPU and not the WAL flush is measured. Three
# partitioned tables shaped like messages (8 hash partitions, the same keys):
# gen: mentions generated as before 0017; plain: mentions given as '{}';
# func: mentions given as fanout_mentions(body) in the statement (0017's way).
# Each INSERT writes N rows over up to 64 channels. Needs the bench
# PostgreSQL (deploy/pgctl start var/bench-pg 55434) migrated to 0016 or later.
#   bench/results/20261207T090000Z-mentions-written/run.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")"
dsn="host=127.0.0.1 port=55434 dbname=fanout user=fanout"
rounds=${1:-2}
psql -X -q "$dsn" <<'SQL'
DROP TABLE IF EXISTS mw_gen, mw_plain;
DROP SEQUENCE IF EXISTS mw_seq;
CREATE SEQUENCE mw_seq;
CREATE TABLE mw_gen (channel_id bigint NOT NULL, seq bigint NOT NULL, author_id bigint NOT NULL,
  kind text NOT NULL DEFAULT 'message', body text NOT NULL, parent_seq bigint,
  client_msg_id text NOT NULL, created_at timestamptz NOT NULL, edited_at timestamptz,
  deleted_at timestamptz, owner_epoch bigint,
  mentions text[] GENERATED ALWAYS AS (CASE WHEN kind = 'message' THEN fanout_mentions(body) END) STORED,
  PRIMARY KEY (channel_id, seq), UNIQUE (channel_id, author_id, client_msg_id))
  PARTITION BY HASH (channel_id);
CREATE TABLE mw_plain (LIKE mw_gen INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY HASH (channel_id);
ALTER TABLE mw_plain ADD PRIMARY KEY (channel_id, seq), ADD UNIQUE (channel_id, author_id, client_msg_id);
DO $$ BEGIN FOR i IN 0..7 LOOP
  EXECUTE format('CREATE TABLE mw_gen_%s PARTITION OF mw_gen FOR VALUES WITH (MODULUS 8, REMAINDER %s)', i, i);
  EXECUTE format('CREATE TABLE mw_plain_%s PARTITION OF mw_plain FOR VALUES WITH (MODULUS 8, REMAINDER %s)', i, i);
END LOOP; END $$;
CREATE INDEX ON mw_gen (channel_id, seq) WHERE cardinality(mentions) > 0;
CREATE INDEX ON mw_plain (channel_id, seq) WHERE cardinality(mentions) > 0;
CREATE INDEX ON mw_gen (channel_id, parent_seq, seq) WHERE parent_seq IS NOT NULL;
CREATE INDEX ON mw_plain (channel_id, parent_seq, seq) WHERE parent_seq IS NOT NULL;
SQL
psql -X -At "$dsn" -c "SELECT attgenerated FROM pg_attribute WHERE attrelid = 'mw_plain'::regclass AND attname = 'mentions'" | grep -qx '' 
for n in 1 20 1000; do
    for t in gen plain func; do
        case $t in
            gen) cols=""; val="" ;;
            plain) cols=", mentions"; val=", '{}'::text[]" ;;
            func) cols=", mentions"; val=", fanout_mentions(b)" ;;
        esac
        table=mw_$t; [ $t = func ] && table=mw_plain
        cat > insert-$t-$n.sql <<SQL
INSERT INTO $table (channel_id, seq, author_id, body, client_msg_id, created_at$cols)
SELECT c % 64, s, 1, b, 'k' || s, now()$val
FROM (SELECT c, nextval('mw_seq') AS s, 'hello there ' || c AS b FROM generate_series(1, $n) c) x;
SQL
    done
done
printf '%-6s %-6s %-6s %s\n' rows round table "latency_ms"
for n in 1 20 1000; do
    for r in $(seq "$rounds"); do
        for t in gen plain func; do
            ms=$(PGOPTIONS="-c synchronous_commit=off -c plan_cache_mode=force_generic_plan" \
                pgbench -n -M prepared -T 5 -f insert-$t-$n.sql "$dsn" 2>&1 |
                sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
            printf '%-6s %-6s %-6s %s\n' "$n" "$r" "$t" "$ms"
        done
    done
done
psql -X -q "$dsn" -c "DROP TABLE mw_gen, mw_plain" -c "DROP SEQUENCE mw_seq"
