/* SPDX-License-Identifier: BSD-3-Clause */
/* Integration tests of what the persist writer's append stores per row,
 * against the real PostgreSQL deploy/test starts: each message's mentions
 * (written by the append since migration 0017, the values 0010's query
 * gave, the fast path inlined; a row without them refused), and the same
 * rows whether a batch goes by the pipelined append or by COPY
 * (persist/batch_copy.c), and a commit PostgreSQL refuses failing only
 * the message it refuses, both ways. The persist suite
 * runs again as persist-copy with every batch by COPY: duplicates, the
 * fence, a restart mid-stream.
 *
 * Needs FANOUT_TEST_PG_DSN; missing it is a failure, not a skip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "metrics.h"
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

/* A writer whose batches from copy_min_rows rows go by COPY (0: never);
 * a 100 ms window gathers what is published at once into one batch. */
static struct persist_writer *writer_copying(struct collector *c, int copy_min_rows)
{
	struct persist_writer_config cfg = {.dsn = dsn,
					    .batch_max = 64,
					    .batch_window_us = 100000,
					    .queue_max = 100,
					    .dedup_cache = 4096,
					    .copy_min_rows = copy_min_rows};
	struct persist_writer *w = persist_writer_create(&cfg, collect, c);

	assert_non_null(w);
	return w;
}

/* Publishes the mention cases into a new channel through a writer whose
 * batches from copy_min_rows rows go by COPY (0: never); returns it. */
static int64_t publish_mention_cases(int copy_min_rows)
{
	struct collector *c = collector_new(MENTION_CASES);
	struct persist_writer *w = writer_copying(c, copy_min_rows);
	int64_t channel = new_channel(copy_min_rows ? "mention-copy" : "mention");
	char id[16];

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

static void test_mentions_written_and_inlined(void **state)
{
	PGresult *res;
	char plan[4096] = "";

	assert_mentions(publish_mention_cases(0));
	/* Written by the append, not generated (0017): PostgreSQL no longer
	 * plans the column at every statement. */
	assert_int_equal(
	    sql_long("SELECT count(*) FROM pg_attribute WHERE attrelid = "
		     "'messages'::regclass AND attname = 'mentions' AND attgenerated = ''"),
	    1);
	/* A message without them is refused, an event row takes none. */
	res = sql_try("INSERT INTO messages (channel_id, seq, author_id, client_msg_id, body, "
		      "created_at) VALUES (%ld, 1, 1, 'nomentions', 'x', now())",
		      (long)new_channel("unmentioned"));
	assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
	assert_non_null(strstr(PQresultErrorMessage(res), "messages_mentions_written"));
	PQclear(res);
	res =
	    sql_try("INSERT INTO messages (channel_id, seq, author_id, client_msg_id, kind, "
		    "body, created_at, mentions) VALUES (%ld, 1, 1, 'event', 'react', 'x', now(), "
		    "'{}')",
		    (long)new_channel("unmentioned-event"));
	assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
	assert_non_null(strstr(PQresultErrorMessage(res), "messages_mentions_written"));
	PQclear(res);
	/* The function the append calls is one CASE PostgreSQL inlines into
	 * its plan: the plan shows the strpos, not a call of fanout_mentions
	 * itself. */
	res = sql("EXPLAIN (VERBOSE, COSTS OFF) SELECT fanout_mentions(body) FROM messages "
		  "LIMIT 1");
	for (int r = 0; r < PQntuples(res); r++)
		snprintf(plan + strlen(plan), sizeof(plan) - strlen(plan), "%s\n",
			 PQgetvalue(res, r, 0));
	PQclear(res);
	if (strstr(plan, "strpos(") == NULL || strstr(plan, "fanout_mentions(") != NULL)
		fail_msg("fanout_mentions is not inlined:\n%s", plan);
	/* The scan it calls is no candidate for inlining (0016): PostgreSQL
	 * would read its query back at every statement only to give up. */
	res = sql("SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang "
		  "WHERE p.proname = 'fanout_mentions_scan'");
	assert_int_equal(PQntuples(res), 1);
	assert_string_equal(PQgetvalue(res, 0, 0), "plpgsql");
	PQclear(res);
	/* NULL in, NULL out, as the STRICT function of 0010 answered. */
	assert_int_equal(sql_long("SELECT count(*) FROM (SELECT fanout_mentions(NULL) AS m) x "
				  "WHERE m IS NULL"),
			 1);
}

/* A thread and its replies, a reaction, an edit and a delete, published in two
 * batches (the events name messages of the first) through a writer with
 * copy_min_rows; returns the channel. acks[] gets each message's ack. */
#define EVENT_CASES 9
static int64_t publish_thread(int copy_min_rows, struct outcome *acks)
{
	static const struct {
		const char *kind, *body;
		int64_t parent;
	} cases[EVENT_CASES] = {
	    {"message", "a thread for @dora", 0},
	    {"message", "plain words", 0},
	    {"message", "ünïcödé ✓ and a tab\t", 0},
	    {"message", "to be deleted", 0},
	    {"message", "a reply", 1},
	    {"react", "thumbsup", 1},
	    {"edit", "plain words, edited for @erin", 2},
	    {"message", "another reply @Fay.", 1},
	    {"delete", "", 4},
	};
	struct collector *c = collector_new(EVENT_CASES);
	struct persist_writer *w;
	int64_t channel = new_channel(copy_min_rows ? "events-copy" : "events");
	char id[16];
	long copies;

	metrics_reset();
	w = writer_copying(c, copy_min_rows);
	assert_int_equal(persist_writer_register_metrics(w), 0);
	copies = fixture_metric("fanout_persist_copy_batches_total"); /* process-wide */
	for (int i = 0; i < EVENT_CASES; i++) {
		struct persist_publish p = {.channel_id = channel,
					    .author_id = 7,
					    .kind = cases[i].kind,
					    .client_msg_id = id,
					    .body = cases[i].body,
					    .body_len = strlen(cases[i].body),
					    .parent_seq = cases[i].parent};

		snprintf(id, sizeof(id), "t%d", i);
		assert_int_equal(persist_writer_submit(w, &p, (void *)(uintptr_t)i), 0);
		if (i == 3) /* the events' parents durable first */
			wait_for(c, 4);
	}
	wait_for(c, EVENT_CASES);
	/* Two batches, and by COPY exactly when asked. */
	assert_int_equal(fixture_metric("fanout_persist_copy_batches_total") - copies,
			 copy_min_rows ? 2 : 0);
	persist_writer_destroy(w);
	metrics_reset();
	for (int i = 0; i < EVENT_CASES; i++) {
		struct outcome *o = &c->got[i];

		assert_int_equal(o->outcome, PERSIST_COMMITTED);
		acks[o->cookie] = *o;
	}
	collector_free(c);
	assert_dense(channel, EVENT_CASES);
	return channel;
}

/* The channel's rows as text, one line each, in seq order, with each
 * row's created_at against its ack's: "=" when they agree to the
 * microsecond. */
static void rows_text(int64_t channel, const struct outcome *acks, char *out, size_t size)
{
	PGresult *res = sql("SELECT seq, author_id, client_msg_id, kind, body, parent_seq, "
			    "mentions, owner_epoch, edited_at IS NOT NULL, deleted_at IS NOT NULL, "
			    "(extract(epoch FROM created_at) * 1000000)::int8, "
			    "(SELECT string_agg(emoji || ':' || user_id, ',') FROM reactions r "
			    " WHERE r.channel_id = m.channel_id AND r.seq = m.seq) "
			    "FROM messages m WHERE channel_id = %ld ORDER BY seq",
			    (long)channel);
	size_t len = 0;

	assert_int_equal(PQntuples(res), EVENT_CASES);
	for (int r = 0; r < PQntuples(res); r++) {
		const struct outcome *ack = &acks[atoi(PQgetvalue(res, r, 2) + 1)];

		assert_int_equal(ack->seq, atol(PQgetvalue(res, r, 0)));
		for (int col = 0; col < 10; col++)
			len +=
			    (size_t)snprintf(out + len, size - len, "%s|", PQgetvalue(res, r, col));
		len += (size_t)snprintf(out + len, size - len, "%s|%s\n",
					atoll(PQgetvalue(res, r, 10)) == ack->created_at_us ? "="
											    : "!=",
					PQgetvalue(res, r, 11));
		assert_true(len < size);
	}
	PQclear(res);
}

static void test_copy_stores_what_the_append_stores(void **state)
{
	struct outcome acks[2][EVENT_CASES];
	static char rows[2][8192];

	rows_text(publish_thread(0, acks[0]), acks[0], rows[0], sizeof(rows[0]));
	rows_text(publish_thread(1, acks[1]), acks[1], rows[1], sizeof(rows[1]));
	if (strcmp(rows[0], rows[1]) != 0)
		fail_msg("the append stored\n%sCOPY stored\n%s", rows[0], rows[1]);
	/* Not two empty answers: the edit, the reaction and the delete took. */
	assert_non_null(strstr(rows[0], "|plain words, edited for @erin|"));
	assert_non_null(strstr(rows[0], "{erin}"));
	assert_non_null(strstr(rows[0], "|thumbsup:7\n"));
	assert_non_null(strstr(rows[0], "|t3|message||"));
	assert_null(strstr(rows[0], "!="));
	assert_mentions(publish_mention_cases(1));
}

/* Publishes four messages in one batch through a writer with
 * copy_min_rows while a deferred trigger refuses the second's row at
 * commit: PostgreSQL rolls the batch back at its sync (the append) or its
 * COMMIT (COPY), the message refused fails alone and the other three
 * commit, in order, the channel dense, nothing of the refused one kept. */
static void commit_refused(int copy_min_rows)
{
	static const char *bodies[] = {"first", "refuse at commit", "third", "fourth"};
	struct collector *c = collector_new(4);
	struct persist_writer *w = writer_copying(c, copy_min_rows);
	int64_t channel = new_channel(copy_min_rows ? "refused-copy" : "refused");
	int64_t seq = 0;
	char id[16];

	for (int i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "r%d", i);
		assert_int_equal(publish(w, channel, 1, id, bodies[i], (uintptr_t)i), 0);
	}
	wait_for(c, 4);
	persist_writer_destroy(w);
	for (int i = 0; i < 4; i++) {
		const struct outcome *o = &c->got[i];

		if (o->cookie == 1) {
			assert_int_equal(o->outcome, PERSIST_FAILED);
			assert_int_equal(o->error, -EIO);
			continue;
		}
		assert_int_equal(o->outcome, PERSIST_COMMITTED);
		assert_true(o->seq > seq);
		seq = o->seq;
	}
	collector_free(c);
	assert_dense(channel, 3);
	assert_int_equal(sql_long("SELECT count(*) FROM messages WHERE channel_id = %ld AND "
				  "body = 'refuse at commit'",
				  (long)channel),
			 0);
}

static void test_commit_refused_at_the_sync(void **state)
{
	/* Left by a run that failed half way, if any. */
	PQclear(sql("DROP TRIGGER IF EXISTS test_refuse_at_commit ON messages"));
	PQclear(sql("CREATE OR REPLACE FUNCTION test_refuse_at_commit() RETURNS trigger "
		    "LANGUAGE plpgsql AS $$BEGIN IF NEW.body = 'refuse at commit' THEN "
		    "RAISE EXCEPTION 'refused at commit'; END IF; RETURN NULL; END$$"));
	PQclear(sql("CREATE CONSTRAINT TRIGGER test_refuse_at_commit AFTER INSERT ON messages "
		    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "
		    "test_refuse_at_commit()"));
	commit_refused(0);
	commit_refused(1);
	PQclear(sql("DROP TRIGGER test_refuse_at_commit ON messages"));
	PQclear(sql("DROP FUNCTION test_refuse_at_commit()"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mentions_written_and_inlined),
	    cmocka_unit_test(test_copy_stores_what_the_append_stores),
	    cmocka_unit_test(test_commit_refused_at_the_sync),
	};
	return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
