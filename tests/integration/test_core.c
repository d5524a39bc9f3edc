/* SPDX-License-Identifier: BSD-3-Clause */
/* Tests of the messaging core's sessions against a fake transport and a fake
 * protocol table (struct edge_protocol): hello answered at once from a chosen
 * membership, history recorded instead of read. The real requests.c runs,
 * with DPDK's real EAL for the worker's tables (no hugepages). Checked: no
 * request reaches a channel the user is not a member of, and a slow consumer
 * stays within its send queue, is told it lagged, resumes from the cursor
 * before the first dropped frame, and ends with every seq once, in order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "edge-internal.h"
#include "handoff.h"

#include <pthread.h>

#include <stdatomic.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SENDQ_BYTES 4096
#define BODY_BYTES  900

static struct {
	int calls;
	int64_t channel, after;
	bool catch_up;
} history;

static int writes_wanted;

static void want_write(void *ctx)
{
	writes_wanted++;
}

static void pause_rx(void *ctx, bool off)
{
}

/* hello: the user belongs to channels 1, 2 and the live-only 3, and no
 * others. */
static int fake_hello(struct session *s)
{
	static const int64_t member[] = {1, 2, 3};
	json_t *channels = json_pack(
	    "[{s:i, s:s, s:s, s:i}, {s:i, s:s, s:s, s:i}, {s:i, s:s, s:s, s:i}]", "id", 1, "name",
	    "general", "kind", "public", "last_seq", 0, "id", 2, "name", "team", "kind", "private",
	    "last_seq", 0, "id", 3, "name", "live", "kind", "ephemeral", "last_seq", 0);

	assert_int_equal(worker_register(s->w, s), 0);
	session_ready(s, 42, channels, member, 3);
	return 0;
}

static int fake_history(struct session *s, int64_t channel, int64_t after, int64_t before,
			int64_t parent, int limit, const char *req, bool catch_up)
{
	history.calls++;
	history.channel = channel;
	history.after = after;
	history.catch_up = catch_up;
	return 0;
}

static const struct edge_protocol fake_protocol = {
    .handle = session_handle,
    .hello_start = fake_hello,
    .history_start = fake_history,
    .presence_deliver = session_presence_deliver,
};

static struct fanout *fanout;
static struct edge *edge;
static struct edge_worker *worker;
static struct session *s;

static int setup_eal(void **state)
{
	return fanout_eal_init(64, NULL);
}

static int setup(void **state)
{
	struct edge_config cfg = {.heartbeat_ms = 30000,
				  .max_message_bytes = 1 << 20,
				  .send_queue_bytes = SENDQ_BYTES,
				  .publish_rate = 100,
				  .publish_burst = 100,
				  .max_text_bytes = 4000,
				  .presence_grace_ms = 1000,
				  .presence_interval_ms = 1000};
	static const struct session_ops ops = {want_write, pause_rx};
	struct session_transport t = {&ops, NULL, "test"};

	memset(&history, 0, sizeof(history));
	fanout = fanout_create(1, 1024);
	edge = fanout ? edge_create(&cfg, fanout, NULL, NULL, &fake_protocol, 1) : NULL;
	worker = edge ? edge_worker_create(edge, 0, 16) : NULL;
	s = worker ? session_open(worker, "alice", &t) : NULL;
	return s ? 0 : -1;
}

static struct handoff *handoff;

/* The same, the worker handing its publishes off as a DPDK lcore does. */
static int setup_handoff(void **state)
{
	if (setup(state) != 0)
		return -1;
	handoff = handoff_start(edge);
	return handoff && handoff_attach(handoff, worker) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	session_closed(s);
	edge_stop(edge);
	handoff_stop(handoff);
	edge_worker_drain(worker);
	handoff_detach(worker);
	handoff_destroy(handoff);
	handoff = NULL;
	edge_worker_destroy(worker);
	edge_destroy(edge);
	fanout_destroy(fanout);
	return 0;
}

/* The next frame the session would send, as text ("" when none). */
static const char *next_out(void)
{
	static char text[8192];
	struct frame *f = session_peek(s);

	if (f == NULL)
		return "";
	snprintf(text, sizeof(text), "%.*s", (int)f->len, (const char *)frame_payload(f));
	session_sent(s);
	return text;
}

static void drain_out(void)
{
	while (*next_out())
		;
}

static void send_text(const char *json)
{
	session_on_text(s, json, strlen(json));
}

/* An idle session is one allocation within jemalloc's 192-byte class (for
 * names up to 34 bytes, here 5 and 4): its send queue, kept while frames
 * come, is given back at the worker's tick after it drains and taken again
 * by the next frame, and its membership is a set. */
static void test_an_idle_session_holds_one_small_allocation(void **state)
{
	assert_non_null(strstr(next_out(), "\"type\":\"hello\""));
	drain_out();
	assert_non_null(s->q); /* not between bursts */
	edge_worker_tick(worker);
	assert_null(s->q);
	assert_null(s->pending);
	assert_null(s->close_reason);
	assert_true(malloc_usable_size(s) <= 192);
	assert_true(offsetof(struct session, user_name) + 34 <= 192);
	assert_string_equal(session_peer(s), "test");

	assert_true(session_is_member(s, 2) && session_is_ephemeral(s, 3));
	assert_false(session_is_member(s, 4) || session_is_ephemeral(s, 1));
	session_member_change(s, 4, true, true);
	assert_true(session_is_member(s, 4) && session_is_ephemeral(s, 4));
	session_member_change(s, 2, false, false);
	assert_false(session_is_member(s, 2));
	assert_int_equal(session_queued(s), 2); /* "joined", "left" */
	assert_non_null(s->q);
	assert_true(session_queued_bytes(s) > 0);
	assert_non_null(strstr(next_out(), "\"joined\""));
	edge_worker_tick(worker); /* "left" still waits: the queue stays */
	assert_non_null(s->q);
	assert_non_null(strstr(next_out(), "\"left\""));
	assert_int_equal(session_queued_bytes(s), 0);
	edge_worker_tick(worker);
	assert_null(s->q);
}

static void test_no_request_reaches_a_channel_of_others(void **state)
{
	static const char *const requests[] = {
	    "{\"type\":\"subscribe\",\"req\":\"1\",\"channels\":[{\"channel\":9,\"since\":0}]}",
	    "{\"type\":\"publish\",\"req\":\"2\",\"channel\":9,\"text\":\"x\","
	    "\"client_msg_id\":\"a\"}",
	    "{\"type\":\"history\",\"req\":\"3\",\"channel\":9,\"after\":0}",
	    "{\"type\":\"typing\",\"req\":\"4\",\"channel\":9}",
	    "{\"type\":\"mark_read\",\"req\":\"5\",\"channel\":9,\"seq\":1}",
	    "{\"type\":\"edit\",\"req\":\"6\",\"channel\":9,\"seq\":1,\"text\":\"y\"}",
	    "{\"type\":\"delete\",\"req\":\"7\",\"channel\":9,\"seq\":1}",
	    "{\"type\":\"react\",\"req\":\"8\",\"channel\":9,\"seq\":1,\"emoji\":\"x\"}",
	    "{\"type\":\"unreact\",\"req\":\"9\",\"channel\":9,\"seq\":1,\"emoji\":\"x\"}",
	};

	assert_non_null(strstr(next_out(), "\"type\":\"hello\""));
	drain_out();
	for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
		const char *out;

		send_text(requests[i]);
		out = next_out();
		assert_non_null(strstr(out, "\"code\":\"not_member\""));
		assert_string_equal(next_out(), "");
	}
	assert_int_equal(history.calls, 0);
	assert_null(session_find_sub(s, 9));
	/* The same subscribe on the user's own channel is answered. */
	send_text("{\"type\":\"subscribe\",\"req\":\"10\",\"channels\":[{\"channel\":2}]}");
	assert_non_null(strstr(next_out(), "\"type\":\"subscribed\""));
	assert_non_null(session_find_sub(s, 2));
}

/* A durable frame of channel 1 about size bytes long. */
static struct frame *durable_of(int64_t seq, size_t size)
{
	char body[2 * SENDQ_BYTES];
	int n =
	    snprintf(body, sizeof(body),
		     "{\"type\":\"message\",\"channel\":1,\"seq\":%lld,\"t\":\"", (long long)seq);

	assert_true(size < sizeof(body) - 64);
	memset(body + n, 'x', size - (size_t)n);
	snprintf(body + size, sizeof(body) - size, "\"}");
	return frame_new(FRAME_DURABLE, 1, seq, body, strlen(body));
}

static struct frame *durable(int64_t seq)
{
	return durable_of(seq, BODY_BYTES);
}

static int64_t seq_of(const char *out)
{
	const char *p = strstr(out, "\"seq\":");

	return p ? atoll(p + 6) : -1;
}

/* A catch-up page of history holding seqs from..to of a channel. */
static void answer_page(int64_t channel, struct persist_message *m, int64_t from, int64_t to,
			int64_t head)
{
	struct persist_history page = {.count = 0, .head = head, .messages = m};

	for (int64_t seq = from; seq <= to; seq++)
		m[page.count++] = (struct persist_message){.channel_id = channel,
							   .seq = seq,
							   .author_name = "bob",
							   .kind = "message",
							   .client_msg_id = "c",
							   .body = "b",
							   .body_len = 1,
							   .reactions = ""};
	session_history_page(s, &page, channel, NULL, true);
}

static void test_slow_consumer_stays_bounded_and_resumes_from_its_cursor(void **state)
{
	struct persist_message m[12];
	int64_t want = 1;
	const char *out;
	bool lagged = false;

	drain_out();
	send_text("{\"type\":\"subscribe\",\"req\":\"1\",\"channels\":[{\"channel\":1}]}");
	drain_out();
	/* Twelve frames to a client that reads none of them. */
	for (int64_t seq = 1; seq <= 12; seq++) {
		session_deliver(s, durable(seq));
		assert_true(session_queued_bytes(s) <= SENDQ_BYTES);
	}
	/* What is queued now: the frames that fit, then "lagged" saying where
	 * to resume (the seq before the first dropped frame), and nothing more
	 * durable: the rest waits for PostgreSQL. */
	while (*(out = next_out())) {
		if (strstr(out, "\"type\":\"lagged\"")) {
			assert_non_null(strstr(out, "\"resume_from\":"));
			lagged = true;
			continue;
		}
		assert_int_equal(seq_of(out), want);
		want++;
	}
	assert_true(lagged);
	assert_true(want < 12);
	/* Drained: the catch-up asks history for what follows the cursor. */
	session_fetch_more(s);
	assert_true(history.calls >= 1);
	assert_int_equal(history.channel, 1);
	assert_true(history.catch_up);
	assert_int_equal(history.after, want - 1);
	/* PostgreSQL answers each catch-up request with what follows its
	 * cursor (seqs up to 12 exist), until the session is live again; it may
	 * ask more than once (live frames it held past its bound were dropped). */
	for (int round = 0; round < 5 && session_find_sub(s, 1)->catching_up; round++) {
		int calls = history.calls;

		answer_page(1, m, history.after + 1, 12, -1);
		while (*(out = next_out())) {
			assert_int_equal(seq_of(out), want);
			want++;
		}
		session_fetch_more(s);
		if (session_find_sub(s, 1)->catching_up)
			assert_true(history.calls > calls);
	}
	assert_false(session_find_sub(s, 1)->catching_up);
	assert_int_equal(want, 13); /* every seq once, in order */
	assert_true(session_queued_bytes(s) <= SENDQ_BYTES);
	/* And live again: the next frame goes straight out. */
	session_deliver(s, durable(13));
	assert_int_equal(seq_of(next_out()), 13);
}

/* Live frames held during a catch-up are released after its last page, into
 * a queue the page may have nearly filled: one that does not fit waits (it
 * used to lag the queue, dropping the replayed frames, and then go out as if
 * live: a gap the client never got back). */
static void test_held_frames_that_do_not_fit_wait_for_the_next_page(void **state)
{
	struct persist_message m[24];
	int64_t want = 2;
	const char *out;

	drain_out();
	send_text("{\"type\":\"subscribe\",\"channels\":[{\"channel\":1}]}");
	drain_out();
	session_deliver(s, durable(1));
	assert_int_equal(seq_of(next_out()), 1);
	session_catch_up(s, 1); /* a lost inbox frame, say: catch up after 1 */
	assert_int_equal(history.after, 1);
	session_deliver(s, durable(20)); /* held meanwhile */
	session_deliver(s, durable(21));
	/* The page brings 2..19 (small rows) into the queue; 20 still fits
	 * behind them, 21 would not. */
	answer_page(1, m, 2, 19, -1);
	assert_true(session_queued_bytes(s) <= SENDQ_BYTES);
	for (int round = 0; round < 5 && want <= 21; round++) {
		while (*(out = next_out())) {
			assert_null(strstr(out, "\"type\":\"lagged\""));
			assert_int_equal(seq_of(out), want);
			want++;
		}
		session_fetch_more(s);
		if (session_find_sub(s, 1)->catching_up)
			answer_page(1, m, history.after + 1, 21, -1);
	}
	assert_int_equal(want, 22); /* 2..21, each once, in order */
	assert_false(session_find_sub(s, 1)->catching_up);
	session_deliver(s, durable(22));
	assert_int_equal(seq_of(next_out()), 22);
}

/* A frame larger than the whole send queue (a small send_queue_bytes) goes
 * out alone, live or replayed, instead of lagging the queue, or being read
 * again, for ever. */
static void test_a_frame_larger_than_the_queue_goes_out_alone(void **state)
{
	static char big[SENDQ_BYTES + 1000];
	struct persist_message m[2];
	struct persist_history page = {.count = 2, .head = -1, .messages = m};
	const char *out;

	memset(big, 'y', sizeof(big) - 1);
	for (int i = 0; i < 2; i++)
		m[i] = (struct persist_message){.channel_id = 1,
						.seq = i + 1,
						.author_name = "bob",
						.kind = "message",
						.client_msg_id = "c",
						.body = i ? big : "b",
						.body_len = i ? sizeof(big) - 1 : 1,
						.reactions = ""};
	drain_out();
	send_text("{\"type\":\"subscribe\",\"channels\":[{\"channel\":1}]}");
	drain_out();
	session_deliver(s, durable(1));
	session_deliver(s, durable_of(2, SENDQ_BYTES + 500)); /* behind 1: lags */
	assert_non_null(strstr(next_out(), "\"type\":\"lagged\""));
	assert_string_equal(next_out(), "");
	/* The replay: 1, then 2 does not fit behind it and is read again, and
	 * then goes out alone. */
	session_fetch_more(s);
	assert_int_equal(history.after, 0);
	session_history_page(s, &page, 1, NULL, true);
	assert_int_equal(seq_of(next_out()), 1);
	assert_string_equal(next_out(), "");
	assert_int_equal(history.after, 1);
	page = (struct persist_history){.count = 1, .head = -1, .messages = &m[1]};
	session_history_page(s, &page, 1, NULL, true);
	out = next_out();
	assert_int_equal(seq_of(out), 2);
	assert_true(strlen(out) > SENDQ_BYTES);
	assert_false(session_find_sub(s, 1)->catching_up);
	/* Live, into an empty queue: as it is. */
	session_deliver(s, durable_of(3, SENDQ_BYTES + 500));
	assert_int_equal(seq_of(next_out()), 3);
	assert_string_equal(next_out(), "");
}

/* A subscribe from since 0 to an empty channel is a cursor at 0: seq 1 lost
 * on its way (a cut peer link) and seq 2 arriving live is a gap, fetched
 * from PostgreSQL, not a start; a lost-frame catch-up reaches it too. A
 * subscribe without since starts at the first live frame, whatever it is. */
static void test_a_subscribe_from_zero_fetches_a_lost_first_seq(void **state)
{
	struct persist_message m[4];

	drain_out();
	send_text("{\"type\":\"subscribe\",\"channels\":[{\"channel\":1,\"since\":0}]}");
	drain_out();
	assert_int_equal(history.calls, 1);
	answer_page(1, m, 1, 0, 0); /* empty: the channel has no rows yet */
	assert_false(session_find_sub(s, 1)->catching_up);

	session_deliver(s, durable(2));
	assert_string_equal(next_out(), ""); /* held, not sent before seq 1 */
	assert_int_equal(history.calls, 2);
	assert_int_equal(history.after, 0);
	answer_page(1, m, 1, 2, -1);
	assert_int_equal(seq_of(next_out()), 1);
	assert_int_equal(seq_of(next_out()), 2);
	assert_false(session_find_sub(s, 1)->catching_up);

	/* Channel 2 from since 0, still empty when the peer link comes back:
	 * the catch-up after a lost frame reads it again. */
	send_text("{\"type\":\"subscribe\",\"channels\":[{\"channel\":2,\"since\":0}]}");
	drain_out();
	assert_int_equal(history.channel, 2);
	answer_page(2, m, 1, 0, 0);
	assert_false(session_find_sub(s, 2)->catching_up);
	history.calls = 0;
	session_catch_up(s, 2);
	assert_int_equal(history.calls, 1);
	assert_int_equal(history.after, 0);
}

static void test_a_subscribe_without_since_starts_live(void **state)
{
	drain_out();
	send_text("{\"type\":\"subscribe\",\"channels\":[{\"channel\":1}]}");
	drain_out();
	assert_int_equal(history.calls, 0);
	session_deliver(s, durable(5));
	assert_int_equal(seq_of(next_out()), 5);
	session_catch_up(s, 1); /* now a cursor at 5 */
	assert_int_equal(history.calls, 1);
	assert_int_equal(history.after, 5);
}

/* Drains the worker until n answers have come out (or 5 s pass); their
 * texts in out. */
static int answers(char out[][256], int n)
{
	int got = 0;

	for (int round = 0; round < 5000 && got < n; round++) {
		const char *text;

		edge_worker_drain(worker);
		while (got < n && *(text = next_out()))
			snprintf(out[got++], 256, "%s", text);
		if (got < n) {
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
	}
	return got;
}

static void publish(int i, bool plain)
{
	char text[256];

	/* The scanner reads the plain form; an escaped key sends the other to
	 * jansson on the worker, and on through the same hand-off. */
	snprintf(text, sizeof(text),
		 "{%s:\"publish\",\"req\":%d,\"channel\":3,\"text\":\"m\\n%d\","
		 "\"client_msg_id\":\"id-%d\"}",
		 plain ? "\"type\"" : "\"typ\\u0065\"", i, i, i);
	send_text(text);
}

static void test_handoff_answers_every_publish_in_order(void **state)
{
	char out[40][256], want[64];

	drain_out();
	for (int i = 0; i < 40; i++)
		publish(i, i % 3 != 0);
	assert_int_equal(answers(out, 40), 40);
	for (int i = 0; i < 40; i++) {
		assert_non_null(strstr(out[i], "\"type\":\"ack\""));
		snprintf(want, sizeof(want), "\"client_msg_id\":\"id-%d\"", i);
		assert_non_null(strstr(out[i], want));
		snprintf(want, sizeof(want), "\"req\":\"%d\"", i);
		assert_non_null(strstr(out[i], want));
		assert_int_equal(seq_of(out[i]), i + 1); /* in the order sent */
		assert_non_null(strstr(out[i], "\"ephemeral\":true"));
	}
}

static void test_handoff_refusals_are_answered(void **state)
{
	static const char *const requests[] = {
	    "{\"type\":\"publish\",\"req\":\"a\",\"channel\":9,\"text\":\"x\","
	    "\"client_msg_id\":\"x\"}",
	    "{\"type\":\"publish\",\"req\":\"b\",\"channel\":3,\"text\":\"x\"}",
	    "{\"type\":\"publish\",\"req\":{},\"channel\":3,\"text\":\"x\","
	    "\"client_msg_id\":\"x\"}",
	    "{\"type\":\"publish\",\"req\":\"d\",\"channel\":3,\"text\":5,"
	    "\"client_msg_id\":\"x\"}",
	};
	static const char *const codes[] = {"\"code\":\"not_member\"",	"\"req\":\"a\"",
					    "\"code\":\"bad_request\"", "\"req\":\"b\"",
					    "\"code\":\"bad_request\"", "\"type\":\"error\"",
					    "\"code\":\"bad_request\"", "\"req\":\"d\""};
	char out[4][256];

	drain_out();
	for (int i = 0; i < 4; i++)
		send_text(requests[i]);
	assert_int_equal(answers(out, 4), 4);
	for (int i = 0; i < 4; i++)
		if (!strstr(out[i], codes[2 * i]) || !strstr(out[i], codes[2 * i + 1]))
			fail_msg("answer %d: %s", i, out[i]);
	/* Two tokens left (refilling at 100/s): the rest are refused, in
	 * order, by the worker's own bucket. */
	s->tokens = 2;
	for (int i = 0; i < 4; i++)
		publish(100 + i, true);
	/* Answers are matched by req: a refusal may overtake an earlier ack. */
	assert_int_equal(answers(out, 4), 4);
	for (int i = 0; i < 4; i++) {
		bool acked = strstr(out[i], "\"type\":\"ack\"") != NULL;
		bool first_two =
		    strstr(out[i], "\"req\":\"100\"") || strstr(out[i], "\"req\":\"101\"");

		if (acked != first_two || (!acked && !strstr(out[i], "\"code\":\"rate_limited\"")))
			fail_msg("answer %d: %s", i, out[i]);
	}
}

static pthread_t counted;
static atomic_int json_allocs;

static void *counting_malloc(size_t n)
{
	if (pthread_equal(pthread_self(), counted))
		atomic_fetch_add(&json_allocs, 1);
	return malloc(n);
}

/* On a hand-off worker a publish runs no jansson; the same publish in a form
 * the scanner leaves to jansson does (the counter can count). */
static void test_handoff_worker_parses_no_json(void **state)
{
	char out[10][256];
	int plain;

	drain_out();
	counted = pthread_self();
	json_set_alloc_funcs(counting_malloc, free);
	for (int i = 0; i < 9; i++)
		publish(i, true);
	plain = atomic_load(&json_allocs);
	publish(9, false);
	json_set_alloc_funcs(malloc, free);
	assert_int_equal(plain, 0);
	assert_true(atomic_load(&json_allocs) > 0);
	assert_int_equal(answers(out, 10), 10);
	assert_int_equal(seq_of(out[9]), 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_an_idle_session_holds_one_small_allocation, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_no_request_reaches_a_channel_of_others, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_slow_consumer_stays_bounded_and_resumes_from_its_cursor, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_held_frames_that_do_not_fit_wait_for_the_next_page,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_frame_larger_than_the_queue_goes_out_alone,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_subscribe_from_zero_fetches_a_lost_first_seq,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_subscribe_without_since_starts_live, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_handoff_answers_every_publish_in_order,
					    setup_handoff, teardown),
	    cmocka_unit_test_setup_teardown(test_handoff_refusals_are_answered, setup_handoff,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_handoff_worker_parses_no_json, setup_handoff,
					    teardown),
	};
	return cmocka_run_group_tests_name("core", tests, setup_eal, NULL);
}
