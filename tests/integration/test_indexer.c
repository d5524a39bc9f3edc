/* SPDX-License-Identifier: BSD-3-Clause */
/* Integration tests of the search indexer (persist/indexer.c) against the
 * real PostgreSQL deploy/test starts: what a writer commits reaches the
 * index after its commit, every message once and the channel's head with
 * it; a channel thousands of messages behind is caught up in rounds; the
 * sweep finds a channel nobody noted; an edit or a delete that comes before
 * the indexer leaves the index saying what the message says now, and so
 * does a delete that commits while a round is indexing the message; a body of
 * a megabyte of distinct words (more than a tsvector holds) does not stop
 * the indexer.
 *
 * Needs FANOUT_TEST_PG_DSN; missing it is a failure, not a skip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "indexer.h"
#include "metrics.h"
#include "pg.h"
#include "writer.h"

#include "persist_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Messages seq from..to of channel, written as a writer would, the head
 * moved to `to`; nothing noted. */
static void insert_messages(int64_t channel, int from, int to, const char *word)
{
	PQclear(sql("INSERT INTO messages (channel_id, seq, author_id, client_msg_id, body,"
		    " created_at, mentions) SELECT %lld, g, 1, 'm' || g, '%s number ' || g, now(),"
		    " '{}'"
		    " FROM generate_series(%d, %d) g",
		    (long long)channel, word, from, to));
	PQclear(sql("UPDATE channels SET last_seq = %d WHERE id = %lld", to, (long long)channel));
}

static long indexed_rows(int64_t channel, const char *word)
{
	return sql_long("SELECT count(*) FROM message_search WHERE channel_id = %lld"
			" AND search @@ to_tsquery('english', '%s')",
			(long long)channel, word);
}

static long head(int64_t channel)
{
	return sql_long("SELECT coalesce((SELECT indexed_seq FROM search_heads"
			" WHERE channel_id = %lld), -1)",
			(long long)channel);
}

static void test_committed_messages_are_indexed(void **state)
{
	struct collector *c = collector_new(64);
	struct persist_writer *w = writer_new(c, 8, 1024);
	int64_t ch = new_channel("ix");
	char id[16];

	(void)state;
	for (int i = 0; i < 30; i++) {
		snprintf(id, sizeof(id), "x%d", i);
		assert_int_equal(publish(w, ch, 1, id, "the zebrafish swims", (uintptr_t)i), 0);
	}
	wait_for(c, 30);
	assert_int_equal(persist_writer_search_flush(w, 10000), 0);
	assert_int_equal(indexed_rows(ch, "zebrafish"), 30);
	assert_int_equal(
	    sql_long("SELECT count(*) FROM message_search WHERE channel_id = %lld", (long long)ch),
	    30);
	assert_int_equal(head(ch), 30);
	persist_writer_destroy(w);
	collector_free(c);
}

/* Past INDEX_ROWS_MAX (5,000) a channel takes several statements. */
static void test_a_channel_far_behind_is_caught_up_in_rounds(void **state)
{
	struct search_indexer *ix = search_indexer_create(dsn, false, 200, 0);
	int64_t ch = new_channel("ixfar");

	(void)state;
	assert_non_null(ix);
	insert_messages(ch, 1, 12345, "okapi");
	assert_int_equal(head(ch), -1);
	search_indexer_note(ix, ch, 12345);
	assert_int_equal(search_indexer_flush(ix, 60000), 0);
	assert_int_equal(head(ch), 12345);
	assert_int_equal(indexed_rows(ch, "okapi"), 12345);
	search_indexer_destroy(ix, 1000);
}

/* Notes that come within 20 ms of each other share a round: on many small
 * channels a round per note was most of the indexer's CPU. Ten channels
 * noted a millisecond apart take one round (two or three if this machine
 * stalls), where a round per note would take up to ten. */
static void test_notes_close_together_share_a_round(void **state)
{
	struct search_indexer *ix = search_indexer_create(dsn, false, 200, 0);
	int64_t first = new_channel("ixwarm"), ch[10];
	long rounds;

	(void)state;
	assert_non_null(ix);
	metrics_reset();
	assert_int_equal(search_indexer_register_metrics(ix), 0);
	/* The start-up sweep's rounds out of the way. */
	insert_messages(first, 1, 1, "wombat");
	search_indexer_note(ix, first, 1);
	assert_int_equal(search_indexer_flush(ix, 60000), 0);
	for (int i = 0; i < 10; i++) {
		ch[i] = new_channel("ixclose");
		insert_messages(ch[i], 1, 1, "numbat");
	}
	rounds = fixture_metric("fanout_search_index_rounds_total");
	for (int i = 0; i < 10; i++) {
		search_indexer_note(ix, ch[i], 1);
		usleep(1000);
	}
	assert_int_equal(search_indexer_flush(ix, 60000), 0);
	rounds = fixture_metric("fanout_search_index_rounds_total") - rounds;
	for (int i = 0; i < 10; i++)
		assert_int_equal(indexed_rows(ch[i], "numbat"), 1);
	if (rounds < 1 || rounds > 3)
		fail_msg("ten notes a millisecond apart took %ld rounds", rounds);
	search_indexer_destroy(ix, 1000);
	metrics_reset();
}

static void test_the_sweep_finds_a_channel_nobody_noted(void **state)
{
	struct search_indexer *ix;
	int64_t ch = new_channel("ixsweep");
	uint64_t until = time_mono_ns() + 20000000000ull;

	(void)state;
	insert_messages(ch, 1, 7, "quokka");
	ix = search_indexer_create(dsn, false, 200, 100);
	assert_non_null(ix);
	while (head(ch) != 7 && time_mono_ns() < until)
		usleep(20000);
	assert_int_equal(head(ch), 7);
	assert_int_equal(indexed_rows(ch, "quokka"), 7);
	/* Left behind again later (a node gone before its round): found again. */
	insert_messages(ch, 8, 9, "quokka");
	while (head(ch) != 9 && time_mono_ns() < until)
		usleep(20000);
	assert_int_equal(indexed_rows(ch, "quokka"), 9);
	search_indexer_destroy(ix, 1000);
}

static void test_edits_and_deletes_before_the_indexer(void **state)
{
	struct search_indexer *ix;
	int64_t ch = new_channel("ixedit");

	(void)state;
	insert_messages(ch, 1, 2, "alpaca");
	PQclear(
	    sql("INSERT INTO messages (channel_id, seq, author_id, client_msg_id, kind, body,"
		" parent_seq, created_at) VALUES (%lld, 3, 1, 'e3', 'edit', 'capybara', 1, now()),"
		" (%lld, 4, 1, 'd4', 'delete', '', 2, now())",
		(long long)ch, (long long)ch));
	PQclear(sql("UPDATE channels SET last_seq = 4 WHERE id = %lld", (long long)ch));
	/* The edit wrote its words at once; no indexer runs yet (one started
	 * earlier could sweep the channel up meanwhile: the next test's race). */
	assert_int_equal(indexed_rows(ch, "capybara"), 1);
	assert_int_equal(head(ch), -1);
	ix = search_indexer_create(dsn, false, 200, 0);
	assert_non_null(ix);
	search_indexer_note(ix, ch, 4);
	assert_int_equal(search_indexer_flush(ix, 10000), 0);
	assert_int_equal(head(ch), 4);
	/* Message 1 says capybara now, message 2 is gone, the events are no hits. */
	assert_int_equal(indexed_rows(ch, "capybara"), 1);
	assert_int_equal(indexed_rows(ch, "alpaca"), 0);
	assert_int_equal(sql_long("SELECT count(*) FROM message_search WHERE channel_id = %lld"
				  " AND length(search) > 0",
				  (long long)ch),
			 1);
	/* Edited again, after the indexer: the words follow. */
	PQclear(
	    sql("INSERT INTO messages (channel_id, seq, author_id, client_msg_id, kind, body,"
		" parent_seq, created_at) VALUES (%lld, 5, 1, 'e5', 'edit', 'wombat', 1, now())",
		(long long)ch));
	assert_int_equal(indexed_rows(ch, "capybara"), 0);
	assert_int_equal(indexed_rows(ch, "wombat"), 1);
	search_indexer_destroy(ix, 1000);
}

/* Whether an indexer round is waiting for a lock (on the held head). */
static bool round_waiting(void)
{
	return sql_long("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
			" AND query LIKE 'WITH want AS%%'") > 0;
}

/* A round takes its snapshot, then waits on the channel's search head,
 * which another transaction holds; meanwhile message 2 is deleted and the
 * delete commits. The round's insert of message 2's words, from its older
 * snapshot, must not bring them back (migration 0014: the delete leaves a
 * row for that insert to conflict with). */
static void test_a_delete_during_an_index_round_stays_deleted(void **state)
{
	struct search_indexer *ix;
	int64_t ch = new_channel("ixrace");
	PGconn *hold = PQconnectdb(dsn);
	uint64_t until = time_mono_ns() + 20000000000ull;
	PGresult *res;
	char q[160];

	(void)state;
	assert_int_equal(PQstatus(hold), CONNECTION_OK);
	insert_messages(ch, 1, 2, "ibex");
	snprintf(q, sizeof(q), "BEGIN; INSERT INTO search_heads VALUES (%lld, 0)", (long long)ch);
	res = PQexec(hold, q);
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	/* started now, its sweep at start waits on the head as well */
	ix = search_indexer_create(dsn, false, 200, 0);
	assert_non_null(ix);
	search_indexer_note(ix, ch, 2);
	while (!round_waiting() && time_mono_ns() < until)
		usleep(20000);
	assert_true(round_waiting());
	PQclear(sql("INSERT INTO messages (channel_id, seq, author_id, client_msg_id, kind, body,"
		    " parent_seq, created_at) VALUES (%lld, 3, 1, 'd3', 'delete', '', 2, now())",
		    (long long)ch));
	PQclear(sql("UPDATE channels SET last_seq = 3 WHERE id = %lld", (long long)ch));
	PQclear(PQexec(hold, "ROLLBACK"));
	PQfinish(hold);
	assert_int_equal(search_indexer_flush(ix, 10000), 0);
	assert_int_equal(indexed_rows(ch, "ibex"), 1); /* message 1, not the deleted 2 */
	search_indexer_destroy(ix, 1000);
}

static void test_a_body_too_big_for_a_vector_does_not_stop_it(void **state)
{
	struct search_indexer *ix = search_indexer_create(dsn, false, 200, 0);
	int64_t ch = new_channel("ixbig");

	(void)state;
	assert_non_null(ix);
	/* 30,000 distinct 32-letter words: over a megabyte of lexemes. */
	PQclear(
	    sql("INSERT INTO messages (channel_id, seq, author_id, client_msg_id, body,"
		" created_at, mentions) SELECT %lld, 1, 1, 'big', string_agg(md5(g::text), ' '),"
		" now(), '{}'"
		" FROM generate_series(1, 30000) g",
		(long long)ch));
	insert_messages(ch, 2, 3, "narwhal");
	search_indexer_note(ix, ch, 3);
	assert_int_equal(search_indexer_flush(ix, 10000), 0);
	assert_int_equal(head(ch), 3);
	assert_int_equal(indexed_rows(ch, "narwhal"), 2);
	/* The big one is found by a word from its start. */
	assert_int_equal(sql_long("SELECT count(*) FROM message_search WHERE channel_id = %lld"
				  " AND seq = 1 AND search @@ to_tsquery('simple', md5('1'))",
				  (long long)ch),
			 1);
	search_indexer_destroy(ix, 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_committed_messages_are_indexed),
	    cmocka_unit_test(test_a_channel_far_behind_is_caught_up_in_rounds),
	    cmocka_unit_test(test_notes_close_together_share_a_round),
	    cmocka_unit_test(test_the_sweep_finds_a_channel_nobody_noted),
	    cmocka_unit_test(test_edits_and_deletes_before_the_indexer),
	    cmocka_unit_test(test_a_delete_during_an_index_round_stays_deleted),
	    cmocka_unit_test(test_a_body_too_big_for_a_vector_does_not_stop_it),
	};

	return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
