/* SPDX-License-Identifier: BSD-3-Clause */
/* Tests of the fan-out engine with DPDK's real EAL (no hugepages, no PCI):
 * the channel -> workers table, one frame per worker (the original to one,
 * copies to the others), channels that come and go far beyond the table's
 * capacity (deleted keys' slots reclaimed through RCU) while other threads
 * read it, inbox overflow flagging the worker, and events that never drop
 * (they spill when the ring is full). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fanout.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct seen {
	int frames, events, overruns, wakes;
	struct frame *last;
};

static void on_frame(void *arg, struct frame *f)
{
	struct seen *s = arg;
	s->frames++;
	if (s->last)
		frame_unref(s->last);
	s->last = f;
}

static void on_overrun(void *arg)
{
	((struct seen *)arg)->overruns++;
}

static void count_wake(void *arg)
{
	((struct seen *)arg)->wakes++;
}

static void run_event(void *arg, struct fanout_event *ev)
{
	((struct seen *)arg)->events++;
	free(ev);
}

static struct frame *msg(int64_t channel, int64_t seq)
{
	return frame_new(FRAME_DURABLE, channel, seq, "{\"x\":1}", 7);
}

static int setup(void **state)
{
	return fanout_eal_init(64, NULL);
}

static void test_publish_reaches_subscribed_workers_only(void **state)
{
	struct fanout *f = fanout_create(3, 1024);
	struct seen s[3] = {0};

	assert_non_null(f);
	for (int w = 0; w < 3; w++)
		fanout_set_wake(f, w, count_wake, &s[w]);
	/* Nobody subscribes: the frame is released, nobody is woken. */
	assert_int_equal(fanout_publish(f, msg(7, 1)), 0);
	assert_int_equal(s[0].wakes + s[1].wakes + s[2].wakes, 0);

	assert_int_equal(fanout_worker_join(f, 7, 0), 0);
	assert_int_equal(fanout_worker_join(f, 7, 2), 0);
	assert_int_equal(fanout_worker_join(f, 8, 1), 0);
	assert_int_equal(fanout_publish(f, msg(7, 2)), 2);
	for (int w = 0; w < 3; w++)
		fanout_drain(f, w, on_frame, on_overrun, &s[w], 100);
	assert_int_equal(s[0].frames, 1);
	assert_int_equal(s[1].frames, 0);
	assert_int_equal(s[2].frames, 1);
	/* Each worker has its own buffer with the same bytes. */
	assert_ptr_not_equal(s[0].last, s[2].last);
	assert_memory_equal(frame_payload(s[0].last), frame_payload(s[2].last), 7);
	assert_int_equal(s[2].last->seq, 2);

	assert_int_equal(fanout_worker_leave(f, 7, 0), 0);
	assert_int_equal(fanout_publish(f, msg(7, 3)), 1);
	assert_int_equal(fanout_worker_leave(f, 7, 2), 0);
	assert_int_equal(fanout_publish(f, msg(7, 4)), 0);
	assert_int_equal(fanout_worker_join(f, 7, 5), -EINVAL);
	for (int w = 0; w < 3; w++) {
		fanout_drain(f, w, on_frame, on_overrun, &s[w], 100);
		frame_unref(s[w].last);
	}
	assert_int_equal(s[2].frames, 2);
	fanout_destroy(f);
}

/* A table for 64 channels serves 20,000 that each come and go. */
static void test_channels_come_and_go_beyond_the_capacity(void **state)
{
	struct fanout *f = fanout_create(2, 64);
	struct seen s = {0};

	assert_non_null(f);
	for (int64_t ch = 1; ch <= 20000; ch++) {
		assert_int_equal(fanout_worker_join(f, ch, 1), 0);
		assert_int_equal(fanout_publish(f, msg(ch, 1)), 1);
		assert_int_equal(fanout_worker_leave(f, ch, 1), 0);
		assert_int_equal(fanout_publish(f, msg(ch, 2)), 0);
		fanout_drain(f, 1, on_frame, on_overrun, &s, 100);
	}
	assert_int_equal(s.frames, 20000);
	frame_unref(s.last);
	fanout_destroy(f);
}

struct reader {
	struct fanout *f;
	atomic_bool stop;
	atomic_long reads, wrong;
};

/* Publishes to channel 1 (worker 0 only, always) and to the channels the
 * main thread churns (worker 1 or nobody): any other answer is a slot read
 * after it was reused for another channel. */
static void *read_while_churning(void *arg)
{
	struct reader *r = arg;

	for (int64_t k = 0; !atomic_load(&r->stop); k++) {
		int reached = fanout_publish(r->f, msg(1, k));
		int64_t other = 1000 + k % 64;
		int got;

		if (reached != 1)
			atomic_fetch_add(&r->wrong, 1);
		got = fanout_publish(r->f, msg(other, k));
		if (got != 0 && got != 1)
			atomic_fetch_add(&r->wrong, 1);
		atomic_fetch_add(&r->reads, 2);
	}
	return NULL;
}

static void test_readers_while_channels_churn(void **state)
{
	struct fanout *f = fanout_create(2, 256);
	struct reader r = {.f = f};
	pthread_t t[2];
	struct seen s[2] = {0};

	assert_non_null(f);
	assert_int_equal(fanout_worker_join(f, 1, 0), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, read_while_churning, &r), 0);
	/* 200 rounds at least, and on until the readers have read a while: on
	 * a loaded machine (the sanitizer build, two cores) their threads may
	 * not have run at all by then. Bounded at 20,000 rounds. */
	for (int round = 0; round < 200 || (atomic_load(&r.reads) < 2000 && round < 20000);
	     round++) {
		for (int64_t ch = 1000; ch < 1064; ch++)
			assert_int_equal(fanout_worker_join(f, ch, 1), 0);
		for (int64_t ch = 1000; ch < 1064; ch++)
			assert_int_equal(fanout_worker_leave(f, ch, 1), 0);
		/* and channels the readers never ask for, to reuse slots */
		for (int64_t ch = 5000; ch < 5150; ch++)
			assert_int_equal(fanout_worker_join(f, ch + round * 1000, 1), 0);
		for (int64_t ch = 5000; ch < 5150; ch++)
			assert_int_equal(fanout_worker_leave(f, ch + round * 1000, 1), 0);
		for (int w = 0; w < 2; w++)
			while (fanout_drain(f, w, on_frame, on_overrun, &s[w], 1u << 16) > 0)
				;
	}
	atomic_store(&r.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_true(atomic_load(&r.reads) > 0);
	assert_int_equal(atomic_load(&r.wrong), 0);
	for (int w = 0; w < 2; w++) {
		while (fanout_drain(f, w, on_frame, on_overrun, &s[w], 1u << 16) > 0)
			;
		frame_unref(s[w].last);
	}
	fanout_destroy(f);
}

static void test_inbox_overflow_flags_overrun(void **state)
{
	struct fanout *f = fanout_create(1, 1024);
	struct seen s = {0};
	int posted = 0;

	fanout_set_wake(f, 0, count_wake, &s);
	fanout_worker_join(f, 1, 0);
	for (int i = 0; i < 70000; i++)
		posted += fanout_publish(f, msg(1, i + 1));
	assert_int_equal(posted, 70000); /* reached the worker, maybe only to be dropped */
	assert_true(fanout_frames_dropped(f) > 0);
	fanout_drain(f, 0, on_frame, on_overrun, &s, 1000000);
	assert_int_equal(s.overruns, 1); /* told once: resume from PostgreSQL */
	assert_int_equal((uint64_t)s.frames + fanout_frames_dropped(f), 70000);
	frame_unref(s.last);
	s.last = NULL;
	/* The flag is consumed. */
	fanout_drain(f, 0, on_frame, on_overrun, &s, 100);
	assert_int_equal(s.overruns, 1);
	fanout_destroy(f);
}

static void test_events_never_drop(void **state)
{
	struct fanout *f = fanout_create(1, 1024);
	struct seen s = {0};

	fanout_set_wake(f, 0, count_wake, &s);
	for (int i = 0; i < 70000; i++) {
		struct fanout_event *ev = calloc(1, sizeof(*ev));
		ev->run = run_event;
		fanout_post_event(f, 0, ev);
	}
	while (fanout_drain(f, 0, on_frame, on_overrun, &s, 1000000) > 0)
		;
	assert_int_equal(s.events, 70000);
	assert_int_equal(s.overruns, 0);
	fanout_destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_publish_reaches_subscribed_workers_only),
	    cmocka_unit_test(test_channels_come_and_go_beyond_the_capacity),
	    cmocka_unit_test(test_readers_while_channels_churn),
	    cmocka_unit_test(test_inbox_overflow_flags_overrun),
	    cmocka_unit_test(test_events_never_drop),
	};
	return cmocka_run_group_tests_name("fanout_engine", tests, setup, NULL);
}
