/* SPDX-License-Identifier: BSD-3-Clause */
/* Integration tests of the search indexer (persist/indexer.c) against the
 * real PostgreSQL deploy/test starts: what a writer commits reaches the
 * index after its commit, every message once and the channel's head with
 * it; a channel thousands of messages behind is caught up in rounds; the
 * sweep finds a channel nobody noted; an edit or a delete that comes before
 * the indexer leaves the index saying what the message says now, and so
 * does a delete that commits while a round is indexing the message; a body of
 * a megabyte of distinct words (more than a tsvector holds) does not stop
 * the indexer; a round waits, two seconds at most and never for a flush,
 * while a writer lane is behind its queue.
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

#include <pthread.h>
#include <stdatomic.h>
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

/* Publishes n messages "the WORD ..." through w, waits for their commits
 * and their index, and checks that all n are found by WORD. */
static void publish_and_find(struct persist_writer *w, struct collector *c, int64_t ch, int n,
			     const char *word)
{
	char id[32], body[64];

	snprintf(body, sizeof(body), "the %s is here", word);
	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%s%d", word, i);
		assert_int_equal(publish(w, ch, 1, id, body, (uintptr_t)i), 0);
	}
	wait_for(c, n);
	assert_int_equal(persist_writer_search_flush(w, 10000), 0);
	assert_int_equal(indexed_rows(ch, word), n);
}

static void test_committed_messages_are_indexed(void **state)
{
	struct collector *c = collector_new(64);
	struct persist_writer *w = writer_new(c, 8, 1024);
	int64_t ch = new_channel("ix");

	(void)state;
	publish_and_find(w, c, ch, 30, "zebrafish");
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

/* An indexer with its start-up sweep done and its metrics registered. */
static struct search_indexer *warm_indexer(void)
{
	struct search_indexer *ix = search_indexer_create(dsn, false, 200, 0);
	int64_t first = new_channel("ixwarm");

	assert_non_null(ix);
	metrics_reset();
	assert_int_equal(search_indexer_register_metrics(ix), 0);
	insert_messages(first, 1, 1, "wombat");
	search_indexer_note(ix, first, 1);
	assert_int_equal(search_indexer_flush(ix, 60000), 0);
	return ix;
}

/* Notes that come within 20 ms of each other share a round: on many small
 * channels a round per note was most of the indexer's CPU. Ten channels
 * noted a millisecond apart take one round (two or three if this machine
 * stalls), where a round per note would take up to ten. */
static void test_notes_close_together_share_a_round(void **state)
{
	struct search_indexer *ix = warm_indexer();
	int64_t ch[10];
	long rounds;

	(void)state;
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

/* Says "a writer lane is behind" every 20 ms until told to stop. */
struct behind {
	struct search_indexer *ix;
	atomic_bool stop;
	pthread_t thread;
};

static void *say_behind(void *arg)
{
	struct behind *b = arg;

	while (!atomic_load(&b->stop)) {
		search_indexer_writer_behind(b->ix);
		usleep(20000);
	}
	return NULL;
}

static void behind_start(struct behind *b, struct search_indexer *ix)
{
	b->ix = ix;
	atomic_store(&b->stop, false);
	assert_int_equal(pthread_create(&b->thread, NULL, say_behind, b), 0);
}

static void behind_stop(struct behind *b)
{
	atomic_store(&b->stop, true);
	pthread_join(b->thread, NULL);
}

/* Milliseconds until the channel's head reaches seq, polled every 10 ms
 * for at most 10 s (then 10,000). */
static long ms_until_head(int64_t ch, long seq, uint64_t since)
{
	uint64_t until = since + 10000000000ull;

	while (head(ch) != seq && time_mono_ns() < until)
		usleep(10000);
	return head(ch) == seq ? (long)((time_mono_ns() - since) / 1000000) : 10000;
}

/* While a writer lane is behind, a round waits for it: a message noted
 * then is not indexed within half a second (20 ms without a lane behind),
 * and is indexed soon after the lane is no longer behind, with no flush;
 * the round is counted as one that waited. */
static void test_a_round_waits_for_a_writer_behind(void **state)
{
	struct search_indexer *ix = warm_indexer();
	int64_t ch = new_channel("ixyield");
	struct behind b;
	uint64_t t0;
	long ms, yields;

	(void)state;
	yields = fixture_metric("fanout_search_index_yields_total");
	insert_messages(ch, 1, 3, "tapir");
	behind_start(&b, ix);
	usleep(30000);
	search_indexer_note(ix, ch, 3);
	usleep(500000);
	assert_int_equal(head(ch), -1);
	t0 = time_mono_ns();
	behind_stop(&b);
	ms = ms_until_head(ch, 3, t0);
	if (ms > 1000)
		fail_msg("indexed %ld ms after the lane caught up", ms);
	assert_int_equal(indexed_rows(ch, "tapir"), 3);
	assert_true(fixture_metric("fanout_search_index_yields_total") > yields);
	search_indexer_destroy(ix, 1000);
	metrics_reset();
}

/* A lane that stays behind holds a round two seconds at most from its
 * first note; and a flush does not wait for a lane behind at all. */
static void test_a_writer_behind_holds_a_round_two_seconds_at_most(void **state)
{
	struct search_indexer *ix = warm_indexer();
	int64_t ch = new_channel("ixcap"), ch2 = new_channel("ixhurry");
	struct behind b;
	uint64_t t0;
	long ms;

	(void)state;
	insert_messages(ch, 1, 2, "dugong");
	insert_messages(ch2, 1, 1, "pangolin");
	behind_start(&b, ix);
	usleep(30000);
	t0 = time_mono_ns();
	search_indexer_note(ix, ch, 2);
	ms = ms_until_head(ch, 2, t0);
	if (ms < 1500 || ms > 4000)
		fail_msg("a lane behind held the round %ld ms, not about 2,000", ms);
	t0 = time_mono_ns();
	search_indexer_note(ix, ch2, 1);
	assert_int_equal(search_indexer_flush(ix, 10000), 0);
	ms = (long)((time_mono_ns() - t0) / 1000000);
	behind_stop(&b);
	assert_int_equal(indexed_rows(ch2, "pangolin"), 1);
	if (ms > 1000)
		fail_msg("a flush waited %ld ms for a lane behind", ms);
	search_indexer_destroy(ix, 1000);
	metrics_reset();
}

/* A writer whose lane takes 8 at a time, handed 600 messages at once,
 * is behind its queue: the indexer's rounds wait for it, and every message
 * is indexed all the same. */
static void test_a_lane_behind_its_queue_tells_the_indexer(void **state)
{
	struct collector *c = collector_new(600);
	struct persist_writer *w;
	int64_t ch = new_channel("ixlane");
	long yields;

	(void)state;
	metrics_reset();
	w = writer_new(c, 8, 1024);
	assert_int_equal(persist_writer_register_metrics(w), 0);
	yields = fixture_metric("fanout_search_index_yields_total"); /* the tests' before */
	publish_and_find(w, c, ch, 600, "manatee");
	assert_true(fixture_metric("fanout_search_index_yields_total") > yields);
	persist_writer_destroy(w);
	collector_free(c);
	metrics_reset();
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
	    cmocka_unit_test(test_a_round_waits_for_a_writer_behind),
	    cmocka_unit_test(test_a_writer_behind_holds_a_round_two_seconds_at_most),
	    cmocka_unit_test(test_a_lane_behind_its_queue_tells_the_indexer),
	};

	return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
