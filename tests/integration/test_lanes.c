/* SPDX-License-Identifier: BSD-3-Clause */
/* Integration tests of the persist writer's lanes (persist/writer.c) against
 * the real PostgreSQL deploy/test starts: with several lanes each channel
 * still gets dense seqs handed on in order, from one lane; duplicates and the
 * fence work per channel; flush waits for every lane; shutdown drains the
 * lanes at once; a bad lane count is refused.
 *
 * Needs FANOUT_TEST_PG_DSN; missing it is a failure, not a skip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "pg.h"
#include "writer.h"

#include "persist_fixture.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct persist_writer *lanes_new(struct collector *c, int writers, int batch_max)
{
	struct persist_writer_config cfg = {
	    .dsn = dsn,
	    .copy_min_rows = fixture_copy_min_rows(),
	    .writers = writers,
	    .batch_max = batch_max,
	    .queue_max = 100000,
	    .dedup_cache = 65536,
	    .reconnect_max_ms = 200,
	    .drain_timeout_ms = 2000,
	};
	struct persist_writer *w = persist_writer_create(&cfg, collect, c);

	assert_non_null(w);
	return w;
}

#define CHANNELS    12
#define PUBLISHERS  4
#define PER_CHANNEL 120 /* per publisher */

struct spray {
	struct persist_writer *w;
	const int64_t *channels;
	int index;
};

/* One publisher: PER_CHANNEL messages into every channel, in turn. */
static void *spray_main(void *arg)
{
	struct spray *a = arg;
	char id[48];

	for (int i = 0; i < PER_CHANNEL; i++)
		for (int k = 0; k < CHANNELS; k++) {
			snprintf(id, sizeof(id), "s%d-%d-%d", a->index, k, i);
			while (publish(a->w, a->channels[k], 10 + a->index, id, id, (uintptr_t)k) ==
			       -EAGAIN)
				usleep(1000);
		}
	return NULL;
}

static int channel_index(const int64_t *channels, int64_t channel)
{
	for (int k = 0; k < CHANNELS; k++)
		if (channels[k] == channel)
			return k;
	fail_msg("an outcome for channel %ld, which no one published to", (long)channel);
	return -1;
}

static void test_lanes_keep_each_channel_dense_and_in_order(void **state)
{
	const int per = PUBLISHERS * PER_CHANNEL, total = CHANNELS * per;
	struct collector *c = collector_new(total);
	struct persist_writer *w = lanes_new(c, 3, 64);
	int64_t channels[CHANNELS], last[CHANNELS] = {0};
	pthread_t threads[PUBLISHERS], lane_of[CHANNELS], first;
	struct spray args[PUBLISHERS];
	bool several = false;

	for (int k = 0; k < CHANNELS; k++)
		channels[k] = new_channel("lanes");
	for (int i = 0; i < PUBLISHERS; i++) {
		args[i] = (struct spray){w, channels, i};
		pthread_create(&threads[i], NULL, spray_main, &args[i]);
	}
	for (int i = 0; i < PUBLISHERS; i++)
		pthread_join(threads[i], NULL);
	wait_for(c, total);
	persist_writer_destroy(w);

	first = c->got[0].thread;
	for (int i = 0; i < total; i++) {
		struct outcome *o = &c->got[i];
		int k = channel_index(channels, o->channel);

		assert_int_equal(o->outcome, PERSIST_COMMITTED);
		/* Handed on in seq order per channel, with no gap. */
		assert_int_equal(o->seq, last[k] + 1);
		/* Each channel is one lane's: one thread runs its callbacks. */
		if (last[k] == 0)
			lane_of[k] = o->thread;
		assert_true(pthread_equal(lane_of[k], o->thread));
		last[k] = o->seq;
		several |= !pthread_equal(first, o->thread);
	}
	/* Twelve channels over three lanes: more than one lane worked. */
	assert_true(several);
	for (int k = 0; k < CHANNELS; k++)
		assert_dense(channels[k], per);
	collector_free(c);
}

static void test_lanes_dedup_and_fence_per_channel(void **state)
{
	enum { N = 8 };
	struct collector *c = collector_new(4 * N);
	struct persist_writer *w = lanes_new(c, 2, 64);
	int64_t channels[N];
	char id[32];

	for (int k = 0; k < N; k++) {
		channels[k] = new_channel("lanes-dedup");
		snprintf(id, sizeof(id), "first-%d", k);
		assert_int_equal(publish(w, channels[k], 1, id, "one", 0), 0);
	}
	wait_for(c, N);
	/* A retry of each: the same seq, nothing written again. */
	for (int k = 0; k < N; k++) {
		snprintf(id, sizeof(id), "first-%d", k);
		assert_int_equal(publish(w, channels[k], 1, id, "one", 1), 0);
	}
	wait_for(c, 2 * N);
	for (int i = N; i < 2 * N; i++) {
		assert_int_equal(c->got[i].outcome, PERSIST_DUPLICATE);
		assert_int_equal(c->got[i].seq, 1);
	}
	/* Another writer moves channel 0's head: only that channel is refused. */
	PQclear(
	    sql("BEGIN; UPDATE channels SET last_seq = 2 WHERE id = %ld;"
		"INSERT INTO messages (channel_id, seq, author_id, client_msg_id, body, "
		"created_at, mentions) VALUES (%ld, 2, 9, 'intruder', 'x', now(), '{}'); COMMIT",
		(long)channels[0], (long)channels[0]));
	for (int k = 0; k < N; k++)
		assert_int_equal(publish(w, channels[k], 1, "second", "two", 2), 0);
	wait_for(c, 3 * N);
	for (int i = 2 * N; i < 3 * N; i++) {
		if (c->got[i].channel == channels[0]) {
			assert_int_equal(c->got[i].outcome, PERSIST_FAILED);
			assert_int_equal(c->got[i].error, -ESTALE);
		} else {
			assert_int_equal(c->got[i].outcome, PERSIST_COMMITTED);
			assert_int_equal(c->got[i].seq, 2);
		}
	}
	persist_writer_destroy(w);
	assert_dense(channels[0], 2);
	for (int k = 1; k < N; k++)
		assert_dense(channels[k], 2);
	collector_free(c);
}

static void test_lanes_flush_waits_for_every_lane(void **state)
{
	enum { N = 16, EACH = 25 };
	struct collector *c = collector_new(N * EACH);
	struct persist_writer *w = lanes_new(c, 4, 8);
	char id[32];

	for (int k = 0; k < N; k++) {
		int64_t channel = new_channel("lanes-flush");

		for (int i = 0; i < EACH; i++) {
			snprintf(id, sizeof(id), "f%d", i);
			assert_int_equal(publish(w, channel, 1, id, "x", 0), 0);
		}
	}
	assert_int_equal(persist_writer_flush(w, 30000), 0);
	/* Every lane told every outcome before flush returned. */
	pthread_mutex_lock(&c->lock);
	assert_int_equal(c->n, N * EACH);
	pthread_mutex_unlock(&c->lock);
	assert_int_equal(persist_writer_queue_depth(w), 0);
	assert_true(persist_writer_connected(w));
	persist_writer_destroy(w);
	for (int i = 0; i < N * EACH; i++)
		assert_int_equal(c->got[i].outcome, PERSIST_COMMITTED);
	collector_free(c);
}

static void test_lanes_bad_count_refused(void **state)
{
	struct collector *c = collector_new(1);
	struct persist_writer_config cfg = {
	    .dsn = dsn, .writers = PERSIST_WRITERS_MAX + 1, .batch_max = 4, .queue_max = 4};

	errno = 0;
	assert_null(persist_writer_create(&cfg, collect, c));
	assert_int_equal(errno, EINVAL);
	cfg.writers = -1;
	assert_null(persist_writer_create(&cfg, collect, c));
	collector_free(c);
}

/* With the database unreachable, destroy drains the lanes at once: four
 * lanes take about one drain timeout, not four; what each accepted fails
 * -ECANCELED. */
static void test_lanes_shutdown_drains_at_once(void **state)
{
	struct collector *c = collector_new(64);
	struct persist_writer_config cfg = {.dsn = "host=127.0.0.1 port=1 connect_timeout=1",
					    .writers = 4,
					    .batch_max = 2,
					    .queue_max = 8,
					    .dedup_cache = 1024,
					    .reconnect_max_ms = 100,
					    .drain_timeout_ms = 1000};
	struct persist_writer *w = persist_writer_create(&cfg, collect, c);
	int accepted = 0;
	uint64_t start;
	char id[16];

	assert_non_null(w);
	assert_false(persist_writer_connected(w));
	for (int i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "q%d", i);
		int rc = publish(w, 1000 + i, 1, id, "x", (uintptr_t)i);

		assert_true(rc == 0 || rc == -EAGAIN);
		accepted += rc == 0;
	}
	/* Each lane's share of the queue (2) plus a batch (2) it took. */
	assert_true(accepted >= 8 && accepted <= 16);
	start = time_mono_ns();
	persist_writer_destroy(w);
	assert_true(time_mono_ns() - start < 2500000000ull);
	assert_all_failed(c, accepted, -ECANCELED);
	collector_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lanes_keep_each_channel_dense_and_in_order),
	    cmocka_unit_test(test_lanes_dedup_and_fence_per_channel),
	    cmocka_unit_test(test_lanes_flush_waits_for_every_lane),
	    cmocka_unit_test(test_lanes_bad_count_refused),
	    cmocka_unit_test(test_lanes_shutdown_drains_at_once),
	};

	return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
