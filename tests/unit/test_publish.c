/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the publish door (core/publish.c) against a fake writer and
 * a fake fan-out engine: the ack never precedes the commit, nothing is
 * broadcast before COMMIT, a fenced or failed commit and a duplicate are
 * never broadcast, live-only publishes never reach the store and get dense
 * per-channel seqs, a channel another node owns is refused, and a writer's
 * refusal reaches the caller with no callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "publish.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The fakes: what the door handed to the writer and to the fan-out. */

static struct {
	int submits;
	int rc; /* what the next submit answers */
	struct persist_publish last;
	void *cookie;
} writer;

static struct {
	int frames;
	int64_t channel[16], seq[16];
	enum frame_kind kind[16];
} fanout;

static struct {
	int calls;
	enum persist_outcome outcome;
	int error;
	int64_t seq;
	int frames_at_call; /* broadcasts seen when the ack came */
} ack;

int persist_writer_submit(struct persist_writer *w, const struct persist_publish *p, void *cookie)
{
	writer.submits++;
	writer.last = *p;
	writer.cookie = cookie;
	return writer.rc;
}

int fanout_publish(struct fanout *f, struct frame *frame)
{
	if (fanout.frames < 16) {
		fanout.channel[fanout.frames] = frame->channel;
		fanout.seq[fanout.frames] = frame->seq;
		fanout.kind[fanout.frames] = frame->kind;
	}
	fanout.frames++;
	frame_unref(frame);
	return 0;
}

static void done(struct edge *e, struct commit_cookie *c, enum persist_outcome outcome, int error,
		 const struct persist_message *m)
{
	ack.calls++;
	ack.outcome = outcome;
	ack.error = error;
	ack.seq = m->seq;
	ack.frames_at_call = fanout.frames;
}

/* Channel 7 is another node's; the rest are ours at owner epoch 42. */
static enum route_owner remote_owner(void *ctx, int64_t channel, int64_t *epoch)
{
	*epoch = 42;
	return channel == 7 ? ROUTE_OWNER_REMOTE : ROUTE_OWNER_LOCAL;
}

static struct publish_state *ps;
static struct commit_cookie cookie = {.done = done};

static int setup(void **state)
{
	static const struct route route = {.owner = remote_owner};

	memset(&writer, 0, sizeof(writer));
	memset(&fanout, 0, sizeof(fanout));
	memset(&ack, 0, sizeof(ack));
	ps = publish_create(&route, NULL, NULL);
	publish_set_writer(ps, (struct persist_writer *)&writer);
	return ps ? 0 : -1;
}

static int teardown(void **state)
{
	publish_destroy(ps);
	return 0;
}

static struct persist_publish message(int64_t channel, const char *text)
{
	return (struct persist_publish){.channel_id = channel,
					.author_id = 3,
					.author_name = "alice",
					.client_msg_id = "m-1",
					.body = text,
					.body_len = strlen(text)};
}

static struct persist_message committed(const struct persist_publish *p, int64_t seq)
{
	return (struct persist_message){.channel_id = p->channel_id,
					.seq = seq,
					.author_id = p->author_id,
					.author_name = p->author_name,
					.created_at_us = 1800000000000000,
					.kind = "message",
					.client_msg_id = p->client_msg_id,
					.body = p->body,
					.body_len = p->body_len};
}

static void test_ack_and_broadcast_only_after_commit(void **state)
{
	struct persist_publish p = message(1, "hello");
	struct persist_message m;

	assert_int_equal(publish_submit(ps, &p, false, &cookie), 0);
	assert_int_equal(writer.submits, 1);
	assert_ptr_equal(writer.cookie, &cookie);
	assert_string_equal(writer.last.body, "hello");
	/* The writer gets the epoch the route answered with: its fence. */
	assert_int_equal(writer.last.epoch, 42);
	/* Submitted, not committed: no ack, nothing out. */
	assert_int_equal(ack.calls, 0);
	assert_int_equal(fanout.frames, 0);
	m = committed(&p, 41);
	publish_on_commit(ps, PERSIST_COMMITTED, 0, &m, writer.cookie);
	assert_int_equal(fanout.frames, 1);
	assert_int_equal(fanout.channel[0], 1);
	assert_int_equal(fanout.seq[0], 41);
	assert_int_equal(fanout.kind[0], FRAME_DURABLE);
	assert_int_equal(ack.calls, 1);
	assert_int_equal(ack.outcome, PERSIST_COMMITTED);
	assert_int_equal(ack.seq, 41);
}

/* A message that mentions someone is followed by one mention frame of the
 * same channel and seq; an edit that does is not. */
static void test_a_mention_follows_its_message(void **state)
{
	struct persist_publish p = message(1, "ship it @bob");
	struct persist_message m = committed(&p, 9);

	assert_int_equal(publish_submit(ps, &p, false, &cookie), 0);
	publish_on_commit(ps, PERSIST_COMMITTED, 0, &m, writer.cookie);
	assert_int_equal(fanout.frames, 2);
	assert_int_equal(fanout.kind[0], FRAME_DURABLE);
	assert_int_equal(fanout.kind[1], FRAME_MENTION);
	assert_int_equal(fanout.seq[1], 9);
	m.kind = "edit";
	m.seq = 10;
	publish_on_commit(ps, PERSIST_COMMITTED, 0, &m, NULL);
	assert_int_equal(fanout.frames, 3);
	assert_int_equal(fanout.kind[2], FRAME_DURABLE);
}

static void test_fenced_or_failed_commit_is_never_broadcast(void **state)
{
	struct persist_publish p = message(1, "stale owner");
	struct persist_message m = committed(&p, 0);

	assert_int_equal(publish_submit(ps, &p, false, &cookie), 0);
	publish_on_commit(ps, PERSIST_FAILED, -ESTALE, &m, writer.cookie);
	assert_int_equal(fanout.frames, 0);
	assert_int_equal(ack.calls, 1);
	assert_int_equal(ack.outcome, PERSIST_FAILED);
	assert_int_equal(ack.error, -ESTALE);
}

static void test_duplicate_is_acked_with_the_original_seq_and_not_broadcast(void **state)
{
	struct persist_publish p = message(1, "again");
	struct persist_message m = committed(&p, 12);

	assert_int_equal(publish_submit(ps, &p, false, &cookie), 0);
	publish_on_commit(ps, PERSIST_DUPLICATE, 0, &m, writer.cookie);
	assert_int_equal(fanout.frames, 0);
	assert_int_equal(ack.calls, 1);
	assert_int_equal(ack.outcome, PERSIST_DUPLICATE);
	assert_int_equal(ack.seq, 12);
}

static void test_live_publish_never_reaches_the_store(void **state)
{
	struct persist_publish a = message(5, "live"), b = message(6, "other channel");

	assert_int_equal(publish_submit(ps, &a, true, &cookie), 0);
	assert_int_equal(writer.submits, 0);
	/* Out first, then acked, both before the call returned. */
	assert_int_equal(fanout.frames, 1);
	assert_int_equal(fanout.kind[0], FRAME_EPHEMERAL);
	assert_int_equal(ack.calls, 1);
	assert_int_equal(ack.frames_at_call, 1);
	assert_int_equal(ack.seq, 1);
	assert_int_equal(publish_submit(ps, &a, true, &cookie), 0);
	assert_int_equal(ack.seq, 2);
	assert_int_equal(publish_submit(ps, &b, true, &cookie), 0);
	assert_int_equal(ack.seq, 1); /* dense per channel */
	assert_int_equal(fanout.seq[1], 2);
	assert_int_equal(fanout.channel[2], 6);
	assert_int_equal(writer.submits, 0);
}

static void test_a_channel_owned_elsewhere_is_refused(void **state)
{
	struct persist_publish p = message(7, "not ours");

	assert_int_equal(publish_submit(ps, &p, false, &cookie), -EXDEV);
	assert_int_equal(publish_submit(ps, &p, true, &cookie), -EXDEV);
	assert_int_equal(writer.submits, 0);
	assert_int_equal(fanout.frames, 0);
	assert_int_equal(ack.calls, 0);
}

static void test_writer_refusal_reaches_the_caller_without_a_callback(void **state)
{
	struct persist_publish p = message(1, "busy");

	writer.rc = -EAGAIN;
	assert_int_equal(publish_submit(ps, &p, false, &cookie), -EAGAIN);
	writer.rc = -EILSEQ;
	assert_int_equal(publish_submit(ps, &p, false, &cookie), -EILSEQ);
	assert_int_equal(ack.calls, 0);
	assert_int_equal(fanout.frames, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ack_and_broadcast_only_after_commit, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_a_mention_follows_its_message, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fenced_or_failed_commit_is_never_broadcast, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_duplicate_is_acked_with_the_original_seq_and_not_broadcast, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_live_publish_never_reaches_the_store, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_a_channel_owned_elsewhere_is_refused, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_writer_refusal_reaches_the_caller_without_a_callback, setup, teardown),
	};
	return cmocka_run_group_tests_name("publish", tests, NULL, NULL);
}
