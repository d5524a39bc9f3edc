/* SPDX-License-Identifier: BSD-3-Clause */
/* Integration tests of what the persist writer's append stores per row,
 * against the real PostgreSQL deploy/test starts: each message's mentions
 * (migration 0015's fast path gives what 0010's query gave, and PostgreSQL
 * inlines it).
 *
 * Needs FANOUT_TEST_PG_DSN; missing it is a failure, not a skip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pg.h"
#include "writer.h"

#include "persist_fixture.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The bodies of the mention cases and what the column must hold: none for
 * a body without '@' (the fast path), the grammar's names otherwise. */
static const struct {
	const char *body, *mentions;
} mention_cases[] = {
    {"no one at all", "{}"},
    {"hi @Bob and @everyone.", "{bob,channel}"},
    {"mail a@b.c", "{}"},
    {"@alice", "{alice}"},
    {"@", "{}"},
    {"two @x @x", "{x}"},
};
#define MENTION_CASES (int)(sizeof(mention_cases) / sizeof(mention_cases[0]))

/* Publishes the mention cases into a new channel; returns it. */
static int64_t publish_mention_cases(void)
{
	struct collector *c = collector_new(MENTION_CASES);
	struct persist_writer_config cfg = {.dsn = dsn,
					    .batch_max = 64,
					    .batch_window_us = 100000,
					    .queue_max = 100,
					    .dedup_cache = 4096};
	struct persist_writer *w = persist_writer_create(&cfg, collect, c);
	int64_t channel = new_channel("mention");
	char id[16];

	assert_non_null(w);
	for (int i = 0; i < MENTION_CASES; i++) {
		snprintf(id, sizeof(id), "m%d", i);
		assert_int_equal(publish(w, channel, 1, id, mention_cases[i].body, (uintptr_t)i),
				 0);
	}
	wait_for(c, MENTION_CASES);
	persist_writer_destroy(w);
	for (int i = 0; i < MENTION_CASES; i++)
		assert_int_equal(c->got[i].outcome, PERSIST_COMMITTED);
	collector_free(c);
	assert_dense(channel, MENTION_CASES);
	return channel;
}

static void assert_mentions(int64_t channel)
{
	for (int i = 0; i < MENTION_CASES; i++) {
		PGresult *res =
		    sql("SELECT mentions::text FROM messages WHERE channel_id = %ld AND "
			"client_msg_id = 'm%d'",
			(long)channel, i);

		assert_int_equal(PQntuples(res), 1);
		if (strcmp(PQgetvalue(res, 0, 0), mention_cases[i].mentions) != 0)
			fail_msg("body '%s': mentions %s, want %s", mention_cases[i].body,
				 PQgetvalue(res, 0, 0), mention_cases[i].mentions);
		PQclear(res);
	}
}

static void test_mentions_stored_and_inlined(void **state)
{
	PGresult *res;
	char plan[4096] = "";

	assert_mentions(publish_mention_cases());
	/* The column's function is one CASE PostgreSQL inlines: the plan
	 * shows the strpos, not a call of fanout_mentions itself. */
	res = sql("EXPLAIN (VERBOSE, COSTS OFF) SELECT fanout_mentions(body) FROM messages "
		  "LIMIT 1");
	for (int r = 0; r < PQntuples(res); r++)
		snprintf(plan + strlen(plan), sizeof(plan) - strlen(plan), "%s\n",
			 PQgetvalue(res, r, 0));
	PQclear(res);
	if (strstr(plan, "strpos(") == NULL || strstr(plan, "fanout_mentions(") != NULL)
		fail_msg("fanout_mentions is not inlined:\n%s", plan);
	/* NULL in, NULL out, as the STRICT function of 0010 answered. */
	assert_int_equal(sql_long("SELECT count(*) FROM (SELECT fanout_mentions(NULL) AS m) x "
				  "WHERE m IS NULL"),
			 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mentions_stored_and_inlined),
	};
	return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
