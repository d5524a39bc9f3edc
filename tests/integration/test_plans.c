/* SPDX-License-Identifier: BSD-3-Clause */
/* Integration test of how PostgreSQL runs the hello's, the writer's and the
 * search indexer's statements, on a database of its own with a few thousand
 * channels (the size of a small team's workspace): a hello finds the
 * user's channels by key, before the tables were ever analyzed (a database
 * restored a moment ago) and after; a batch finds its channels' heads by
 * key, by the append and by the COPY path, and an indexer's round finds
 * its search heads and its messages by key, instead of reading a table
 * whole at every hello, batch or round. Their plans are generic (made once per
 * connection), and a generic plan takes an array parameter's unnest() for
 * ten rows: for that, on a table of a thousand to a few thousand rows,
 * scanning it all looks cheaper than ten lookups; and on a messages table
 * not analyzed yet, reading and sorting it all than a lookup per channel
 * (docs/benchmarks.md). What is counted is the tables' sequential scans
 * and, for the hellos, the rows they read, in pg_stat_user_tables, which
 * the backends report when they exit.
 *
 * Needs FANOUT_TEST_PG_DSN (key=value form) of a server where the user
 * postgres may create a database, as deploy/test starts it; missing it is
 * a failure, not a skip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "pg.h"
#include "store.h"
#include "writer.h"

#include "persist_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Users saying hello, each a member of two channels of their own. A table
 * never analyzed and smaller than ten pages is planned as ten pages (about
 * 1,100 channels): a hundred channels are planned as that many, the size at
 * which the join went wrong. */
#define HELLOS 50
/* More than the tables' size at which the plans went wrong starts (about a
 * thousand), fewer than where they came right again (about four thousand). */
#define CHANNELS 2000
/* One-message batches per path, each followed by its index round. */
#define BATCHES 25
/* Messages already there (indexed), in that many channels: a table not
 * analyzed yet on which PostgreSQL 15's generic plan of a plain join read
 * every partition at every round (it did at 4,000 to 8,000 messages, not at
 * 20,000: the sort that plan needs grows faster than the lookups). */
#define MESSAGES 8000
#define HISTORY	 400

static char db_name[64], admin_dsn[512], test_dsn[512];

/* A statement as the server's superuser, on its maintenance database. */
static void admin(const char *what, const char *name, const char *how)
{
	char text[256], err[512];
	PGconn *conn = pg_connect(admin_dsn, false, err, sizeof(err));
	PGresult *res;

	if (conn == NULL)
		fail_msg("%s", err);
	snprintf(text, sizeof(text), "%s %s%s", what, name, how);
	res = PQexec(conn, text);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", text, PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(conn);
}

static int setup(void **state)
{
	const char *base = getenv("FANOUT_TEST_PG_DSN");

	(void)state;
	if (base == NULL) {
		fprintf(stderr, "FANOUT_TEST_PG_DSN must be set (deploy/test sets it)\n");
		return -1;
	}
	snprintf(db_name, sizeof(db_name), "fanout_plans_%d", (int)getpid());
	snprintf(admin_dsn, sizeof(admin_dsn), "%s dbname=postgres user=postgres", base);
	snprintf(test_dsn, sizeof(test_dsn), "%s dbname=%s", base, db_name);
	admin("DROP DATABASE IF EXISTS", db_name, "");
	admin("CREATE DATABASE", db_name, " OWNER fanout");
	dsn = test_dsn;
	return fixture_connect();
}

static int teardown(void **state)
{
	fixture_teardown(state);
	admin("DROP DATABASE IF EXISTS", db_name, " WITH (FORCE)");
	return 0;
}

/* The counters of the tables named like table (summed: the partitions of
 * messages) as the exited backends left them. */
static long stat_of(const char *column, const char *table)
{
	PQclear(sql("SELECT pg_stat_clear_snapshot()"));
	return sql_long("SELECT sum(%s) FROM pg_stat_user_tables WHERE relname LIKE '%s'", column,
			table);
}

/* Waits (10 s at most) until no connection of fanout's is left on the test
 * database: each backend reports its counters as it exits. */
static void wait_backends_gone(void)
{
	for (int i = 0; i < 1000; i++) {
		if (sql_long("SELECT count(*) FROM pg_stat_activity WHERE datname = '%s'"
			     " AND application_name LIKE 'fanout %%' AND pid <> pg_backend_pid()",
			     db_name) == 0)
			return;
		usleep(10000);
	}
	fail_msg("the writer's backends are still there after 10 s");
}

/* BATCHES one-message batches on channels from first on, each its own
 * batch (the next published when the last is told) and indexed before the
 * next; copy_min_rows 1 sends each by COPY. */
static void write_batches(int64_t first, int copy_min_rows)
{
	struct collector *c = collector_new(BATCHES);
	struct persist_writer_config cfg = {
	    .dsn = dsn,
	    .copy_min_rows = copy_min_rows,
	    .batch_max = 64,
	    .queue_max = 1000,
	    .dedup_cache = 64,
	    .reconnect_max_ms = 200,
	    .drain_timeout_ms = 2000,
	};
	struct persist_writer *w = persist_writer_create(&cfg, collect, c);
	char id[32];

	assert_non_null(w);
	for (int i = 0; i < BATCHES; i++) {
		snprintf(id, sizeof(id), "plan-%d-%d", copy_min_rows, i);
		assert_int_equal(publish(w, first + i, 1, id, "a word to index", (uintptr_t)i), 0);
		wait_for(c, i + 1);
		assert_int_equal(c->got[i].outcome, PERSIST_COMMITTED);
		assert_int_equal(persist_writer_search_flush(w, 10000), 0);
	}
	persist_writer_destroy(w);
	collector_free(c);
}

/* The rows a table gave, by sequential and by index scans. */
#define ROWS_READ "seq_tup_read + idx_tup_fetch"

/* The hello users' first id and their first channel's. */
static int64_t hello_user, hello_channel;

/* Each hello user's channels as the hello lists them, on a connection of
 * its own, gone (its counters reported) when this returns. */
static void say_hellos(void)
{
	struct store_channel *got;
	char err[256];
	PGconn *conn = pg_connect_as(dsn, "hello test", false, err, sizeof(err));
	int n;

	if (conn == NULL)
		fail_msg("%s", err);
	for (int u = 0; u < HELLOS; u++) {
		assert_int_equal(store_user_channels(conn, hello_user + u, &got, &n), 0);
		assert_int_equal(n, 2);
		assert_int_equal(got[0].id, hello_channel + 2 * u);
		assert_int_equal(got[1].id, hello_channel + 2 * u + 1);
		free(got);
	}
	PQfinish(conn);
	wait_backends_gone();
}

/* The hello's query of a user's channels on tables never analyzed (as
 * after a restore, until autovacuum gets to them: it is kept off them
 * here). Without statistics its generic plan hashed the user's memberships
 * and read channels whole to join them, at every hello. */
static void test_hello_finds_channels_by_key(void **state)
{
	static const char *const tables[] = {"users", "channels", "channel_members"};
	long scans, read;

	(void)state;
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
		PQclear(sql("ALTER TABLE %s SET (autovacuum_enabled = off)", tables[i]));
	hello_channel = sql_long("WITH made AS (INSERT INTO channels (name, kind)"
				 " SELECT 'hello-' || g, 'public' FROM generate_series(1, %d) g"
				 " RETURNING id) SELECT min(id) FROM made",
				 2 * HELLOS);
	hello_user = sql_long("WITH made AS (INSERT INTO users (name)"
			      " SELECT 'hello-' || g FROM generate_series(1, %d) g"
			      " RETURNING id) SELECT min(id) FROM made",
			      HELLOS);
	PQclear(
	    sql("INSERT INTO channel_members (channel_id, user_id)"
		" SELECT %lld + (u.id - %lld) * 2 + k, u.id FROM users u, generate_series(0, 1) k"
		" WHERE u.id >= %lld",
		(long long)hello_channel, (long long)hello_user, (long long)hello_user));
	PQclear(sql("SELECT pg_stat_force_next_flush()"));
	scans = stat_of("seq_scan", "channels");
	read = stat_of(ROWS_READ, "channels");

	say_hellos();

	/* The premise: nothing was analyzed meanwhile. */
	assert_int_equal(sql_long("SELECT count(*) FROM pg_class WHERE relname = 'channels'"
				  " AND reltuples < 0"),
			 1);
	assert_int_equal(stat_of("seq_scan", "channels") - scans, 0);
	assert_in_range(stat_of(ROWS_READ, "channels") - read, 2 * HELLOS, 4 * HELLOS);
}

static void test_heads_found_by_key(void **state)
{
	long read, scans_ch, scans_sh, scans_m, updated, indexed;
	int64_t first;

	(void)state;
	/* A workspace of CHANNELS channels, every one indexed as far as it
	 * goes, with the statistics autovacuum would have taken; and MESSAGES
	 * messages in the last HISTORY channels, not analyzed yet, as in a
	 * database restored or filled a moment ago. */
	first = sql_long("WITH made AS (INSERT INTO channels (name, kind)"
			 " SELECT 'plans-' || g, 'public' FROM generate_series(1, %d) g"
			 " RETURNING id) SELECT min(id) FROM made",
			 CHANNELS);
	PQclear(sql("INSERT INTO messages (channel_id, seq, author_id, client_msg_id, body,"
		    " created_at, mentions)"
		    " SELECT c, s, 1, 'h' || s, 'history ' || s, now(), '{}'"
		    " FROM generate_series(%lld, %lld) c, generate_series(1, %d) s",
		    (long long)first + CHANNELS - HISTORY, (long long)first + CHANNELS - 1,
		    MESSAGES / HISTORY));
	PQclear(sql("UPDATE channels SET last_seq = %d WHERE id >= %lld", MESSAGES / HISTORY,
		    (long long)first + CHANNELS - HISTORY));
	PQclear(sql("INSERT INTO search_heads (channel_id, indexed_seq)"
		    " SELECT id, last_seq FROM channels ON CONFLICT DO NOTHING"));
	assert_in_range(sql_long("SELECT count(*) FROM search_heads"), CHANNELS,
			CHANNELS + 2 * HELLOS + 10);
	/* One user in every channel: forty-odd memberships a user on
	 * average, what the plan expects of anyone's hello. */
	PQclear(sql("WITH u AS (INSERT INTO users (name) VALUES ('everywhere') RETURNING id)"
		    " INSERT INTO channel_members (channel_id, user_id)"
		    " SELECT c.id, u.id FROM channels c, u"));
	PQclear(sql("ANALYZE channels"));
	PQclear(sql("ANALYZE search_heads"));
	PQclear(sql("ANALYZE channel_members"));
	PQclear(sql("SELECT pg_stat_force_next_flush()"));
	/* The hellos again, the tables analyzed: at this size, and with
	 * that many memberships a user, the plain join's plan walked the
	 * key's index over every channel up to the user's last (a merge
	 * join) at each, where two lookups do. */
	read = stat_of(ROWS_READ, "channels");
	say_hellos();
	assert_in_range(stat_of(ROWS_READ, "channels") - read, 2 * HELLOS, 4 * HELLOS);
	scans_ch = stat_of("seq_scan", "channels");
	scans_sh = stat_of("seq_scan", "search_heads");
	scans_m = stat_of("seq_scan", "messages_p%");
	updated = stat_of("n_tup_upd", "channels");
	indexed = stat_of("n_tup_upd", "search_heads");

	write_batches(first, 0);	   /* the append */
	write_batches(first + BATCHES, 1); /* by COPY: the heads' statement alone */
	wait_backends_gone();

	/* The counters are in: every batch moved a head, every round one. */
	assert_in_range(stat_of("n_tup_upd", "channels") - updated, 2 * BATCHES, 1000);
	assert_in_range(stat_of("n_tup_upd", "search_heads") - indexed, 2 * BATCHES, 1000);
	/* Each writer's indexer sweeps once as it starts, which reads both
	 * tables whole by design; nothing else may. */
	assert_in_range(stat_of("seq_scan", "channels") - scans_ch, 0, 2);
	assert_in_range(stat_of("seq_scan", "search_heads") - scans_sh, 0, 2);
	/* Each round read its channel's new messages alone. */
	assert_int_equal(stat_of("seq_scan", "messages_p%") - scans_m, 0);
	assert_int_equal(sql_long("SELECT count(*) FROM messages"), MESSAGES + 2 * BATCHES);
	assert_int_equal(sql_long("SELECT count(*) FROM message_search"), 2 * BATCHES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hello_finds_channels_by_key),
	    cmocka_unit_test(test_heads_found_by_key),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
